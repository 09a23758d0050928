"""Recordings: kept per configuration (mixed or per side) until their retention ends."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from hotline import db
from hotline.clock import Clock
from hotline.models import CallEventKind, CallOutcome
from tests.unit.transcripts.harness import world
from transcripts.models import Recording


async def rows(store: db.Store) -> list[Recording]:
    async with store.session() as session:
        return list((await session.exec(select(Recording))).all())


async def test_mixed_recording_hears_both_sides_of_the_whole_call_and_is_kept(store: db.Store) -> None:
    async with world(store, record_mode="mixed") as w:
        call_id, channel = await w.caller()
        await w.kind(CallEventKind.transcript_started)
        [recorded] = await rows(store)
        assert (recorded.side, recorded.pending, recorded.call_id) == ("mixed", False, call_id)
        snoops = w.fake.requests_to("POST", f"/ari/channels/{channel}/snoop")
        [snooped] = [r for r in snoops if r.query["spy"] == "both"]
        assert snooped.query["appArgs"].startswith("transcript,")
        await w.fake.caller_hangup(channel)
        await w.calls.close(call_id, CallOutcome.completed)
        await w.fake.wait_for(lambda: recorded.name in w.fake.stored_recordings)
        assert await w.ctx.recordings.purge() == 0  # not expired: kept
        assert recorded.name in w.fake.stored_recordings
        assert recorded.expires_at - recorded.started_at == timedelta(days=30)


async def test_recordings_past_their_retention_are_deleted(store: db.Store) -> None:
    async with world(store, record_mode="sides") as w:
        call_id, channel = await w.caller()
        await w.kind(CallEventKind.recording_started)
        [recorded] = await rows(store)
        assert (recorded.side, recorded.pending) == ("caller", False)  # not for transcription: kept
        await w.fake.caller_hangup(channel)
        await w.calls.close(call_id, CallOutcome.completed)
        await w.fake.wait_for(lambda: recorded.name in w.fake.stored_recordings)
        w.ctx.recordings.clock = Clock(wall=lambda: recorded.expires_at + timedelta(seconds=1))
        assert await w.ctx.recordings.purge() == 1
        assert recorded.name not in w.fake.stored_recordings
        [gone] = await rows(store)
        assert gone.deleted
        assert await w.ctx.recordings.purge() == 0  # once
