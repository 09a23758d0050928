"""A direct line through real SIP: dialling 1830 skips the menus and lands in the operator queue."""

from __future__ import annotations

import asyncio

from hotline.app import App
from hotline.settings import Settings
from tests.harness import sipp
from tests.integration.conftest import calls_and_events, ended, leftovers


async def test_a_caller_on_the_direct_line_reaches_an_agent_without_the_menus(
    quick_app: App, settings: Settings, phone_port: int
) -> None:
    assert settings.asterisk.direct == {"1830": "operator"}  # rendered into the session's dialplan
    done = ended(quick_app)
    async with sipp.phone(port=phone_port, talk_ms=300) as desk:
        result = await sipp.call(settings, "1830", hold=30, caller_id="05329990001")
        answered = await desk.result()
    # The agent's phone showed the service and the caller.
    assert "answered" in answered.log and '"Operatör: Test Caller" <sip:05329990001@' in answered.log
    assert result.ok and result.hung_up_by == "remote", result.errors  # the agent ended the call
    await asyncio.wait_for(done, 30)

    [(call, events)] = await calls_and_events(quick_app)
    kinds = [e.kind for e in events]
    assert "prompt" not in kinds and "ivr_done" not in kinds
    assert kinds.index("answered") < kinds.index("direct") < kinds.index("queued")
    assert kinds.index("queued") < kinds.index("agent_connected") < kinds.index("ended")
    assert (call.extension, call.queue, call.language, call.urgent) == ("1830", "operator", "tr", False)
    assert call.outcome == "completed"
    channels, _ = await leftovers(settings)
    assert channels == []
