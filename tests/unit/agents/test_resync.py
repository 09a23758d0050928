"""A restart in the middle of conversations: nobody is offered a call before the resync has
restored who is talking to whom, and what agents had asked for survives."""

from __future__ import annotations

import asyncio

from agents.service import Presence
from tests.unit.agents.harness import Desk, client_for, new_flow, presence, running_flow


async def test_an_agent_in_a_conversation_at_a_crash_is_not_offered_the_waiting_caller(desk: Desk) -> None:
    talking = await desk.queued_caller()
    await desk.until("agent_connected")
    await desk.flow.desk.pause("a1", "meal")  # asked for during the call: pending
    await desk.client.close()  # kill -9: Asterisk keeps caller and agent bridged
    # A second caller is in the queue too; the new process's IVR hands them over before the
    # queue flow's own resync has run (both follow the same Connected event).
    client = desk.client = client_for(desk.fake)
    flow = desk.flow = new_flow(desk, client)
    async with client:
        await flow.start()
        waiting = await desk.queued_caller()
        assert flow.router.agents["a1"].presence is Presence.available  # restored, not yet resynced
        client.on_event(flow.handle)
        runner = asyncio.create_task(client.run())
        await flow.synced()
        agent = flow.router.agents["a1"]
        assert (agent.presence, agent.call_id, agent.pending) == (Presence.on_call, talking, Presence.paused)
        assert not [e for e in desk.timeline if e.kind == "offered" and e.call_id == waiting]
        assert agent.missed_in_a_row == 0
        async with flow.notices.subscribe("a1") as stream:
            await desk.fake.caller_hangup(desk.agent_channel())  # the first conversation ends
            await presence(stream, "a1", Presence.wrap_up)
            await desk.timers.expire(60.0)
            paused = await presence(stream, "a1", Presence.paused)
        assert paused["reason"] == "meal"  # the pause asked for before the crash, not the next call
        assert waiting in flow.router.waiting
        call = await desk.calls.get(talking)
        assert call is not None and call.outcome == "completed"
        await flow.close(tidy=False)
    await runner


async def test_a_failed_phone_subscription_does_not_skip_the_resync(desk: Desk) -> None:
    call_id = await desk.queued_caller()
    await desk.until("agent_connected")
    await desk.client.close()
    desk.fake.fail("POST", "/applications/hotline/subscription", 500, "not now")
    client = client_for(desk.fake)
    flow = new_flow(desk, client)
    async with client:
        await flow.start()
        client.on_event(flow.handle)
        runner = asyncio.create_task(client.run())
        await flow.synced()
        assert desk.fake.requests_to("POST", "/ari/applications/hotline/subscription")
        assert flow.router.agents["a1"].call_id == call_id
        await desk.until("readopted_with_agent")
        await flow.close(tidy=False)
    await runner


async def test_a_conversation_outlives_a_crash_and_its_end_still_starts_wrap_up(desk: Desk) -> None:
    call_id = await desk.queued_caller()
    await desk.until("agent_connected")
    await desk.client.close()  # the process dies; Asterisk keeps caller and agent talking
    async with running_flow(desk.fake, desk.store, desk.calls, desk.timers) as (_, flow):
        await desk.until("readopted_with_agent")
        agent = flow.router.agents["a1"]
        assert (agent.presence, agent.call_id) == (Presence.on_call, call_id)
        assert flow.desk.agent_state("a1")["call"] is not None
        async with flow.notices.subscribe("a1") as stream:
            await desk.fake.caller_hangup(desk.agent_channel())
            await presence(stream, "a1", Presence.wrap_up)
        await desk.until("ended")
    call = await desk.calls.get(call_id)
    assert call is not None and call.outcome == "completed"
    assert desk.fake.channels == {}  # the caller was hung up with the agent


async def test_offers_left_ringing_by_a_crash_are_hung_up_and_the_caller_keeps_waiting(desk: Desk) -> None:
    desk.fake.auto_dial_answer = False
    call_id = await desk.queued_caller()
    await desk.until("offered")
    orphan = desk.agent_channel()
    await desk.client.close()
    async with running_flow(desk.fake, desk.store, desk.calls, desk.timers) as (_, flow):
        await desk.fake.wait_for(lambda: orphan not in desk.fake.channels)
        assert flow.live_calls == 0  # the caller comes back through the IVR, not through here
    call = await desk.calls.get(call_id)
    assert call is not None and call.outcome is None


async def test_a_resync_that_fails_does_not_hold_offers_back_for_good(desk: Desk) -> None:
    await desk.client.close()
    client = client_for(desk.fake)
    flow = desk.flow = new_flow(desk, client)
    async with client:
        await flow.start()
        flow.ctx.calls.open_calls = _broken  # type: ignore[method-assign]
        client.on_event(flow.handle)
        runner = asyncio.create_task(client.run())
        async with asyncio.timeout(5):
            await flow.synced()
        await desk.queued_caller()
        await desk.until("offered")
        await flow.close(tidy=False)
    await runner


async def _broken() -> list[object]:
    raise ConnectionError("database unreachable")
