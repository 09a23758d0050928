"""Presence kept in the store: nothing is lost when a commit fails."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from agents.errors import BadRequest
from agents.models import AgentEvent, AgentState
from agents.service import Presence
from tests.unit.agents.harness import Desk, new_flow, presence


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


async def test_pause_during_a_call_waits_for_its_end_and_survives_a_restart(desk: Desk) -> None:
    with pytest.raises(BadRequest):
        await desk.flow.desk.pause("a1", "nap")
    async with desk.flow.notices.subscribe("a1") as stream:
        await desk.queued_caller()
        await desk.until("agent_connected")
        await desk.flow.desk.pause("a1", "meal")
        assert desk.flow.desk.agent_state("a1")["pending"] == "paused"
        await desk.fake.caller_hangup(desk.agent_channel())
        await desk.timers.expire(60.0)
        paused = await presence(stream, "a1", Presence.paused)
    assert paused["reason"] == "meal"
    # The process stops (what it wrote behind is flushed) and a new one starts on the same
    # database: the agent is still on their meal break, not available.
    await desk.store.behind.flush()
    again = new_flow(desk)
    await again.start()
    agent = again.router.agents["a1"]
    assert (agent.presence, agent.reason) == (Presence.paused, "meal")
    await again.close(tidy=False)
