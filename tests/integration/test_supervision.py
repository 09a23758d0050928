"""Supervisors and agents acting on live calls with real phones: listen, barge, transfer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agents.service import Presence
from ari import AriClient
from hotline import asterisk
from hotline.app import App, create_app
from hotline.settings import Settings
from tests.harness import sipp
from tests.integration.conftest import calls_and_events, ended, leftovers, quick
from tests.integration.test_queues import timeline_kind


@pytest.fixture
async def two_agents(settings: Settings, hotline_settings: Settings, tmp_path: Path) -> AsyncIterator[App]:
    desks = [a for a in hotline_settings.agents if a.contact]
    app = create_app(quick(settings, tmp_path, agents=desks))
    await app.start(serve_web=False)
    yield app
    await app.close()


async def bridges(settings: Settings) -> dict[str, set[str]]:
    async with AriClient(
        settings.ari.url, settings.ari.user, asterisk.ari_password(settings), settings.ari.app
    ) as client:
        return {b.id: set(b.channels) for b in await client.bridges.list()}


async def connected_call(app: App) -> str:
    [(call, _)] = await calls_and_events(app)
    return call.id


async def test_a_supervisor_listens_then_barges_and_every_leg_ends_with_the_call(
    two_agents: App, settings: Settings, phone_port: int, second_phone_port: int
) -> None:
    app = two_agents
    done = ended(app)
    connected = timeline_kind(app, "agent_connected", 1)
    listening, barged = timeline_kind(app, "spy_connected", 1), timeline_kind(app, "spy_connected", 2)
    async with (
        sipp.phone(port=phone_port) as agent,
        sipp.phone(port=second_phone_port, calls=2) as supervisor,
    ):
        caller = asyncio.create_task(sipp.call(settings, "183", digits="11", hold=20))
        await asyncio.wait_for(connected, 30)
        call_id = await connected_call(app)
        [call_bridge] = [b for b, members in (await bridges(settings)).items() if len(members) == 2]

        listen_leg = await app.queues.desk.spy(call_id, "listen", phone="9002")
        await asyncio.wait_for(listening, 30)
        found = await bridges(settings)
        [spy_bridge] = [b for b, members in found.items() if listen_leg in members]
        # The supervisor hears the agent's channel through a snoop, in a bridge of their own; the
        # conversation's bridge is untouched (the caller cannot hear them).
        assert spy_bridge != call_bridge and len(found[call_bridge]) == 2
        assert {c.split("-")[1] for c in found[spy_bridge]} == {"spy", "snoop"}

        barge_leg = await app.queues.desk.spy(call_id, "barge", phone="9002")
        await asyncio.wait_for(barged, 30)
        assert barge_leg in (await bridges(settings))[call_bridge]  # everyone hears everyone

        result = await caller
        assert (await agent.result()).log.count("answered") == 1
        assert (await supervisor.result()).log.count("answered") == 2  # both legs ended with the call
    assert result.ok and result.hung_up_by == "local", result.errors
    await asyncio.wait_for(done, 30)
    [(call, events)] = await calls_and_events(app)
    assert call.outcome == "completed"
    spies = [(e.kind, e.data["mode"]) for e in events if e.kind.startswith("spy_")]
    assert spies[:4] == [
        ("spy_requested", "listen"), ("spy_connected", "listen"),
        ("spy_requested", "barge"), ("spy_connected", "barge"),
    ]  # fmt: skip
    channels, _ = await leftovers(settings)
    assert channels == []


async def test_an_agent_transfers_the_caller_to_a_colleague(
    two_agents: App, settings: Settings, phone_port: int, second_phone_port: int
) -> None:
    app = two_agents
    done = ended(app)
    first, second = timeline_kind(app, "agent_connected", 1), timeline_kind(app, "agent_connected", 2)
    # 9001 is the longest idle (it has the lower id at the same start) and takes the call first.
    app.queues.router.agents["9002"].idle_since += 1
    async with (
        sipp.phone(port=phone_port) as agent,
        sipp.phone(port=second_phone_port, talk_ms=1500) as colleague,
    ):
        caller = asyncio.create_task(sipp.call(settings, "183", digits="11", hold=30))
        await asyncio.wait_for(first, 30)
        call_id = await connected_call(app)
        assert await app.queues.desk.transfer("9001", to_agent="9002") == call_id
        await asyncio.wait_for(second, 30)
        assert app.queues.router.agents["9001"].presence in (Presence.wrap_up, Presence.available)
        assert (await agent.result()).log.count("answered") == 1  # the first leg ended (BYE)
        assert (await colleague.result()).log.count("answered") == 1
        result = await caller
    assert result.ok and result.hung_up_by == "remote", result.errors  # the colleague hung up
    await asyncio.wait_for(done, 30)
    [(call, events)] = await calls_and_events(app)
    steps = [(e.kind, e.data.get("agent")) for e in events if e.kind in ("agent_connected", "transferred")]
    assert steps == [("agent_connected", "9001"), ("transferred", "9001"), ("agent_connected", "9002")]
    assert call.outcome == "completed"
