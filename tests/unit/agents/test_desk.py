"""The agents' commands when the colleague they send a caller to cannot take it."""

from __future__ import annotations

from agents.live import AgentSeat
from tests.unit.agents.harness import SEAT, Desk, running_flow

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
