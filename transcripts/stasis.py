"""When to listen: the caller's side from the moment the hotline takes the call (menus, queue and
voice message included), the agent's side once an agent is bridged, nothing after the hang-up.

The flow follows the call's committed timeline (``CallLog.subscribe``) rather than the IVR or the
queues themselves, so those never wait for, or fail because of, transcription. Steps of one call
run in order under that call's lock; a failed step records ``transcript_failed`` and leaves the
call as it was: a transcript is never worth a caller's call.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from ari import AriClient
from ari import events as ev
from hotline.calls import CallLog
from hotline.clock import SYSTEM, Clock
from hotline.models import CallEvent, CallEventKind
from transcripts.engine import Engine, Result
from transcripts.models import Recording, Speaker
from transcripts.recordings import Recordings
from transcripts.service import Capacity, Speaking, Transcriber
from transcripts.stream import LiveStream
from transcripts.taps import PREFIX, Tap, Taps

log = structlog.get_logger(__name__)

ENDED_KEPT = 10_000


@dataclass
class SpeechContext:
    """What the transcript flow works with; built once by the app."""

    ari: AriClient
    calls: CallLog
    taps: Taps
    transcriber: Transcriber
    recordings: Recordings
    engines: dict[str, Engine]  # by name
    choose: Callable[[str], str]  # language -> engine name
    capacity: Capacity
    pool: Executor
    default_language: str
    record_mode: str  # off, mixed or sides
    clock: Clock = SYSTEM


@dataclass(eq=False)
class CallTaps:
    call_id: str
    language: str
    agent_id: str = ""
    taps: list[Tap] = field(default_factory=list)
    ended: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class TranscriptFlow:
    def __init__(self, ctx: SpeechContext) -> None:
        self.ctx = ctx
        self.calls: dict[str, CallTaps] = {}
        self._gone: dict[str, None] = {}  # recently ended calls, oldest first: a late step skips them
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what the call log tells us ----------------------------------------------------------

    def on_call_event(self, event: CallEvent) -> None:
        data, call_id = event.data, event.call_id
        match event.kind:
            case CallEventKind.stasis_start if "channel" in data:
                self._spawn(call_id, self._caller(call_id, str(data["channel"])))
            case CallEventKind.ivr_done if data.get("language"):
                self._spawn(call_id, self._language(call_id, str(data["language"])))
            case CallEventKind.agent_connected | CallEventKind.readopted_with_agent if (
                "agent_channel" in data
            ):
                self._spawn(
                    call_id, self._agent(call_id, str(data["agent_channel"]), str(data.get("agent", "")))
                )
            case CallEventKind.ended:
                self._spawn(call_id, self._ended(call_id))

    # -- what Asterisk tells us ----------------------------------------------------------------

    async def handle(self, event: ev.Event) -> None:
        match event:
            case ev.StasisStart() if event.args[:1] == ["transcript"]:
                if not self.ctx.taps.entered(event):
                    # Not waited for (its tap failed or is gone): nothing may keep it alive.
                    await self.ctx.ari.channels.hangup(event.channel.id)
            case ev.StasisEnd() if event.channel.id.startswith(PREFIX):
                tap = self._tap_of(event.channel.id)
                if tap is not None:  # the side's channel hung up (its snoop ends with it)
                    self._spawn(tap.call_id, self._side_gone(tap))
            case ev.RecordingFinished() | ev.RecordingFailed():
                self.ctx.recordings.finished(event.recording.name)
            case ev.Connected():
                # In a task: the resync waits for its new taps' StasisStart events, which the
                # dispatcher holds back until this (global) event's handlers have returned.
                self._track(asyncio.create_task(self._resync(event), name="transcript-resync"))

    # -- the steps -------------------------------------------------------------------------------

    async def _caller(self, call_id: str, channel_id: str) -> None:
        call = self.calls.setdefault(call_id, CallTaps(call_id, self.ctx.default_language))
        if call.ended or any(t.side == Speaker.caller for t in call.taps):
            return
        if self.ctx.record_mode == "mixed":
            await self._record(call, Tap(call_id, "mixed", channel_id), "both", pending=False)
        await self._side(call, Tap(call_id, Speaker.caller, channel_id))

    async def _agent(self, call_id: str, channel_id: str, agent_id: str) -> None:
        call = self.calls.setdefault(call_id, CallTaps(call_id, self.ctx.default_language))
        if call.ended or any(t.channel_id == channel_id for t in call.taps):
            return
        call.agent_id = agent_id
        await self._side(call, Tap(call_id, Speaker.agent, channel_id, agent_id=agent_id))

    async def _side(self, call: CallTaps, tap: Tap) -> None:
        """Listen live if the engine has room, else record for after the call."""
        ctx = self.ctx
        engine = ctx.choose(call.language)
        if not ctx.capacity.take(engine):
            ctx.transcriber.figures.counts["degraded"] += 1
            await ctx.calls.record(
                call.call_id, CallEventKind.transcript_degraded, side=tap.side, engine=engine
            )
            await self._record(call, tap, "in", pending=True)
            return
        if ctx.record_mode == "sides":
            await self._record(
                call, Tap(call.call_id, tap.side, tap.channel_id, tap.agent_id), "in", pending=False
            )
        tap.engine = engine
        call.taps.append(tap)
        try:
            await ctx.taps.listen(tap, "in", self._stream(call, tap, engine))
        except Exception as exc:  # whatever failed (Asterisk, ports, a timeout), the call goes on
            await self._failed(call, tap, exc)
            return
        await ctx.calls.record(
            call.call_id,
            CallEventKind.transcript_started,
            side=tap.side,
            engine=engine,
            language=call.language,
        )
        log.info("transcript_started", call_id=call.call_id, side=str(tap.side), engine=engine)

    def _stream(self, call: CallTaps, tap: Tap, engine: str) -> LiveStream:
        transcriber = self.ctx.transcriber

        def sink(stream: LiveStream, result: Result, lag: float) -> None:
            # The agent hearing the caller is the one on the call now, not when the stream began.
            who = Speaking(call.call_id, Speaker(tap.side), tap.agent_id or call.agent_id)
            transcriber.result(who, result, stream.at(result.start), stream.at(result.end), engine, lag)

        def failed(exc: BaseException) -> None:
            # The engine gave up on this stream: take the tap down and free its slot for others.
            if tap in call.taps:
                self._spawn(call.call_id, self._failed(call, tap, exc))

        return LiveStream(
            self.ctx.engines[engine],
            call.language,
            self.ctx.pool,
            sink,
            now=self.ctx.clock.utcnow,
            on_failure=failed,
        )

    async def _record(self, call: CallTaps, tap: Tap, spy: str, *, pending: bool) -> None:
        ctx = self.ctx
        name = f"{PREFIX}{call.call_id}-{tap.side}-{uuid.uuid4().hex[:8]}"
        now = ctx.clock.utcnow()
        row = Recording(
            name=name,
            call_id=call.call_id,
            side=str(tap.side),
            agent_id=tap.agent_id,
            language=call.language,
            started_at=now,
            expires_at=now + timedelta(days=ctx.recordings.retention_days),
            pending=pending,
        )
        await ctx.recordings.add(row)  # committed first: a crash after this still transcribes it
        call.taps.append(tap)
        try:
            await ctx.taps.record(tap, spy, name)
        except Exception as exc:  # whatever failed (Asterisk, ports, a timeout), the call goes on
            await ctx.recordings.forget(name)
            await self._failed(call, tap, exc)
            return
        await ctx.calls.record(call.call_id, CallEventKind.recording_started, side=str(tap.side), name=name)

    async def _failed(self, call: CallTaps, tap: Tap, exc: BaseException) -> None:
        log.warning("transcript_failed", call_id=call.call_id, side=str(tap.side), error=str(exc))
        if tap in call.taps:
            call.taps.remove(tap)
        await self._release(tap)
        await self.ctx.calls.record(
            call.call_id, CallEventKind.transcript_failed, side=str(tap.side), error=str(exc)
        )

    async def _language(self, call_id: str, language: str) -> None:
        """The caller chose a language: a live side whose engine changes with it starts anew."""
        call = self.calls.get(call_id)
        if call is None or call.ended or language == call.language:
            return
        before, call.language = call.language, language
        if self.ctx.choose(language) == self.ctx.choose(before):
            for tap in call.taps:
                if tap.stream is not None:
                    tap.stream.language = language  # whisper takes it as the fallback language
            return
        for tap in [t for t in call.taps if t.stream is not None and t.side == Speaker.caller]:
            call.taps.remove(tap)
            await self._release(tap)
            await self._side(call, Tap(call_id, Speaker.caller, tap.channel_id))

    async def _side_gone(self, tap: Tap) -> None:
        call = self.calls.get(tap.call_id)
        if call is not None and tap in call.taps:
            call.taps.remove(tap)
        await self._release(tap)

    async def _ended(self, call_id: str) -> None:
        call = self.calls.get(call_id)
        if call is None:
            return
        call.ended = True
        for tap in list(call.taps):
            await self._release(tap)
        call.taps.clear()
        self.calls.pop(call_id, None)
        self._gone[call_id] = None
        if len(self._gone) > ENDED_KEPT:
            del self._gone[next(iter(self._gone))]
        self.ctx.recordings.call_ended(call_id)

    async def _release(self, tap: Tap) -> None:
        await self.ctx.taps.remove(tap)
        if tap.stream is not None:
            await tap.stream.close()
        if tap.engine:
            self.ctx.capacity.give(tap.engine)
            tap.engine = ""

    # -- after a restart or a lost event socket --------------------------------------------------

    async def _resync(self, event: ev.Connected) -> None:
        """Remove every tap part nobody follows (a crashed run's included), end the sides whose
        channel is gone, and listen again to calls that are still going on."""
        try:
            await self._resynced(event)
        except Exception:  # Asterisk or the store went away again: the next Connected retries
            log.exception("transcript_resync_failed")

    async def _resynced(self, event: ev.Connected) -> None:
        ctx = self.ctx
        alive = {c.id: c for c in event.channels}
        followed = {p for call in self.calls.values() for t in call.taps for p in (t.snoop_id, t.media_id)}
        for channel_id in alive:
            if channel_id.startswith(PREFIX) and channel_id not in followed:
                log.info("orphan_tap_removed", channel_id=channel_id)
                await ctx.ari.channels.hangup(channel_id)
        ours = {t.bridge_id for call in self.calls.values() for t in call.taps}
        for bridge in event.bridges:
            if bridge.id.startswith(PREFIX) and bridge.id not in ours:
                await ctx.ari.bridges.destroy(bridge.id, missing_ok=True)
        for call in list(self.calls.values()):
            for tap in [t for t in call.taps if t.snoop_id not in alive]:
                await self._side_gone(tap)
        agents = {
            bridge.name.removeprefix("call "): [c for c in bridge.channels if c.startswith("hotline-agent-")]
            for bridge in event.bridges
            if bridge.name.startswith("call ")
        }
        for open_call in await ctx.calls.open_calls():
            if open_call.channel_id not in alive:
                continue
            call = self.calls.setdefault(
                open_call.id, CallTaps(open_call.id, open_call.language or ctx.default_language)
            )
            async with call.lock:
                await self._caller(open_call.id, open_call.channel_id)
                for channel_id in agents.get(open_call.id, []):
                    if channel_id in alive:
                        await self._agent(open_call.id, channel_id, _agent_of(alive[channel_id].name))
        ctx.recordings.wake()

    # -- plumbing ----------------------------------------------------------------------------------

    def _tap_of(self, channel_id: str) -> Tap | None:
        for call in self.calls.values():
            for tap in call.taps:
                if channel_id in (tap.snoop_id, tap.media_id):
                    return tap
        return None

    def _spawn(self, call_id: str, step: Coroutine[Any, Any, None]) -> None:
        """Run ``step`` after the call's earlier steps, never raising into the call log."""

        async def run() -> None:
            call = self.calls.setdefault(call_id, CallTaps(call_id, self.ctx.default_language))
            async with call.lock:
                if call_id in self._gone:
                    self.calls.pop(call_id, None)
                    step.close()
                    return
                try:
                    await step
                except Exception:
                    log.exception("transcript_step_failed", call_id=call_id)

        self._track(asyncio.create_task(run(), name=f"transcript-{call_id}"))

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop listening to every call (the calls go on) and finish what is being decoded."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # At once: each stream finishes its open utterance, which can take a Whisper second or two.
        taps = [tap for call in self.calls.values() for tap in call.taps]
        await asyncio.gather(*(self._release(tap) for tap in taps), return_exceptions=True)
        self.calls.clear()


def _agent_of(channel_name: str) -> str:
    # PJSIP channel names are "PJSIP/agent-<id>-<sequence>".
    return channel_name.partition("/")[2].rpartition("-")[0].removeprefix("agent-")
