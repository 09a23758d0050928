"""A caller who would rather not wait asks to be called back, keeps their place, and is called
back and connected when an agent is free."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlmodel import select

from agents.models import Callback
from hotline.app import create_app
from hotline.settings import Settings
from tests.harness import sipp
from tests.integration.conftest import QUICK_QUEUES, calls_and_events, ended, quick
from tests.integration.test_queues import timeline_kind


async def test_a_caller_asks_for_a_call_back_and_is_connected_to_the_next_free_agent(
    settings: Settings, tmp_path: Path, phone_port: int, second_phone_port: int
) -> None:
    config = quick(settings, tmp_path)
    # The caller's own phone is played by a SIPp phone: agent 9002's address (9002 is not at work).
    queues = QUICK_QUEUES.replace("[queues.help]\n", "[queues.help]\ncallback = true\ncallback_after = 1.0\n")
    Path(config.queues.file).write_text('callback_dial = "PJSIP/{number}@agent-9002"\n' + queues)
    app = create_app(config)
    await app.start(serve_web=False)
    try:
        await app.queues.desk.pause("9001", "meal")  # nobody free: the caller waits
        waiting = timeline_kind(app, "callback_waiting", 1)
        both_ended = ended(app, count=2)  # the caller's call, then the call back
        # Turkish, help; then, after hearing the offer, 1 for a call back.
        result = await sipp.call(settings, "183", digits="11,,,,,,,1", hold=40, caller_id="05329876543")
        assert result.ok and result.hung_up_by == "remote", result.errors  # we let them go
        await asyncio.wait_for(waiting, 30)
        async with (
            sipp.phone(port=phone_port, calls=1) as agent,
            sipp.phone(port=second_phone_port, calls=1, talk_ms=1500) as citizen,
        ):
            await app.queues.desk.resume("9001")
            assert (await citizen.result()).log.count("answered") == 1
            assert (await agent.result()).log.count("answered") == 1
        await asyncio.wait_for(both_ended, 30)
        (first, first_events), (back, back_events) = await calls_and_events(app)
        async with app.store.session() as session:
            [callback] = (await session.exec(select(Callback))).all()
    finally:
        await app.close()
    assert first.outcome == "callback" and first.caller_number == "05329876543"
    kinds = [e.kind for e in first_events]
    assert kinds.index("callback_requested") < kinds.index("callback_waiting") < kinds.index("ended")
    assert kinds.index("callback_dialling") < kinds.index("callback_connected")
    assert back.extension == "callback" and back.caller_number == "05329876543"
    assert back.outcome == "completed" and back.queue == "help"
    assert [e.data.get("agent") for e in back_events if e.kind == "agent_connected"] == ["9001"]
    assert (callback.status, callback.attempts, callback.outbound_call_id) == ("connected", 1, back.id)
