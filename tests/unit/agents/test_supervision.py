"""Supervisors listening, whispering or barging in on a call."""

from __future__ import annotations

from agents.live import AgentSeat
from tests.unit.agents.harness import SEAT, Desk, running_flow


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
