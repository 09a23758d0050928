"""The one small object every part of the queue flow is handed: what it may act on, what it knows,
and the other parts it may ask (``ctx.offering.offer()``), instead of long argument lists."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import structlog

from agents.config import QueuesConfig
from agents.live import AgentSeat, Caller, Live
from agents.notifier import CallNotice, Notifier, QueueNotice
from agents.service import Router
from ari import AriClient
from hotline.callflow import Guard
from hotline.calls import CallLog
from hotline.clock import Clock
from hotline.db import Store

if TYPE_CHECKING:
    from agents.admission import Admission
    from agents.announcements import Announcements
    from agents.callbacks import CallBacks
    from agents.connecting import Connecting
    from agents.offering import Offering
    from agents.presence import PresenceBook
    from agents.supervision import Supervision

log = structlog.get_logger(__name__)

# Dial statuses that mean the phone was not answered (and will not be).
NO_ANSWER = {"NOANSWER", "BUSY", "CHANUNAVAIL", "CONGESTION", "CANCEL", "DONTCALL", "TORTURE", "INVALIDARGS"}


@dataclass(slots=True)
class Timers:
    """Background waits (wrap-ups, call-back retries, the periodic pass), cancelled together."""

    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def start(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def cancel(self) -> None:
        for task in list(self.tasks):
            task.cancel()


@dataclass(eq=False)
class QueueContext:
    ari: AriClient
    calls: CallLog
    store: Store
    config: QueuesConfig
    router: Router
    clock: Clock
    guard: Guard
    seats: dict[str, AgentSeat]
    sounds: Mapping[tuple[str, str], str]  # (prompt, language) -> media URI, for announcements
    live: Live = field(default_factory=Live)
    notices: Notifier = field(default_factory=Notifier)
    timers: Timers = field(default_factory=Timers)
    # One lock serialises the flow's steps: the router and the registry change only under it.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # No offers until the first resync has restored who is talking to whom (after a restart an
    # agent still in a conversation must not be offered a waiting caller first).
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    phones: dict[str, str] = field(default_factory=dict)  # agent -> last endpoint state seen
    holdtime: dict[str, float] = field(default_factory=dict)  # queue -> running average wait
    wrap_ups: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # agent -> its timer
    # The parts, set once by QueueFlow.
    admission: Admission = field(init=False)
    offering: Offering = field(init=False)
    connecting: Connecting = field(init=False)
    call_backs: CallBacks = field(init=False)
    supervision: Supervision = field(init=False)
    announcements: Announcements = field(init=False)
    presence: PresenceBook = field(init=False)

    async def hang_up(self, channel_id: str) -> None:
        """Hang up a channel that may be gone already (its party hung up first)."""
        await self.ari.channels.hangup(channel_id)

    def label(self, queue: str) -> str:
        """A queue's name as an agent's phone shows it (Turkish first)."""
        names = self.config.label(queue)
        return names.get("tr") or next(iter(names.values()), queue)

    def describe(self, caller: Caller) -> dict[str, object]:
        """What a desktop shows about a call: who, from which queue, urgent or not."""
        return {
            "call_id": caller.call_id,
            "queue": caller.queue,
            "label": self.config.label(caller.queue) if caller.queue in self.config.queues else {},
            "caller_number": caller.caller_number,
            "caller_name": caller.caller_name,
            "language": caller.language,
            "urgent": caller.urgent,
            "agent": caller.agent_id or None,
            "callback": bool(caller.callback_id),
        }

    def tell_agent(self, kind: Literal["offer", "connected"], caller: Caller, agent_id: str) -> None:
        self.notices.publish(CallNotice(kind, self.describe(caller)), agent_id)

    def queue_changed(self, queue: str) -> None:
        waiting = sum(1 for c in self.router.waiting.values() if c.queue == queue)
        self.notices.publish(QueueNotice(queue, waiting))
