"""Offering callers to agents: the agent's leg and Asterisk's event racing its creation."""

from __future__ import annotations

from tests.unit.agents.harness import Desk


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
    assert connected.data["agent"] == "a1"
    assert connected.data["agent_channel"].startswith("hotline-agent-")  # transcripts listen to it
