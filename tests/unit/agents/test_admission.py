"""Callers joining a queue: full queues and their overflow."""

from __future__ import annotations

from tests.unit.agents.harness import QUEUES, Desk, running_flow


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
