"""Warnings before a ticket's legal deadline passes, and when it has: a notice to supervisors
(their wallboard stream) for every unanswered ticket entering the warning window or going
overdue, once per ticket and stage in a run (a restart warns again, once).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog
from sqlmodel import col, select

from hotline.clock import SYSTEM, Clock
from hotline.db import Store
from tickets.models import Ticket
from tickets.queries import UNANSWERED

log = structlog.get_logger(__name__)

Stage = Literal["due_soon", "overdue"]


@dataclass(frozen=True, slots=True)
class DeadlineNotice:
    stage: Stage
    number: str
    ticket_id: str
    due_at: datetime
    unit: str | None
    category: str | None
    urgent: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "type": "ticket_" + self.stage,
            "number": self.number,
            "ticket_id": self.ticket_id,
            "due_at": self.due_at.isoformat(),
            "unit": self.unit,
            "category": self.category,
            "urgent": self.urgent,
        }


class Deadlines:
    def __init__(
        self,
        store: Store,
        publish: Callable[[DeadlineNotice], None],
        *,
        warn_before: timedelta = timedelta(hours=24),
        every: float = 300.0,
        clock: Clock = SYSTEM,
    ) -> None:
        self.store = store
        self.publish = publish
        self.warn_before = warn_before
        self.every = every
        self.clock = clock
        self._told: set[tuple[str, Stage]] = set()
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> list[DeadlineNotice]:
        """Notices for tickets newly due soon or overdue; published, and returned."""
        now = self.clock.utcnow()
        async with self.store.session() as session:
            rows = await session.exec(
                select(Ticket)
                .where(
                    col(Ticket.status).in_([s.value for s in UNANSWERED]),
                    col(Ticket.due_at) <= now + self.warn_before,
                )
                .order_by(col(Ticket.due_at))
                .limit(1000)
            )
            due = list(rows.all())
        notices = []
        for ticket in due:
            assert ticket.due_at is not None
            stage: Stage = "overdue" if ticket.due_at <= now else "due_soon"
            if (ticket.id, stage) in self._told:
                continue
            self._told.add((ticket.id, stage))
            notice = DeadlineNotice(
                stage, ticket.number, ticket.id, ticket.due_at, ticket.unit, ticket.category, ticket.urgent
            )
            self.publish(notice)
            notices.append(notice)
        if notices:
            log.info("ticket_deadlines", due_soon=sum(n.stage == "due_soon" for n in notices),
                     overdue=sum(n.stage == "overdue" for n in notices))  # fmt: skip
        return notices

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ticket-deadlines")

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # the store is away: the next round tries again
                log.exception("ticket_deadlines_failed")
            await self.clock.sleep(self.every)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
