"""The queue flow's entry point: events routed to its parts by the registry and app_args."""

from __future__ import annotations

from tests.unit.agents.harness import Desk


async def test_a_leg_of_ours_that_nobody_follows_is_hung_up_when_it_enters_the_app(desk: Desk) -> None:
    # An agent leg of a call that has ended meanwhile (or of a previous run): known by its
    # app_args, not by the shape of its id.
    leg = desk.fake.make_channel("leftover-7", args=["agent", "gone-call"])
    await desk.fake.emit({"type": "StasisStart", "channel": leg, "args": ["agent", "gone-call"]})
    await desk.fake.wait_for(lambda: "leftover-7" not in desk.fake.channels)
    assert desk.fake.requests_to("DELETE", "/ari/channels/leftover-7")


async def test_events_of_channels_the_flow_does_not_follow_are_left_alone(desk: Desk) -> None:
    caller = desk.fake.make_channel("menu-caller")  # a caller still in the IVR's menus
    await desk.fake.emit({"type": "StasisStart", "channel": caller, "args": []})
    await desk.fake.emit({"type": "ChannelDtmfReceived", "channel": caller, "digit": "1"})
    await desk.fake.caller_hangup("menu-caller")
    assert desk.flow.live_calls == 0
    assert not [r for r in desk.fake.requests if "menu-caller" in r.path]
