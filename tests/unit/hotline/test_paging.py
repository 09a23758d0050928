"""Which call events and words are urgency signals (hotline.paging), on a real store: the
emergency key, a caller's urgent words (once per rule and call, the caller's side only), calls
again and again from one number, and an urgent caller cut off before an agent (called back)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from ari import AriClient
from escalation import store as incidents
from escalation.channels import ChannelKind, Delivery, PageMessage
from escalation.config import EscalationConfig
from escalation.flow import Escalations
from escalation.http import IncidentRoutes
from escalation.keywords import load_keywords
from escalation.models import Incident
from escalation.voice import VoicePager
from hotline import db
from hotline.calls import CallLog
from hotline.models import CallEventKind, CallOutcome
from hotline.paging import Paging
from transcripts.bus import TranscriptNotice
from transcripts.models import Speaker

CONFIG = {
    "targets": {"desk": {"label": {"en": "Desk"}, "webhook": {"url": "http://127.0.0.1:9/pages"}}},
    "policies": [{"id": "default", "categories": ["*"], "levels": [{"targets": ["desk"]}]}],
    "signals": {"repeat_calls": 3, "repeat_window_minutes": 60},
}


class Sent:
    async def send(self, message: PageMessage) -> Delivery:
        return Delivery(True)


@pytest.fixture
async def paging(store: db.Store) -> AsyncIterator[Paging]:
    config = EscalationConfig.model_validate(CONFIG)
    calls = CallLog(store)
    escalations = Escalations(
        store,
        config,
        {ChannelKind.webhook: Sent()},
        address=lambda _target, _channel: "http://127.0.0.1:9/pages",
        links=lambda page: {"ack": f"/ack#{page.token}"},
    )

    async def speak(_text: str, _language: str) -> str:
        return "sound:x"

    async def outcome(_page: str, _what: str) -> None:
        return None

    voice = VoicePager(cast(AriClient, None), speak, outcome)  # no voice targets here
    matcher = load_keywords(Path("config/keywords.toml"))
    found = Paging(
        escalations, voice, IncidentRoutes(store, escalations, calls), calls, store, config, matcher, {}, dict
    )
    calls.subscribe(found.on_call_event)
    yield found
    for task in list(found._tasks):
        await task
    await calls.flush()


async def settled(paging: Paging) -> list[Incident]:
    await paging.calls.flush()  # the timeline's listeners hear of rows once they are committed
    while paging._tasks:
        await asyncio.gather(*list(paging._tasks))
    async with paging.store.session() as session:
        from sqlmodel import select

        return list((await session.exec(select(Incident))).all())


def line(call_id: str, text: str, speaker: Speaker = Speaker.caller, final: bool = True) -> TranscriptNotice:
    at = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    return TranscriptNotice(call_id, speaker, "", final, text, at, at, "en", "whisper")


async def test_the_callers_urgent_words_open_one_incident_and_each_rule_signals_once(paging: Paging) -> None:
    call, _ = await paging.calls.open("c1", caller_number="05321234567")
    paging.heard(line(call.id, "The agent says he has a knife", speaker=Speaker.agent))  # not the caller
    assert await settled(paging) == []
    paging.heard(line(call.id, "My husband has a knife", final=False))  # a partial is enough
    paging.heard(line(call.id, "My husband has a knife and he is threatening to kill me."))
    [incident] = await settled(paging)
    timeline = await incidents.timeline(paging.store, incident.id)
    signals = [e.data for e in timeline if e.kind == "signal"]
    rules = [s["evidence"]["rule"] for s in signals]
    assert len(rules) == len(set(rules)) >= 2  # the knife once (from the partial), then the threat
    # The knife was heard on the partial already; the final line added only the rules it alone matched.
    assert any(s["evidence"]["final"] is False for s in signals)
    assert any(s["evidence"]["final"] is True for s in signals)
    assert {s["signal"] for s in signals} == {"keyword"}
    assert incident.caller_number == "05321234567" and incident.severity == "critical"


async def test_a_third_call_within_the_window_is_a_signal_once(paging: Paging) -> None:
    for n in range(4):
        await paging.calls.open(f"r{n}", caller_number="05320000003", extension="183")
    [incident] = await settled(paging)  # the third call signals; the fourth does not again
    [signal] = [e for e in await incidents.timeline(paging.store, incident.id) if e.kind == "signal"]
    assert signal.data["signal"] == "repeat_calls" and len(signal.data["evidence"]["calls"]) == 2
    assert incident.severity == "medium"


async def test_an_urgent_caller_cut_off_before_an_agent_is_signalled_and_called_back(paging: Paging) -> None:
    asked: list[tuple[Any, ...]] = []

    async def call_back(*args: str) -> str | None:
        asked.append(args)
        return "cb1"

    paging.call_back = call_back
    call, _ = await paging.calls.open("u1", caller_number="05329876543", language="tr")
    await paging.calls.route(call.id, queue="emergency", category=None, language="tr", path=[])
    await paging.calls.mark_urgent(call.id, "emergency")
    await settled(paging)  # the key's incident is open before the caller gives up (seconds later)
    await paging.calls.close(call.id, CallOutcome.abandoned)
    served, _ = await paging.calls.open("u2", caller_number="05329876544")
    await paging.calls.mark_urgent(served.id, "emergency")
    await paging.calls.record(served.id, CallEventKind.agent_connected, agent="a1")
    await paging.calls.close(served.id, CallOutcome.completed)
    opened = {i.call_id: i for i in await settled(paging)}
    assert asked == [(call.id, "05329876543", "emergency", "tr", "duty_of_care")]
    cut_off = await incidents.timeline(paging.store, opened[call.id].id)
    assert [e.data["signal"] for e in cut_off if e.kind == "signal"] == ["ivr_key", "abandoned_urgent"]
    assert [e.data for e in cut_off if e.kind == "callback"] == [{"callback": "cb1", "queue": "emergency"}]
    served_timeline = await incidents.timeline(paging.store, opened[served.id].id)
    served_signals = [e.data["signal"] for e in served_timeline if e.kind == "signal"]
    assert "abandoned_urgent" not in served_signals  # an agent took it
