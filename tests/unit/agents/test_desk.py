"""The agents' commands when the colleague they send a caller to cannot take it."""

from __future__ import annotations

from agents.live import AgentSeat
from agents.service import Presence
from tests.unit.agents.harness import SEAT, Desk, presence, running_flow

OPERATORS = tuple(AgentSeat(a, a, frozenset(), frozenset({"tr"}), {}) for a in ("a2", "a3"))


async def test_a_transfer_to_a_paused_colleague_goes_to_the_queue(desk: Desk) -> None:
    for agent_id in ("a2", "a3"):
        desk.fake.endpoints.append(
            {"technology": "PJSIP", "resource": f"agent-{agent_id}", "state": "online", "channel_ids": []}
        )
    await desk.client.close()
    async with running_flow(desk.fake, desk.store, desk.calls, desk.timers, seats=(SEAT, *OPERATORS)) as (
        _,
        flow,
    ):
        desk.flow = flow
        await flow.desk.pause("a2", "meal")
        await flow.desk.pause("a3", "meal")
        call_id = await desk.queued_caller()
        await desk.until("agent_connected")  # a1, the only one free
        await flow.desk.resume("a3")
        await flow.desk.transfer("a1", to_agent="a2")  # a2 is on a meal break
        await desk.count("offered", 2)
        offered = [e for e in desk.timeline if e.kind == "offered" and e.call_id == call_id]
        assert offered[-1].data == {"agent": "a3"}  # the queue took it at once


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
