"""The transcript flow on the fake Asterisk: taps made and removed, segments stored as they are
finalised, capacity, failures that leave the call alone, and the resync after a crash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlmodel import col, select

from hotline import db
from hotline.models import CallEventKind, CallOutcome
from tests.unit.transcripts.harness import ScriptedRecognizer, World, speak, world
from transcripts.media import PortsExhausted, RtpReceiver
from transcripts.models import Recording, TranscriptSegment
from transcripts.stasis import CallTaps

_NO_CALL = CallTaps("", "")


@pytest.fixture
async def w(store: db.Store) -> AsyncIterator[World]:
    async with world(store) as running:
        yield running


async def segments(store: db.Store, call_id: str) -> list[TranscriptSegment]:
    async with store.session() as session:
        rows = await session.exec(
            select(TranscriptSegment)
            .where(TranscriptSegment.call_id == call_id)
            .order_by(col(TranscriptSegment.id))
        )
        return list(rows.all())


def receiver_of(w: World, call_id: str, side: str = "caller") -> RtpReceiver:
    [tap] = [t for t in w.flow.calls[call_id].taps if t.side == side]
    assert tap.receiver is not None
    return tap.receiver


async def test_the_callers_side_is_tapped_live_and_written_down_redacted(w: World) -> None:
    call_id, channel = await w.caller()
    started = await w.kind(CallEventKind.transcript_started)
    assert started.data == {"side": "caller", "engine": "vosk", "language": "tr"}
    snoop, media = sorted(c for c in w.fake.channels if c.startswith("hotline-tx-"))[::-1]  # -s, -m
    assert w.fake.snooping[snoop] == channel
    snooped = w.fake.requests_to("POST", f"/ari/channels/{channel}/snoop")[0]
    assert snooped.query["spy"] == "in"  # what the caller says, not what they hear
    created = w.fake.requests_to("POST", "/ari/channels/externalMedia")[0]
    assert created.query["format"] == "slin16"
    assert created.query["external_host"] == f"127.0.0.1:{receiver_of(w, call_id).address[1]}"
    [bridge] = w.ours()[1]
    assert sorted(w.fake.bridges[bridge]["channels"]) == sorted([snoop, media])

    await speak(receiver_of(w, call_id), 2.5)
    await w.until(lambda: sum(n.final for n in w.notices) >= 2)
    # Stored as each is finalised, before the call ends: a crash now loses only the open utterance.
    stored = await segments(w.store, call_id)
    assert [s.text for s in stored] == [
        "1. beni [TELEFON/PHONE] numarasından arayın",
        "2. beni [TELEFON/PHONE] numarasından arayın",
    ]
    assert stored[0].raw_text == "1. beni 0532 123 45 67 numarasından arayın"  # keep_raw is on here
    assert (stored[0].speaker, stored[0].engine, stored[0].redacted) == ("caller", "vosk", ["phone"])
    assert stored[0].start_at < stored[0].end_at <= stored[1].start_at < stored[1].end_at
    partials = [n for n in w.notices if not n.final]
    assert partials and partials[0].text.startswith("söz")  # shown as spoken, never stored

    await w.calls.close(call_id, CallOutcome.completed)
    await w.until(lambda: w.engine.released == 1)
    assert [s.text for s in await segments(w.store, call_id)][-1] == "son söz"  # the open utterance
    assert w.ours() == ([], [])  # nothing left in Asterisk
    assert channel in w.fake.channels  # and the call itself was never touched by it
    assert w.ctx.capacity.in_use["vosk"] == 0
    assert w.ctx.taps.ports.leased == 0


async def test_the_agents_side_is_tapped_once_bridged_and_named(w: World) -> None:
    call_id, _ = await w.caller()
    await w.kind(CallEventKind.transcript_started)
    agent = w.fake.make_channel("hotline-agent-1", name="PJSIP/agent-a1-00000001")
    await w.calls.record(call_id, CallEventKind.agent_connected, agent="a1", agent_channel=agent["id"])
    started = await w.kind(CallEventKind.transcript_started, 2)
    assert started.data["side"] == "agent"
    await speak(receiver_of(w, call_id, "agent"), 1.2)
    await w.until(lambda: any(n.final and n.speaker == "agent" for n in w.notices))
    [said] = [s for s in await segments(w.store, call_id) if s.speaker == "agent"]
    assert said.agent_id == "a1"
    # The caller's lines now name the agent who hears them (the agent's desk shows them).
    await speak(receiver_of(w, call_id), 1.2, ssrc=9)
    await w.until(lambda: any(n.final and n.speaker == "caller" for n in w.notices))
    assert [n.agent_id for n in w.notices if n.final and n.speaker == "caller"] == ["a1"]
    await w.calls.close(call_id, CallOutcome.completed)
    await w.until(lambda: w.engine.released == 2)
    assert w.ours() == ([], [])


async def test_a_failing_tap_is_undone_and_the_call_goes_on(w: World) -> None:
    w.fake.fail("POST", "/channels/externalMedia", 500, "boom")
    _, channel = await w.caller()
    failed = await w.kind(CallEventKind.transcript_failed)
    assert failed.data["side"] == "caller" and "boom" in failed.data["error"]
    await w.fake.wait_for(lambda: w.ours() == ([], []))  # the snoop made before the failure is gone too
    assert channel in w.fake.channels
    assert w.ctx.capacity.in_use["vosk"] == 0 and w.ctx.taps.ports.leased == 0
    assert not [e for e in w.timeline if e.kind == CallEventKind.transcript_started]


async def test_a_snoop_that_never_enters_the_app_times_out_and_is_removed(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("transcripts.taps.ENTER_TIMEOUT", 0.2)
    # The snoop's StasisStart is not recognised (as if it came too late): the flow gives up.
    original = w.ctx.taps.entered
    w.ctx.taps.entered = lambda event: False  # type: ignore[method-assign]
    _, channel = await w.caller()
    await w.kind(CallEventKind.transcript_failed)
    w.ctx.taps.entered = original  # type: ignore[method-assign]
    await w.fake.wait_for(lambda: w.ours() == ([], []))
    assert channel in w.fake.channels


async def test_beyond_capacity_a_side_is_recorded_and_transcribed_after_the_call(store: db.Store) -> None:
    async with world(store, limits={"vosk": 1}) as w:
        first, _ = await w.caller("05321111111")
        await w.kind(CallEventKind.transcript_started)
        second, channel = await w.caller("05322222222")
        degraded = await w.kind(CallEventKind.transcript_degraded)
        assert degraded.call_id == second and degraded.data == {"side": "caller", "engine": "vosk"}
        await w.kind(CallEventKind.recording_started)
        [recorded] = [r for r in w.fake.live_recordings.values()]
        assert recorded["format"] == "sln16" and recorded["target_uri"].startswith("channel:hotline-tx-")
        # The caller hangs up: the snoop ends with the line, the recording with the snoop.
        await w.fake._hangup(channel, 16)
        await w.calls.close(second, CallOutcome.completed)
        done = await w.kind(CallEventKind.transcribed_after_call)
        assert done.call_id == second and done.data["segments"] == 1
        [said] = await segments(store, second)
        assert (said.text, said.mode) == ("kaydedilen söz", "after_call")
        assert recorded["name"] not in w.fake.stored_recordings  # kept only for this: deleted
        async with store.session() as session:
            row = await session.get(Recording, recorded["name"])
            assert row is not None and (row.pending, row.deleted) == (False, True)
        assert w.ctx.capacity.in_use["vosk"] == 1  # the first call still holds its live stream
        await w.calls.close(first, CallOutcome.completed)


async def test_after_a_crash_orphan_taps_go_and_live_calls_are_tapped_again(store: db.Store) -> None:
    async with world(store) as w:
        call_id, channel = await w.caller()
        await w.kind(CallEventKind.transcript_started)
        old_channels, old_bridges = w.ours()
        await w.client.close()  # the process dies: nothing is tidied, Asterisk keeps the taps
        async with world(store, fake=w.fake) as after:
            # Its resync removes the old taps and listens to the call that is still going on.
            await after.until(lambda: len(after.flow.calls.get(call_id, _NO_CALL).taps) == 1, timeout=5)
            await w.fake.wait_for(lambda: not set(old_channels) & set(w.fake.channels))
            assert not set(old_bridges) & set(w.fake.bridges)
            channels, bridges = after.ours()
            assert len(channels) == 2 and len(bridges) == 1 and channel in w.fake.channels
            await speak(receiver_of(after, call_id), 1.2)
            await after.until(lambda: any(n.final for n in after.notices))
            await after.calls.close(call_id, CallOutcome.completed)
            await w.fake.wait_for(lambda: after.ours() == ([], []))


async def test_a_pending_recording_from_before_a_restart_is_transcribed(store: db.Store) -> None:
    async with world(store) as w:
        call_id, _ = await w.caller()
        await w.kind(CallEventKind.transcript_started)
        await w.calls.close(call_id, CallOutcome.completed)
        w.fake.stored_recordings["hotline-tx-old"] = {"name": "hotline-tx-old", "format": "sln16"}
        now = w.ctx.clock.utcnow()
        await w.ctx.recordings.add(
            Recording(
                name="hotline-tx-old",
                call_id=call_id,
                side="caller",
                started_at=now,
                expires_at=now,
                pending=True,
            )
        )
        w.ctx.recordings.recording.discard("hotline-tx-old")  # recorded by the process that died
        w.ctx.recordings.wake()
        done = await w.kind(CallEventKind.transcribed_after_call)
        assert done.data["side"] == "caller"
        assert any(s.mode == "after_call" for s in await segments(store, call_id))
        assert "hotline-tx-old" not in w.fake.stored_recordings


async def test_steps_of_an_ended_call_do_nothing(w: World) -> None:
    call_id, channel = await w.caller()
    await w.kind(CallEventKind.transcript_started)
    await w.calls.close(call_id, CallOutcome.completed)
    await w.fake.wait_for(lambda: w.ours() == ([], []))
    # A late agent_connected for the ended call (its commit raced the hang-up) starts nothing.
    await w.calls.record(call_id, CallEventKind.agent_connected, agent="a1", agent_channel=channel)
    await asyncio.wait_for(asyncio.gather(*w.flow._tasks), 5)
    assert w.ours() == ([], []) and call_id not in w.flow.calls


async def test_a_language_chosen_in_the_menu_moves_the_caller_to_its_engine(w: World) -> None:
    call_id, _ = await w.caller()
    await w.kind(CallEventKind.transcript_started)
    before = w.ours()
    await w.calls.route(call_id, queue="help", category=None, language="en", path=["2"])
    moved = await w.kind(CallEventKind.transcript_started, 2)
    assert moved.data == {"side": "caller", "engine": "whisper", "language": "en"}
    await w.fake.wait_for(lambda: not set(before[0]) & set(w.fake.channels))  # the old tap is down
    assert len(w.ours()[0]) == 2
    assert (w.ctx.capacity.in_use["vosk"], w.ctx.capacity.in_use["whisper"]) == (0, 1)
    await w.calls.close(call_id, CallOutcome.completed)
    await w.fake.wait_for(lambda: w.ours() == ([], []))


async def test_with_every_port_in_use_the_tap_fails_and_gives_its_slot_back(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def exhausted(*_: object, **__: object) -> None:
        raise PortsExhausted("every port is leased")

    monkeypatch.setattr(w.ctx.taps.ports, "lease", exhausted)
    _, channel = await w.caller()
    failed = await w.kind(CallEventKind.transcript_failed)
    assert "every port" in failed.data["error"]
    assert w.ctx.capacity.in_use["vosk"] == 0 and w.ours() == ([], [])
    assert channel in w.fake.channels


async def test_an_engine_failing_mid_call_ends_its_tap_and_frees_the_slot(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    call_id, channel = await w.caller()
    await w.kind(CallEventKind.transcript_started)

    def broken(self: object, pcm: bytes) -> list[object]:
        raise RuntimeError("decoder crashed")

    monkeypatch.setattr(ScriptedRecognizer, "feed", broken)
    await speak(receiver_of(w, call_id), 0.2)
    failed = await w.kind(CallEventKind.transcript_failed)
    assert "decoder crashed" in failed.data["error"]
    await w.fake.wait_for(lambda: w.ours() == ([], []))
    assert w.ctx.capacity.in_use["vosk"] == 0 and channel in w.fake.channels
