"""Presence kept in the store: nothing is lost when a commit fails."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from agents.models import AgentEvent, AgentState
from agents.service import Presence
from tests.unit.agents.harness import Desk


async def test_a_transition_whose_commit_failed_is_stored_with_the_next_batch(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = desk.store.session
    down = True

    @contextlib.asynccontextmanager
    async def flaky() -> AsyncIterator[AsyncSession]:
        if down:
            raise ConnectionError("database unreachable")
        async with real() as session:
            yield session

    monkeypatch.setattr(desk.store, "session", flaky)
    with pytest.raises(ConnectionError):  # asked for, but it cannot be made durable now ...
        await desk.flow.desk.pause("a1", "meal")
    assert desk.flow.router.agents["a1"].presence is Presence.paused
    assert desk.store.behind.waiting  # ... and is kept for the next try
    down = False
    await desk.flow.desk.resume("a1")
    await desk.store.behind.flush()
    async with real() as session:
        events = (
            await session.exec(
                select(AgentEvent).where(AgentEvent.agent_id == "a1").order_by(col(AgentEvent.id))
            )
        ).all()
        state = await session.get(AgentState, "a1")
    assert [(e.after, e.reason) for e in events][-2:] == [("paused", "meal"), ("available", "resume")]
    assert state is not None and state.presence == "available"
    assert desk.flow.router.transitions == [] and desk.store.behind.waiting == 0
