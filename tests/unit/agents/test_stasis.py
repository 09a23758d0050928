"""The queue flow on the fake ARI server and a SQLite store: how Asterisk's answers and events
interleave, which a real Asterisk only shows now and then."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agents.errors import BadRequest, CommandError
from agents.live import AgentSeat
from agents.models import Callback
from agents.service import Presence
from hotline.models import CallOutcome, utcnow
from tests.unit.agents.harness import QUEUES, SEAT, Desk, new_flow, presence, running_flow


async def test_an_agent_channel_entering_the_app_before_create_answers_is_still_dialled(desk: Desk) -> None:
    # Asterisk may send the new channel's StasisStart before the reply to channels/create.
    desk.fake.create_reply_delay = 0.2
    call_id = await desk.queued_caller()
    await desk.until("agent_connected")
    dials = [r for r in desk.fake.requests if r.method == "POST" and r.path.endswith("/dial")]
    assert len(dials) == 1
    [mixing] = [b for b in desk.fake.bridges.values() if b["bridge_type"] == "mixing"]
    assert len(mixing["channels"]) == 2
    assert desk.flow.router.agents["a1"].presence == "on_call"
    assert call_id not in desk.flow.router.waiting


async def test_an_agent_channel_entering_the_app_after_create_answers_is_dialled(desk: Desk) -> None:
    await desk.queued_caller()
    connected = await desk.until("agent_connected")
    assert connected.data == {"agent": "a1"}


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


async def test_a_transferred_caller_waits_in_the_new_queue_and_the_agent_wraps_up(desk: Desk) -> None:
    async with desk.flow.notices.subscribe("a1") as stream:
        call_id = await desk.queued_caller("social_assistance")
        await desk.until("agent_connected")
        caller_channel = next(c for c in desk.fake.channels if not c.startswith("hotline-agent-"))
        assert await desk.flow.desk.transfer("a1", queue="operator") == call_id
        await presence(stream, "a1", Presence.wrap_up)
    assert desk.flow.router.waiting[call_id].queue == "operator"
    assert desk.fake.bridges["hotline-queue-operator"]["channels"] == [caller_channel]
    assert not [b for b in desk.fake.bridges.values() if b["bridge_type"] == "mixing"]
    call = await desk.calls.get(call_id)
    assert call is not None and call.queue == "operator" and call.outcome is None
    kinds = [e.kind for e in desk.timeline if e.call_id == call_id]
    assert kinds[-2:] == ["transferred", "queued"]


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


async def test_a_call_back_left_by_a_previous_run_keeps_its_place_and_is_dialled(desk: Desk) -> None:
    # A caller asked for a call back 5 minutes ago; the process died while their number rang.
    channel = desk.fake.make_channel(caller="05329876543")
    call, _ = await desk.calls.open(channel["id"], caller_number="05329876543", queue="operator")
    row = Callback(
        call_id=call.id,
        number="05329876543",
        queue="operator",
        language="tr",
        waiting_since=utcnow() - timedelta(minutes=5),
        status="dialling",
        attempts=1,
    )
    async with desk.store.session() as session:
        session.add(row)
        await session.commit()
    await desk.calls.close(call.id, CallOutcome.callback)
    await desk.client.close()
    dialling = QUEUES.model_copy(update={"callback_dial": "PJSIP/{number}@carrier"})
    async with running_flow(desk.fake, desk.store, desk.calls, desk.timers, dialling) as (_, flow):
        await desk.until("callback_connected")  # the agent (available) took it and the caller answered
        [answered] = [
            c["name"] for c in desk.fake.channels.values() if c["id"].startswith("hotline-callback-")
        ]
        assert answered.startswith("PJSIP/05329876543@carrier")
        assert flow.desk.agent_state("a1")["call"]["callback"] is True
    async with desk.store.session() as session:
        stored = await session.get(Callback, row.id)
    assert stored is not None and (stored.status, stored.attempts) == ("connected", 2)
    back = await desk.calls.get(stored.outbound_call_id or "")
    assert back is not None and back.extension == "callback" and back.caller_number == "05329876543"


async def test_a_full_queue_sends_new_callers_to_its_overflow_but_never_an_urgent_one(desk: Desk) -> None:
    social = QUEUES.queues["social_assistance"].model_copy(update={"max_length": 1, "overflow": "operator"})
    small = QUEUES.model_copy(update={"queues": {**QUEUES.queues, "social_assistance": social}})
    await desk.client.close()
    async with running_flow(desk.fake, desk.store, desk.calls, desk.timers, small) as (_, flow):
        await flow.desk.pause("a1", "meal")  # nobody answers: callers stay waiting
        desk.flow = flow
        first = await desk.queued_caller("social_assistance", urgent=False)
        second = await desk.queued_caller("social_assistance", urgent=False)
        full = await desk.until("queue_full")
        assert full.call_id == second and full.data == {"queue": "social_assistance", "overflow": "operator"}
        assert (flow.router.waiting[first].queue, flow.router.waiting[second].queue) == (
            "social_assistance",
            "operator",
        )
        channel = desk.fake.make_channel(caller="05320000009")
        call, _ = await desk.calls.open(channel["id"], caller_number="05320000009")
        await flow.enqueue(call.id, channel["id"], "social_assistance", "tr", True, ("", "05320000009"))
        assert flow.router.waiting[call.id].queue == "social_assistance"  # urgent: let in over the limit


async def test_a_listening_supervisor_is_connected_only_once_the_snoop_is_in_their_bridge(desk: Desk) -> None:
    desk.fake.endpoints.append(
        {"technology": "PJSIP", "resource": "agent-s1", "state": "online", "channel_ids": []}
    )
    supervisor = AgentSeat("s1", "Sema", frozenset({"operator"}), frozenset({"tr"}), {})
    await desk.client.close()
    async with running_flow(desk.fake, desk.store, desk.calls, desk.timers, seats=(SEAT, supervisor)) as (
        _,
        flow,
    ):
        desk.flow = flow
        call_id = await desk.queued_caller()  # an emergency: a1 (not s1, who serves only operator) takes it
        await desk.until("agent_connected")
        leg = await flow.desk.spy(call_id, "listen", phone="s1")
        await desk.until("spy_connected")
        [bridge] = [b for b in desk.fake.bridges.values() if leg in b["channels"]]
        assert sorted(c.split("-")[1] for c in bridge["channels"]) == ["snoop", "spy"]
        await desk.fake.caller_hangup(leg)  # the supervisor hangs up: snoop and bridge go with them
        await desk.until("spy_ended")
        assert not [c for c in desk.fake.channels if c.startswith(("hotline-snoop-", "hotline-spy-"))]
        assert bridge["id"] not in desk.fake.bridges
