"""Shared pieces of the escalation store and flow tests: a wall clock moved by hand, calls to hang
incidents on, a fake page sender, and a list that a test can wait on. The databases come from the
``store`` fixture of tests/conftest.py (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import pytest

from escalation.channels import Delivery, PageMessage
from hotline import db
from hotline.models import Call, new_id

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
WAIT = 5.0  # seconds a test waits for something the code under test is expected to do at once

T = TypeVar("T")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class WallClock:
    """Stands still until a test moves it; pass it as ``Clock(wall=...)``."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def wall() -> WallClock:
    return WallClock()


async def new_call(store: db.Store, number: str = "05321234567") -> str:
    """A call row for an incident to refer to (``incident.call_id`` is a foreign key)."""
    call = Call(channel_id=f"chan-{new_id()}", caller_number=number)
    async with store.session() as session:
        session.add(call)
        await session.commit()
    return call.id


class Seen(Generic[T]):
    """What arrived so far, in order; ``until`` waits (bounded) for a condition on it."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self._changed = asyncio.Event()

    def add(self, item: T) -> None:
        self.items.append(item)
        self._changed.set()

    async def until(self, check: Callable[[list[T]], bool]) -> list[T]:
        async with asyncio.timeout(WAIT):
            while not check(self.items):
                self._changed.clear()
                await self._changed.wait()
        return self.items


class FakeSender:
    """Records every message; answers with the scripted outcomes in turn (an exception is raised),
    then with ``Delivery(True)``. While ``hold`` is set to an unset event, a try never ends."""

    def __init__(self, *script: Delivery | Exception) -> None:
        self.seen: Seen[PageMessage] = Seen()
        self.script = list(script)
        self.hold: asyncio.Event | None = None

    @property
    def messages(self) -> list[PageMessage]:
        return self.seen.items

    async def send(self, message: PageMessage) -> Delivery:
        self.seen.add(message)
        if self.hold is not None:
            await self.hold.wait()
        outcome = self.script.pop(0) if self.script else Delivery(True, detail="accepted")
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def received(self, count: int) -> list[PageMessage]:
        return await self.seen.until(lambda items: len(items) >= count)


Notice = dict[str, Any]
