"""Every answered call, voice message and abandoned urgent call becomes a ticket, once it ends.

The flow follows the committed call timeline (``CallLog.subscribe``): at a call's ``ended`` entry
it reads the call and opens its ticket: category from the IVR (or suggested from what the caller
said), unit from the routing table, legal due date in working days, priority, the agent who took
it, and a link to the caller's earlier open ticket. A ticket per call is unique in the database,
so a repeat is harmless; a process that dies between a call's end and its ticket makes it on the
next start (``sweep``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
import structlog
from sqlmodel import col, select

from hotline.calls import CallLog
from hotline.clock import SYSTEM, Clock
from hotline.db import Store
from hotline.models import AGENT_ON_CALL, Call, CallEvent, CallEventKind, CallOutcome
from hotline.workdays import Calendar
from tickets import store as tickets
from tickets.config import TicketsConfig
from tickets.errors import Conflict
from tickets.models import Source, Ticket
from tickets.service import NewTicket

log = structlog.get_logger(__name__)

SYSTEM_USER = "hotline"  # who opens the tickets of calls, in the audit trail
SWEEP_DAYS = 7  # how far back a start looks for ended calls without their ticket
ABANDONED = (CallOutcome.abandoned, CallOutcome.abandoned_in_ivr)

Said = Callable[[str], Awaitable[str]]  # call id -> what the caller said, for a category hint


def source_of(call: Call) -> Source | None:
    """Which calls become tickets: served by an agent, a voice message left, or an urgent call
    given up before anyone took it; None for the rest (an abandoned ordinary call, a wrong key)."""
    if call.outcome == CallOutcome.completed:
        return Source.call
    if call.voicemail:
        return Source.voicemail
    if call.urgent and call.outcome in ABANDONED:
        return Source.abandoned_urgent
    return None


def ivr_path(events: list[CallEvent]) -> list[str]:
    for event in reversed(events):
        if event.kind == CallEventKind.ivr_done:
            path = event.data.get("path") or []
            return [str(step) for step in path] if isinstance(path, list) else [str(path)]
    return []


def agent_of(events: list[CallEvent]) -> str | None:
    agents = [str(e.data["agent"]) for e in events if e.kind in AGENT_ON_CALL and e.data.get("agent")]
    return agents[-1] if agents else None


class TicketFlow:
    def __init__(
        self,
        store: Store,
        calls: CallLog,
        config: TicketsConfig,
        calendar: Calendar,
        zone: tzinfo,
        *,
        said: Said | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.store = store
        self.calls = calls
        self.config = config
        self.calendar = calendar
        self.zone = zone
        self.said = said
        self.clock = clock
        self._tasks: set[asyncio.Task[None]] = set()

    def on_call_event(self, event: CallEvent) -> None:
        if event.kind == CallEventKind.ended:
            self._spawn(self.ticket_for(event.call_id))

    async def ticket_for(self, call_id: str) -> Ticket | None:
        """Open the call's ticket if it should have one and has none yet."""
        call = await self.calls.get(call_id)
        source = source_of(call) if call is not None else None
        if call is None or source is None:
            return None
        events = await self.calls.events(call_id)
        category = call.category
        if not category and self.said is not None:
            category = self.config.suggest(await self.said(call_id), call.language or "tr")
        unit = self.config.unit_for(category, self.config.province(call.caller_number))
        days = self.config.due_working_days(category)
        due = self.calendar.add_working_days(call.started_at, days, self.zone).astimezone(UTC)
        new = NewTicket(
            source=source,
            call_id=call.id,
            caller_number=call.caller_number,
            caller_name=call.caller_name,
            language=call.language,
            ivr_path=ivr_path(events),
            category=category,
            unit=unit,
            urgent=call.urgent,
            priority=self.config.priority(category, call.urgent),
            assigned_agent=agent_of(events),
            due_at=due,
        )
        try:
            ticket = await tickets.create(self.store, new, SYSTEM_USER, self.clock.utcnow(), self.zone)
        except Conflict:
            return None  # made already (a repeat, or another process)
        await self.calls.record(call.id, CallEventKind.ticket_created, soon=True, ticket=ticket.number)
        log.info("ticket_created", call_id=call.id, ticket=ticket.number, source=str(source), unit=unit)
        return ticket

    async def sweep(self, now: datetime | None = None) -> int:
        """Open the tickets of calls that ended (in the last SWEEP_DAYS) without one: the process
        died in between. Returns how many."""
        since = (now or self.clock.utcnow()) - timedelta(days=SWEEP_DAYS)
        with_ticket = select(Ticket.call_id).where(col(Ticket.call_id).is_not(None))
        wanted = sa.or_(
            col(Call.outcome) == CallOutcome.completed,
            col(Call.voicemail).is_not(None),
            sa.and_(col(Call.urgent).is_(True), col(Call.outcome).in_(list(ABANDONED))),
        )
        await self.calls.flush()
        async with self.store.session() as session:
            rows = await session.exec(
                select(Call.id).where(col(Call.ended_at) >= since, wanted, col(Call.id).not_in(with_ticket))
            )
            missing = list(rows.all())
        made = [t for call_id in missing if (t := await self.ticket_for(call_id)) is not None]
        if made:
            log.warning("tickets_made_after_restart", tickets=len(made))
        return len(made)

    def _spawn(self, step: Coroutine[Any, Any, Ticket | None]) -> None:
        async def run() -> None:
            try:
                await step
            except Exception:  # the next start's sweep makes it: a ticket is never lost
                log.exception("ticket_not_created")

        task = asyncio.create_task(run(), name="ticket")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Let tickets being made be written."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
