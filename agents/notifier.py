"""Live notices about agents and queues for desktops and wallboards (offer, connected, ended,
presence), fanned out to subscribers without ever holding up a call.

A subscriber that stops reading loses its oldest notices rather than slowing the queue flow; it
can always read the whole state again (the HTTP layer sends a snapshot first).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Notice = dict[str, Any]  # as a stream sends it: JSON with a "type"


@dataclass(frozen=True, slots=True)
class PresenceNotice:
    agent: str
    presence: str
    reason: str

    def as_json(self) -> Notice:
        return {"type": "presence", "agent": self.agent, "presence": self.presence, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class CallNotice:
    """An offer ringing the agent's phone, or the agent connected to the caller."""

    kind: Literal["offer", "connected"]
    call: dict[str, object]  # what a desktop shows about the call (QueueContext.describe)

    def as_json(self) -> Notice:
        return {"type": self.kind, **self.call}


@dataclass(frozen=True, slots=True)
class EndedNotice:
    call_id: str
    wrap_up: float

    def as_json(self) -> Notice:
        return {"type": "ended", "call_id": self.call_id, "wrap_up": self.wrap_up}


@dataclass(frozen=True, slots=True)
class QueueNotice:
    queue: str
    waiting: int

    def as_json(self) -> Notice:
        return {"type": "queue", "queue": self.queue, "waiting": self.waiting}


class Publishable(Protocol):
    """A notice from elsewhere (a live transcript line, say), handed in by the app."""

    def as_json(self) -> Notice: ...


TypedNotice = PresenceNotice | CallNotice | EndedNotice | QueueNotice | Publishable


class Subscription:
    def __init__(self, agent_id: str | None, size: int) -> None:
        self.agent_id = agent_id  # None: every notice (supervisors)
        self.queue: asyncio.Queue[Notice] = asyncio.Queue(maxsize=size)
        self.dropped = 0
        self.closed = False

    def put(self, notice: Notice) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(notice)

    async def get(self) -> Notice | None:
        """The next notice; None once the notifier has closed (the process is stopping)."""
        if self.closed and self.queue.empty():
            return None
        return await self.queue.get()


class Notifier:
    def __init__(self, size: int = 256) -> None:
        self._subscribers: set[Subscription] = set()
        self._size = size

    def publish(self, notice: TypedNotice, agent_id: str | None = None) -> None:
        """Send ``notice`` to every supervisor stream and to ``agent_id``'s own streams."""
        if not self._subscribers:
            return
        sent = notice.as_json()
        for sub in self._subscribers:
            if sub.agent_id is None or sub.agent_id == agent_id:
                sub.put(sent)

    @contextlib.asynccontextmanager
    async def subscribe(self, agent_id: str | None = None) -> AsyncIterator[Subscription]:
        sub = Subscription(agent_id, self._size)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    def close(self) -> None:
        """End every stream: readers get what is queued, then None."""
        for sub in self._subscribers:
            sub.closed = True
            sub.put({"type": "closing"})

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)
