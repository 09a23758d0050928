"""Live notices about agents and queues for desktops and wallboards (offer, connected, ended,
presence), fanned out to subscribers without ever holding up a call.

A subscriber that stops reading loses its oldest notices rather than slowing the queue flow; it
can always read the whole state again (the HTTP layer sends a snapshot first).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

Notice = dict[str, Any]


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

    def publish(self, notice: Notice, agent_id: str | None = None) -> None:
        """Send ``notice`` to every supervisor stream and to ``agent_id``'s own streams."""
        for sub in self._subscribers:
            if sub.agent_id is None or sub.agent_id == agent_id:
                sub.put(notice)

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
