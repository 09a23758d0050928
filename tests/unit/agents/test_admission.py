"""Callers joining a queue: full queues and their overflow."""

from __future__ import annotations

from agents.live import AgentSeat
from tests.unit.agents.harness import QUEUES, SEAT, Desk, running_flow


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


async def test_a_caller_who_asked_for_their_agent_is_offered_to_that_agent_first(desk: Desk) -> None:
    desk.fake.endpoints.append(
        {"technology": "PJSIP", "resource": "agent-a2", "state": "online", "channel_ids": []}
    )
    await desk.client.close()
    second = AgentSeat("a2", "Berk", frozenset(), frozenset({"tr"}), {})
    seats = (SEAT, second)
    async with running_flow(desk.fake, desk.store, desk.calls, desk.timers, seats=seats) as (_, flow):
        desk.flow = flow
        for asked, number in (("a2", "05320000001"), ("nobody", "05320000002")):
            channel = desk.fake.make_channel(caller=number)
            call, _ = await desk.calls.open(channel["id"], caller_number=number)
            await flow.enqueue(call.id, channel["id"], "operator", "tr", False, ("", number), asked)
            offered = await desk.until_for(call.id, "offered")
            queued = next(e for e in desk.timeline if e.kind == "queued" and e.call_id == call.id)
            if asked == "a2":  # a1 would come first by the queue's rule (longest idle, then id)
                assert (offered.data, queued.data["agent"]) == ({"agent": "a2"}, "a2")
            else:  # an agent this hotline does not know: the queue's rule, as for anyone
                assert offered.data == {"agent": "a1"} and "agent" not in queued.data
