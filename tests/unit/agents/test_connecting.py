"""Connecting a caller to the agent who answered, when Asterisk refuses a step."""

from __future__ import annotations

import pytest

from agents.errors import CommandError
from agents.service import Presence
from tests.unit.agents.harness import Desk, answer, presence


async def test_a_bridge_that_cannot_be_made_puts_the_caller_back_in_place_and_frees_the_agent(
    desk: Desk,
) -> None:
    desk.fake.auto_dial_answer = False
    call_id = await desk.queued_caller()
    caller_channel = next(c for c in desk.fake.channels if not c.startswith("hotline-agent-"))
    since = desk.flow.router.waiting[call_id].since
    await desk.until("offered")
    leg = desk.agent_channel()
    desk.fake.fail("POST", "/bridges", 500, "no bridge today")
    await answer(desk.fake, leg)
    recovered = await desk.until("step_recovered")
    assert recovered.data == {"step": "connect"}
    # The caller waits again with music, in their place; the agent's answered leg is gone.
    assert caller_channel in desk.fake.bridges["hotline-queue-emergency"]["channels"]
    assert desk.flow.router.waiting[call_id].since == since
    assert leg not in desk.fake.channels
    agent = desk.flow.router.agents["a1"]
    assert agent.missed_in_a_row == 0 and agent.penalised_until == 0.0
    # ... and is offered again; this time the bridge is made.
    await desk.count("offered", 2)
    await answer(desk.fake, desk.agent_channel())
    await desk.until("agent_connected")
    [mixing] = [b for b in desk.fake.bridges.values() if b["bridge_type"] == "mixing"]
    assert caller_channel in mixing["channels"]
    assert caller_channel not in desk.fake.bridges["hotline-queue-emergency"]["channels"]
    assert desk.flow.router.agents["a1"].presence is Presence.on_call


async def test_a_caller_we_keep_failing_to_connect_reaches_a_person_through_the_fallback(desk: Desk) -> None:
    desk.fake.auto_dial_answer = False
    call_id = await desk.queued_caller()
    caller_channel = next(c for c in desk.fake.channels if not c.startswith("hotline-agent-"))
    desk.fake.fail("POST", "/bridges", 500, "no bridge today", times=10)
    for tries in range(1, 4):
        await desk.count("offered", tries)
        await answer(desk.fake, desk.agent_channel())
        await desk.count("step_failed", tries)
    await desk.until("ended")
    [handed] = desk.fake.requests_to("POST", f"/ari/channels/{caller_channel}/continue")
    assert handed.query["label"] == "fallback"
    call = await desk.calls.get(call_id)
    assert call is not None and call.outcome == "fallback"
    assert desk.flow.live_calls == 0 and call_id not in desk.flow.router.waiting
    assert desk.flow.router.agents["a1"].presence is Presence.available


async def test_an_early_wrap_up_timer_never_cuts_a_later_wrap_up_short(desk: Desk) -> None:
    async with desk.flow.notices.subscribe("a1") as stream:
        await desk.queued_caller()
        await desk.until("agent_connected")
        await desk.fake.caller_hangup(desk.agent_channel())  # the agent hangs up: 60 s of wrap-up
        await presence(stream, "a1", Presence.wrap_up)
        await desk.flow.desk.end_wrap_up("a1")  # done early; the 60 s timer of that call is cancelled
        await desk.queued_caller()
        await desk.count("agent_connected", 2)
        await desk.fake.caller_hangup(desk.agent_channel())
        await presence(stream, "a1", Presence.wrap_up)
        await desk.timers.expire(60.0)  # only the second call's timer is left to run
        done = await presence(stream, "a1", Presence.available)
    assert done["reason"] == "wrap_up_done"
    with pytest.raises(CommandError):
        await desk.flow.desk.end_wrap_up("a1")
