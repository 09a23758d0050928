"""Queues with real phones: SIPp callers wait in a holding bridge, SIPp agent phones answer,
never answer, or are cancelled; the router's choices are checked on the call timeline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from agents.models import AgentEvent
from agents.service import Presence
from hotline.app import App, create_app
from hotline.models import CallEvent
from hotline.settings import Settings
from tests.harness import sipp
from tests.integration.conftest import calls_and_events, ended, leftovers, quick


@pytest.fixture
async def two_agents(settings: Settings, hotline_settings: Settings, tmp_path: Path) -> AsyncIterator[App]:
    """The quick configuration with both agents, 9001 and 9002, at work."""
    two = [a for a in hotline_settings.agents if a.id in ("9001", "9002")]
    app = create_app(quick(settings, tmp_path, agents=two))
    await app.start(serve_web=False)
    yield app
    await app.close()


async def agent_events(app: App, agent_id: str) -> list[AgentEvent]:
    async with app.store.session() as session:
        rows = await session.exec(
            select(AgentEvent).where(AgentEvent.agent_id == agent_id).order_by(col(AgentEvent.id))
        )
        return list(rows.all())


async def test_a_missed_offer_goes_to_the_next_agent_and_pauses_the_first(
    two_agents: App, settings: Settings, phone_port: int, second_phone_port: int
) -> None:
    done = ended(two_agents)
    async with (
        sipp.phone(port=phone_port, mode="never") as sleepy,
        sipp.phone(port=second_phone_port, talk_ms=300) as awake,
    ):
        result = await sipp.call(settings, "183", digits="11", hold=30)
        assert "cancelled" in (await sleepy.result()).log  # rang out after ring_timeout
        assert "answered" in (await awake.result()).log
    assert result.ok and result.hung_up_by == "remote", result.errors
    await asyncio.wait_for(done, 30)
    [(call, events)] = await calls_and_events(two_agents)
    steps = [(e.kind, e.data.get("agent")) for e in events if e.kind.startswith(("offered", "agent_"))]
    assert steps == [
        ("offered", "9001"), ("agent_no_answer", "9001"), ("offered", "9002"), ("agent_connected", "9002"),
    ]  # fmt: skip
    assert call.outcome == "completed"
    # One miss is the limit in this queue: 9001 is paused with the reason, and it is stored.
    assert two_agents.queues.router.agents["9001"].presence is Presence.paused
    last = (await agent_events(two_agents, "9001"))[-1]
    assert (last.before, last.after, last.reason) == ("reserved", "paused", "no_answer")


async def test_a_caller_hanging_up_while_an_agent_rings_leaves_no_phone_ringing(
    quick_app: App, settings: Settings, phone_port: int
) -> None:
    done = ended(quick_app)
    async with sipp.phone(port=phone_port, mode="never") as desk:
        # The help queue rings for 3 s; the caller gives up after 1.5 s in the queue.
        result = await sipp.call(settings, "183", digits="11", hold=1.5)
        assert "cancelled" in (await desk.result()).log
    assert result.ok and result.hung_up_by == "local", result.errors
    await asyncio.wait_for(done, 30)
    [(call, events)] = await calls_and_events(quick_app)
    assert call.outcome == "abandoned"
    assert "abandoned_in_queue" in [e.kind for e in events]
    agent = quick_app.queues.router.agents["9001"]
    assert agent.presence is Presence.available and agent.missed_in_a_row == 0  # not the agent's fault
    channels, _ = await leftovers(settings)
    assert channels == []


def timeline_kind(app: App, kind: str, count: int) -> asyncio.Future[None]:
    """Resolves once ``count`` events of ``kind`` have been committed."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen = 0

    def listener(event: CallEvent) -> None:
        nonlocal seen
        seen += event.kind == kind
        if seen == count and not future.done():
            future.set_result(None)

    app.calls.subscribe(listener)
    return future


async def test_an_urgent_caller_overtakes_the_queue(
    quick_app: App, settings: Settings, phone_port: int
) -> None:
    done = ended(quick_app, count=3)
    first_connected = timeline_kind(quick_app, "agent_connected", 1)
    second_queued, third_queued = timeline_kind(quick_app, "queued", 2), timeline_kind(quick_app, "queued", 3)
    async with sipp.phone(port=phone_port, calls=3, talk_ms=6000) as desk:
        calls = [
            asyncio.create_task(sipp.call(settings, "183", digits="11", hold=90, caller_id="05320000001"))
        ]
        await asyncio.wait_for(first_connected, 30)
        # While the agent talks to the first caller, a second joins, then an emergency caller.
        calls.append(
            asyncio.create_task(sipp.call(settings, "183", digits="11", hold=90, caller_id="05320000002"))
        )
        await asyncio.wait_for(second_queued, 30)
        calls.append(
            asyncio.create_task(sipp.call(settings, "183", digits="9", hold=90, caller_id="05320000003"))
        )
        await asyncio.wait_for(third_queued, 30)
        assert quick_app.queues.router.agents["9001"].presence is Presence.on_call  # still with the first
        results = await asyncio.gather(*calls)
        assert (await desk.result(timeout=120)).log.count("answered") == 3
    assert all(r.ok for r in results), [r.errors for r in results]
    await asyncio.wait_for(done, 30)
    connected = []
    for call, events in await calls_and_events(quick_app):
        at = next(e.at for e in events if e.kind == "agent_connected")
        connected.append((at, call.caller_number))
    assert [number for _, number in sorted(connected)] == ["05320000001", "05320000003", "05320000002"]


async def test_a_caller_nobody_in_the_queue_can_take_overflows_to_the_operator(
    settings: Settings, tmp_path: Path, phone_port: int
) -> None:
    operator_only = [settings.agents[0].model_copy(update={"queues": ["operator"]})]
    app = create_app(quick(settings, tmp_path, agents=operator_only))
    await app.start(serve_web=False)
    try:
        done = ended(app)
        async with sipp.phone(port=phone_port, talk_ms=300) as desk:
            result = await sipp.call(settings, "183", digits="13", hold=30)  # the busy queue
            assert "answered" in (await desk.result()).log
        assert result.ok and result.hung_up_by == "remote", result.errors
        await asyncio.wait_for(done, 30)
        [(call, events)] = await calls_and_events(app)
    finally:
        await app.close()
    kinds = [e.kind for e in events]
    assert kinds.index("queued") < kinds.index("overflow") < kinds.index("agent_connected")
    overflow = next(e for e in events if e.kind == "overflow")
    assert overflow.data == {"source": "busy", "queue": "operator"}
    assert call.outcome == "completed"


async def test_a_busy_phone_hands_the_call_to_the_next_agent(
    two_agents: App, settings: Settings, phone_port: int, second_phone_port: int
) -> None:
    done = ended(two_agents)
    async with (
        sipp.phone(port=phone_port, mode="busy") as busy,
        sipp.phone(port=second_phone_port, talk_ms=300) as free,
    ):
        result = await sipp.call(settings, "183", digits="11", hold=30)
        assert "busy" in (await busy.result()).log  # 9001 answered 486 Busy Here
        assert "answered" in (await free.result()).log
    assert result.ok and result.hung_up_by == "remote", result.errors
    await asyncio.wait_for(done, 30)
    [(call, events)] = await calls_and_events(two_agents)
    steps = [(e.kind, e.data.get("agent")) for e in events if e.kind.startswith(("offered", "agent_"))]
    assert steps == [
        ("offered", "9001"), ("agent_no_answer", "9001"), ("offered", "9002"), ("agent_connected", "9002"),
    ]  # fmt: skip
    assert call.outcome == "completed"


async def test_an_agent_whose_phone_is_not_registered_is_never_offered_a_call(
    settings: Settings, hotline_settings: Settings, tmp_path: Path, phone_port: int
) -> None:
    # 9009 has no fixed contact and no phone has registered for it: Asterisk reports it offline.
    seated = [a for a in hotline_settings.agents if a.id in ("9009", "9001")]
    app = create_app(quick(settings, tmp_path, agents=seated))
    await app.start(serve_web=False)
    try:
        unregistered = app.queues.router.agents["9009"]
        assert (unregistered.presence, unregistered.reason) == (Presence.paused, "device_unreachable")
        done = ended(app)
        async with sipp.phone(port=phone_port, talk_ms=300) as desk:
            result = await sipp.call(settings, "183", digits="11", hold=30)
            assert "answered" in (await desk.result()).log
        assert result.ok, result.errors
        await asyncio.wait_for(done, 30)
        [(_, events)] = await calls_and_events(app)
        offered = {e.data["agent"] for e in events if e.kind == "offered"}
        stored = await agent_events(app, "9009")
    finally:
        await app.close()
    assert offered == {"9001"}
    assert (stored[-1].after, stored[-1].reason) == ("paused", "device_unreachable")
