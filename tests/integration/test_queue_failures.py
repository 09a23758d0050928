"""A step of the queue flow that Asterisk refuses, through real SIP: the caller is never left in
silence, the agent is never left on a call that does not exist."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ari import AriError
from ari.models import Bridge
from hotline.app import App
from hotline.settings import Settings
from tests.harness import sipp
from tests.integration.conftest import calls_and_events, ended, leftovers


async def test_a_bridge_asterisk_refuses_puts_the_caller_back_and_the_next_answer_connects(
    quick_app: App, settings: Settings, phone_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    bridges = quick_app.ari.bridges
    create = bridges.create
    refused: list[str] = []

    async def refuse_the_first_mixing_bridge(**kwargs: Any) -> Bridge:
        if kwargs.get("type") == "mixing" and not refused:
            refused.append(str(kwargs.get("name")))
            raise AriError(500, "injected failure", "POST", "/bridges")
        return await create(**kwargs)

    monkeypatch.setattr(bridges, "create", refuse_the_first_mixing_bridge)
    done = ended(quick_app)
    # The agent's phone answers every call it is offered; the first answer cannot be bridged.
    async with sipp.phone(port=phone_port, talk_ms=300, calls=2) as desk:
        result = await sipp.call(settings, "1830", hold=30, caller_id="05329990002")
        await desk.result()
    assert result.ok and result.hung_up_by == "remote", result.errors
    await asyncio.wait_for(done, 30)

    [(call, events)] = await calls_and_events(quick_app)
    kinds = [e.kind for e in events]
    assert refused == [f"call {call.id}"]
    assert kinds.count("offered") == 2
    assert kinds.index("step_failed") < kinds.index("step_recovered") < kinds.index("agent_connected")
    assert "handed_to_fallback" not in kinds
    assert call.outcome == "completed"
    channels, _ = await leftovers(settings)
    assert channels == []
