"""Urgent calls page desks through the real Asterisk: a SIPp caller presses 9, a SIPp police desk
is called, hears the page and presses 1; a desk that never answers hands the incident on to the
next level after its acknowledgement timeout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ari import events as ev
from escalation import store as incidents
from escalation.models import Incident, IncidentEvent, Status
from hotline.app import App, create_app
from hotline.settings import Settings
from tests.harness import sipp
from tests.integration.conftest import QUICK_QUEUES, calls_and_events, ended, quick
from tests.integration.test_queues import timeline_kind
from tests.integration.test_transcripts import CALLER_SAYS, flite


@pytest.fixture
async def paging_app(settings: Settings) -> AsyncIterator[App]:
    """The hotline with paging on (the session's escalation.toml: police desk, then backup desk),
    and no agent at work: the caller waits, so no agent phone is rung by these tests."""
    on = settings.escalation.model_copy(update={"enabled": True})
    app = create_app(settings.model_copy(update={"escalation": on, "agents": []}))
    await app.start(serve_web=False)
    yield app
    await app.close()


def incident_where(app: App, wanted: str) -> asyncio.Future[Incident]:
    """Resolves with the first incident that reaches status ``wanted`` (from the supervisors' stream)."""
    found: asyncio.Future[Incident] = asyncio.get_running_loop().create_future()

    async def watch() -> None:
        async with app.queues.notices.subscribe() as stream:
            while not found.done():
                notice = await stream.get()
                if notice is None:  # the notifier closed: the app is stopping
                    return
                if notice.get("type") == "incident" and notice.get("status") == wanted:
                    found.set_result(await incidents.get_incident(app.store, notice["incident_id"]))

    task = asyncio.create_task(watch())
    found.add_done_callback(lambda _: task.cancel())
    return found


def kinds(timeline: list[IncidentEvent]) -> list[str]:
    return [str(e.kind) for e in timeline]


async def test_a_caller_pressing_9_pages_the_police_desk_which_hears_it_and_accepts_with_1(
    paging_app: App, settings: Settings, desk_ports: list[int]
) -> None:
    played: list[ev.PlaybackStarted] = []

    async def heard(event: ev.Event) -> None:
        if isinstance(event, ev.PlaybackStarted) and "hotline-page-" in event.playback.target_uri:
            played.append(event)

    paging_app.ari.on_event(heard)
    acknowledged = incident_where(paging_app, Status.acknowledged)
    async with sipp.phone(port=desk_ports[0], keys="1", keys_after_ms=2500, talk_ms=2000) as desk:
        caller = asyncio.create_task(sipp.call(settings, "183", digits="9", hold=12))
        incident = await asyncio.wait_for(acknowledged, 40)
        assert "pressed 1" in (await desk.result()).log
    await caller
    assert (incident.category, incident.severity, incident.acked_by) == ("emergency", "high", "police_desk")
    assert incident.caller_number == "05321234567" and incident.level == 0
    timeline = await incidents.timeline(paging_app.store, incident.id)
    steps = kinds(timeline)
    assert steps[:3] == ["opened", "signal", "paged"]
    assert steps.index("paged") < steps.index("answered") < steps.index("acknowledged")
    assert timeline[1].data["signal"] == "ivr_key"
    # The desk heard the incident read out (a synthesised page, played on its own leg).
    assert played and "/page-" in played[0].playback.media_uri
    [page] = await incidents.pages_of(paging_app.store, incident.id)
    assert (page.target, page.channel, page.state, page.tries) == ("police_desk", "voice", "acknowledged", 1)


async def test_a_desk_that_never_answers_makes_the_next_level_be_paged_after_its_timeout(
    paging_app: App, settings: Settings, desk_ports: list[int]
) -> None:
    acknowledged = incident_where(paging_app, Status.acknowledged)
    async with (
        sipp.phone(port=desk_ports[0], mode="never", calls=3),
        sipp.phone(port=desk_ports[1], keys="1", keys_after_ms=1500, talk_ms=2000) as backup,
    ):
        caller = asyncio.create_task(sipp.call(settings, "183", digits="9", hold=25))
        incident = await asyncio.wait_for(acknowledged, 60)
        assert "pressed 1" in (await backup.result()).log
    await caller
    assert (incident.acked_by, incident.level) == ("backup_desk", 1)
    timeline = await incidents.timeline(paging_app.store, incident.id)
    [moved] = [e for e in timeline if e.kind == "escalated"]
    assert moved.data == {"from": 0, "to": 1, "loop": 0, "reason": "timeout"}
    [first_page] = [e for e in timeline if e.kind == "paged"][:1]
    # The police desk's acknowledgement timeout (8 s) ran out before the next level was paged.
    assert (moved.at - first_page.at).total_seconds() >= 8
    pages = await incidents.pages_of(paging_app.store, incident.id)
    police = [p for p in pages if p.target == "police_desk"]
    assert police and all(p.state in ("failed", "cancelled", "pending", "sending") for p in police)
    assert [p.state for p in pages if p.target == "backup_desk"] == ["acknowledged"]


async def test_the_silent_sos_makes_a_silent_incident_whose_page_says_the_caller_cannot_speak(
    paging_app: App, settings: Settings, desk_ports: list[int]
) -> None:
    acknowledged = incident_where(paging_app, Status.acknowledged)
    async with sipp.phone(port=desk_ports[0], keys="1", keys_after_ms=4000, talk_ms=2000):
        caller = asyncio.create_task(sipp.call(settings, "183", digits="95", hold=15))
        incident = await asyncio.wait_for(acknowledged, 40)
    await caller
    assert incident.silent and incident.severity == "critical"
    timeline = await incidents.timeline(paging_app.store, incident.id)
    signals = [e.data["signal"] for e in timeline if e.kind == "signal"]
    assert signals[:2] == ["ivr_key", "silent_sos"]
    call = await paging_app.calls.get(str(incident.call_id))
    assert call is not None
    events = await paging_app.calls.events(call.id)
    prompts = [e.data["prompts"] for e in events if e.kind == "prompt"]
    assert prompts[-1] == ["emergency/tr"]  # cut short, and nothing said to the caller after it
    keys = [e.data["digit"] for e in events if e.kind == "dtmf"]
    assert keys[:2] == ["9", "5"]


async def test_a_spoken_sentence_alone_opens_an_incident_from_the_live_transcript(
    settings: Settings, tmp_path: Path
) -> None:
    """No key but the menu's: the caller says (flite, English) that her husband has a knife."""
    voice = flite(CALLER_SAYS, "rms", tmp_path / "caller.wav")
    on = settings.escalation.model_copy(update={"enabled": True})
    speech = settings.speech.model_copy(update={"enabled": True})
    app = create_app(quick(settings, tmp_path, escalation=on, speech=speech, agents=[]))
    await app.start(serve_web=False)
    try:
        opened = incident_where(app, Status.triggered)
        caller = asyncio.create_task(
            sipp.call(settings, "183", digits="11", say=voice, speak_after=1.0, hold=16)
        )  # Türkçe, the help queue; nobody answers: the caller waits, speaking
        incident = await asyncio.wait_for(opened, 60)
        await caller
        call = await app.calls.get(str(incident.call_id))
        timeline = await incidents.timeline(app.store, incident.id)
    finally:
        await app.close()
    assert call is not None and call.queue == "help"
    signals = [e.data for e in timeline if e.kind == "signal"]
    assert signals[0]["signal"] == "keyword" and signals[0]["evidence"]["language"] == "en"
    assert {s["category"] for s in signals} <= {"weapons", "violence"}
    said = " ".join(str(s["evidence"]["text"]).lower() for s in signals)
    assert "knife" in said or "kill" in said
    assert incident.severity in ("high", "critical")


async def test_an_urgent_caller_cut_off_before_an_agent_is_called_back_and_the_incident_pages_on(
    settings: Settings, tmp_path: Path, phone_port: int, second_phone_port: int, desk_ports: list[int]
) -> None:
    on = settings.escalation.model_copy(update={"enabled": True})
    config = quick(settings, tmp_path, escalation=on)
    # The caller's own phone is played by a SIPp phone: agent 9002's address (9002 is not at work).
    Path(config.queues.file).write_text('callback_dial = "PJSIP/{number}@agent-9002"\n' + QUICK_QUEUES)
    app = create_app(config)
    await app.start(serve_web=False)
    try:
        await app.queues.desk.pause("9001", "meal")  # nobody free: the urgent caller waits
        acknowledged = incident_where(app, Status.acknowledged)
        scheduled = timeline_kind(app, "callback_requested", 1)
        both_ended = ended(app, count=2)  # the urgent call, then the call back
        async with sipp.phone(port=desk_ports[0], keys="1", keys_after_ms=1500, talk_ms=1000):
            result = await sipp.call(settings, "183", digits="9", hold=6, caller_id="05329876543")
            assert result.ok, result.errors  # the caller gave up (or was cut off) after 6 s
            incident = await asyncio.wait_for(acknowledged, 40)  # the police desk was paged meanwhile
        await asyncio.wait_for(scheduled, 30)
        async with (
            sipp.phone(port=phone_port, calls=1) as agent,
            sipp.phone(port=second_phone_port, calls=1, talk_ms=1500) as citizen,
        ):
            await app.queues.desk.resume("9001")
            assert (await citizen.result()).log.count("answered") == 1
            assert (await agent.result()).log.count("answered") == 1
        await asyncio.wait_for(both_ended, 30)
        (first, first_events), (back, back_events) = await calls_and_events(app)
        timeline = await incidents.timeline(app.store, incident.id)
    finally:
        await app.close()
    assert first.urgent and first.outcome == "abandoned" and incident.call_id == first.id
    [requested] = [e for e in first_events if e.kind == "callback_requested"]
    assert requested.data["reason"] == "duty_of_care" and requested.data["queue"] == "emergency"
    assert back.caller_number == "05329876543" and back.outcome == "completed"
    assert [e.data.get("agent") for e in back_events if e.kind == "agent_connected"] == ["9001"]
    signals = [e.data["signal"] for e in timeline if e.kind == "signal"]
    assert signals == ["ivr_key", "abandoned_urgent"]
    assert "callback" in kinds(timeline)
