"""`hotline run` as an operator starts it: serves real calls, reports health, stops on SIGTERM,
and a crash of the process does not drop a call that Asterisk still holds."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import col, select

from agents.models import AgentEvent, AgentState
from hotline import asterisk
from hotline.calls import CallLog
from hotline.db import Store
from hotline.settings import Settings
from tests.harness import sipp
from tests.integration.service import Service, start_service


@pytest.fixture
async def services() -> AsyncIterator[list[Service]]:
    """Services started by a test; any still running at the end are killed."""
    started: list[Service] = []
    yield started
    for service in started:
        await service.kill()


async def test_hotline_run_answers_calls_and_stops_cleanly(
    settings: Settings, services: list[Service], phone_port: int
) -> None:
    web_port = sipp.free_port(kind=1)
    service = await start_service(settings, HOTLINE_WEB__PORT=str(web_port))
    services.append(service)
    await service.wait_for("hotline_ready")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{web_port}/healthz") as response:
            assert response.status == 200
            assert (await response.json())["ari_connected"] is True

    async with sipp.phone(port=phone_port, talk_ms=300) as desk:
        result = await sipp.call(settings, "183", digits="10", hold=30)  # Turkish, operator
        assert (await desk.result()).ok
    assert result.ok and result.hung_up_by == "remote", result.errors
    ended = await service.wait_for("call_ended")
    assert ended["outcome"] == "completed"

    service.process.send_signal(signal.SIGTERM)
    await service.wait_for("hotline_stopped")
    assert await asyncio.wait_for(service.process.wait(), 15) == 0

    log = "".join(service.lines)
    assert asterisk.ari_password(settings) not in log
    assert '"call_id"' in log  # call lines carry the call id


async def test_a_crash_mid_call_does_not_drop_the_caller(
    settings: Settings, services: list[Service], phone_port: int
) -> None:
    first = await start_service(settings, HOTLINE_WEB__PORT=str(sipp.free_port(kind=1)))
    services.append(first)
    await first.wait_for("hotline_ready")
    # The caller listens for five seconds, then chooses Turkish and the operator.
    caller = asyncio.create_task(sipp.call(settings, "183", digits="10", wait=5, hold=30))
    started = await first.wait_for("call_started")

    first.process.kill()  # no goodbye: the call is in the middle of its welcome
    await first.process.wait()

    second = await start_service(settings, HOTLINE_WEB__PORT=str(sipp.free_port(kind=1)))
    services.append(second)
    readopted = await second.wait_for("call_readopted")
    assert readopted["call_id"] == started["call_id"]
    async with sipp.phone(port=phone_port, talk_ms=300) as desk:
        ended = await second.wait_for("call_ended", timeout=60)
        assert ended["outcome"] == "completed"  # the keys pressed after the crash reached the new process
        assert (await desk.result()).ok  # and the caller reached the agent
    result = await asyncio.wait_for(caller, 90)
    assert result.ok and result.hung_up_by == "remote", result.errors
    store = Store(settings.database_url)
    try:
        kinds = [e.kind for e in await CallLog(store).events(started["call_id"])]
    finally:
        await store.close()
    assert kinds.count("stasis_start") == 1
    story = [k for k in kinds if k != "ticket_created"]  # the call's ticket is noted after its end
    assert "readopted" in kinds and "ivr_done" in kinds and story[-1] == "ended"


async def test_hotline_run_refuses_a_database_that_is_not_upgraded(
    settings: Settings, tmp_path: Path
) -> None:
    service = await start_service(settings, HOTLINE_DATABASE__URL=f'"sqlite:///{tmp_path / "empty.db"}"')
    output, _ = await asyncio.wait_for(service.process.communicate(), 30)
    assert service.process.returncode == 1
    assert "run 'hotline db upgrade'" in output.decode()


async def test_stopping_the_hotline_mid_call_hands_the_caller_to_an_agent_phone(
    settings: Settings, services: list[Service], phone_port: int, second_phone_port: int
) -> None:
    service = await start_service(settings, HOTLINE_WEB__PORT=str(sipp.free_port(kind=1)))
    services.append(service)
    await service.wait_for("hotline_ready")
    # The fallback rings both agents' phones; one answers, the other is cancelled.
    async with (
        sipp.phone(port=phone_port, talk_ms=1000) as desk,
        sipp.phone(port=second_phone_port, mode="never") as other_desk,
    ):
        caller = asyncio.create_task(sipp.call(settings, "183", hold=90))
        started = await service.wait_for("call_started")
        service.process.send_signal(signal.SIGTERM)
        handed = await service.wait_for("calls_handed_to_fallback")
        assert handed["calls"] == 1
        assert await asyncio.wait_for(service.process.wait(), 15) == 0

        answered = await desk.result(timeout=60)
        assert answered.ok and "answered" in answered.log, answered.errors
        assert "cancelled" in (await other_desk.result()).log
        result = await asyncio.wait_for(caller, 30)
    assert result.ok and result.hung_up_by == "remote", result.errors  # the agent hung up
    store = Store(settings.database_url)
    try:
        call = await CallLog(store).get(started["call_id"])
    finally:
        await store.close()
    assert call is not None and call.outcome == "fallback"


async def test_a_crash_while_the_caller_talks_to_an_agent_keeps_the_conversation_and_its_record(
    settings: Settings, services: list[Service], phone_port: int
) -> None:
    first = await start_service(settings, HOTLINE_WEB__PORT=str(sipp.free_port(kind=1)))
    services.append(first)
    await first.wait_for("hotline_ready")
    async with sipp.phone(port=phone_port) as desk:  # the agent talks until the caller hangs up
        caller = asyncio.create_task(sipp.call(settings, "183", digits="10", hold=20))
        connected = await first.wait_for("agent_connected")

        first.process.kill()  # mid-conversation: Asterisk keeps caller and agent bridged
        await first.process.wait()

        second = await start_service(settings, HOTLINE_WEB__PORT=str(sipp.free_port(kind=1)))
        services.append(second)
        readopted = await second.wait_for("call_readopted")
        assert (readopted["call_id"], readopted["agent_id"]) == (connected["call_id"], connected["agent_id"])
        result = await asyncio.wait_for(caller, 60)
        ended = await second.wait_for("call_ended")
        agent = await desk.result()
    assert result.ok and result.hung_up_by == "local", result.errors  # the caller talked to the end
    assert agent.ok and agent.log.count("answered") == 1, agent.errors  # and the agent got the BYE
    assert (ended["call_id"], ended["outcome"]) == (connected["call_id"], "completed")
    assert await second.stop() == 0  # the presence history trails by a moment (written behind)
    store = Store(settings.database_url)
    try:
        kinds = [e.kind for e in await CallLog(store).events(connected["call_id"])]
        async with store.session() as session:
            presence = (
                await session.exec(
                    select(AgentEvent)
                    .where(AgentEvent.agent_id == connected["agent_id"])
                    .order_by(col(AgentEvent.id))
                )
            ).all()
    finally:
        await store.close()
    story = [k for k in kinds if k != "ticket_created"]  # the call's ticket is noted after its end
    assert kinds.count("agent_connected") == 1 and "readopted_with_agent" in kinds and story[-1] == "ended"
    # The second process knew the agent was on that call, and its end started their wrap-up.
    steps = [(p.after, p.reason) for p in presence]
    assert steps[steps.index(("on_call", "readopted")) + 1] == ("wrap_up", "call_ended")


async def test_after_a_crash_a_waiting_caller_is_not_offered_to_the_agent_still_talking(
    settings: Settings, services: list[Service], phone_port: int
) -> None:
    # Only 9001 is at work: the others (whose phones nobody answers here) are on a break, as a
    # previous run left them.
    store = Store(settings.database_url)
    try:
        async with store.session() as session:
            for agent_id in ("9002", "9003", "9004", "9005", "9009"):
                session.add(AgentState(agent_id=agent_id, presence="paused", reason="meal"))
            await session.commit()
    finally:
        await store.close()
    first = await start_service(settings, HOTLINE_WEB__PORT=str(sipp.free_port(kind=1)))
    services.append(first)
    await first.wait_for("hotline_ready")
    # Agent 9001's phone hangs up each call after 10 s of talk; both callers use the direct line
    # (no menus), so the second is waiting well before the first conversation ends.
    async with sipp.phone(port=phone_port, calls=2, talk_ms=10_000) as desk:
        talking = asyncio.create_task(sipp.call(settings, "1830", hold=60))
        connected = await first.wait_for("agent_connected")
        assert connected["agent_id"] == "9001"
        waiting = asyncio.create_task(sipp.call(settings, "1830", hold=60))
        queued = await first.wait_for("call_queued")

        first.process.kill()  # kill -9 while 9001 talks and a second caller waits
        await first.process.wait()

        second = await start_service(settings, HOTLINE_WEB__PORT=str(sipp.free_port(kind=1)))
        services.append(second)
        readopted = await second.wait_for("call_readopted")
        while "agent_id" not in readopted:  # the IVR takes back the waiting caller too
            readopted = await second.wait_for("call_readopted")
        assert readopted["call_id"] == connected["call_id"]
        results = await asyncio.wait_for(asyncio.gather(talking, waiting), 90)
        agent = await desk.result()
    assert all(r.ok and r.hung_up_by == "remote" for r in results), [r.errors for r in results]
    assert agent.ok and agent.log.count("answered") == 2 and "cancelled" not in agent.log, agent.log
    assert await second.stop() == 0
    store = Store(settings.database_url)
    try:
        log = CallLog(store)
        first_call, second_call = await log.events(connected["call_id"]), await log.events(queued["call_id"])
        async with store.session() as session:
            presence = (
                await session.exec(
                    select(AgentEvent).where(AgentEvent.agent_id == "9001").order_by(col(AgentEvent.id))
                )
            ).all()
    finally:
        await store.close()
    first_ended = next(e.at for e in first_call if e.kind == "ended")
    offers = [e for e in second_call if e.kind == "offered" and e.data["agent"] == "9001"]
    # 9001 was offered the waiting caller only once their own conversation was over ...
    assert offers and all(e.at > first_ended for e in offers)
    story = [e.kind for e in second_call if e.kind != "ticket_created"]  # the ticket is noted after
    assert story.count("agent_connected") == 1 and story[-1] == "ended"
    # ... and no miss was counted for a phone that never rang.
    assert not [p for p in presence if p.reason == "no_answer"]
