"""The IVR on ARI: answer, run the caller's menu session, hand them on (or take a message).

A direct line (``Stasis(<app>,queue,<id>)`` in the dialplan) skips the menus: the caller is
answered and handed to that queue at once, in the hotline's first language.

Events for one channel arrive in order (the ARI client guarantees it); the key timer runs beside
them, so each call has a lock and every step holds it. Every step runs inside the call-flow guard
(``hotline.callflow``): a failure of ours sends the caller to the dialplan fallback (ring the
agents) instead of leaving them in silence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog

from ari import AriClient
from ari import events as ev
from ari.models import Channel
from hotline.callflow import Guard
from hotline.calls import CallLog
from hotline.clock import SYSTEM, Clock
from hotline.models import CallEventKind, CallOutcome
from ivr.config import IvrConfig
from ivr.service import Action, AgentOffer, Finished, MenuSession, Play, StopPrompt, WaitForKey

log = structlog.get_logger(__name__)

NORMAL_CLEARING = 16  # Q.850 cause of ARI's hang-up reason "normal"
OPEN_TICKET_WAIT = 0.5  # seconds the welcome may wait for the caller's open case to be found


@dataclass(frozen=True, slots=True)
class OpenCase:
    """A caller's latest open case: its number as people read it, and the agent who handled it
    when that agent is free right now (the caller is then offered to be put through)."""

    number: str
    offer: AgentOffer | None = None


# The open case of a caller's number, or None: handed in by the app.
OpenTicket = Callable[[str], Awaitable[OpenCase | None]]


class QueueDirectory(Protocol):
    """What the IVR needs to know about the queues it sends callers to."""

    def has_queue(self, queue_id: str) -> bool: ...

    def label(self, queue_id: str) -> dict[str, str]: ...

    def category(self, queue_id: str) -> str | None: ...

    def is_open(self, queue_id: str, when: datetime) -> bool: ...


@dataclass(frozen=True, slots=True)
class Handoff:
    """A caller the IVR is done with, for whoever routes calls to agents."""

    call_id: str
    channel_id: str
    queue: str
    language: str
    urgent: bool
    caller_name: str
    caller_number: str
    agent: str | None = None  # offered to this agent first (the caller asked for them)


@dataclass(frozen=True, slots=True)
class FlowConfig:
    extension: str
    languages: tuple[str, ...]  # every language a menu may be played in, default first


@dataclass(slots=True)
class LiveCall:
    call_id: str
    channel_id: str
    session: MenuSession
    caller: tuple[str, str] = ("", "")  # name, number
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    phase: str = "menu"  # menu -> leaving | closed -> voicemail
    playback_id: str = ""
    plays: int = 0
    timer: asyncio.Task[None] | None = None
    outcome: CallOutcome | None = None
    hangup_cause: int | None = None
    agent: str | None = None  # the agent the caller asked to be put through to
    urgent: bool = False
    silent: bool = False  # the caller cannot speak (the silent SOS): nothing more is said to them

    def stop_timer(self) -> None:
        if self.timer is not None and not self.timer.done():
            self.timer.cancel()
        self.timer = None


class IvrFlow:
    def __init__(
        self,
        ari: AriClient,
        calls: CallLog,
        ivr: IvrConfig,
        queues: QueueDirectory,
        sounds: Mapping[tuple[str, str], str],
        config: FlowConfig,
        handoff: Callable[[Handoff], Awaitable[None]],
        guard: Guard,
        *,
        clock: Clock = SYSTEM,
        open_ticket: OpenTicket | None = None,
    ) -> None:
        self._ari = ari
        self._calls = calls
        self._ivr = ivr
        self._queues = queues
        self._sounds = sounds
        self._config = config
        self._handoff = handoff
        self._guard_steps = guard
        self._open_ticket = open_ticket
        self._clock = clock
        self._live: dict[str, LiveCall] = {}

    @property
    def live_calls(self) -> int:
        return len(self._live)

    def _session(self) -> MenuSession:
        started = self._clock.now()
        return MenuSession(
            self._ivr,
            language=self._config.languages[0],
            languages=self._config.languages,
            clock=lambda: self._clock.now() - started,
        )

    # -- events ------------------------------------------------------------------------------

    async def handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.Connected):
            await self._resync(event)
            return
        if isinstance(event, ev.StasisStart):
            # Snoop, media and agent channels enter the app with other arguments: not ours.
            if not event.args:
                await self._guard(event.channel.id, self._start(event.channel))
            elif len(event.args) == 2 and event.args[0] == "queue":
                await self._guard(event.channel.id, self._start_direct(event.channel, event.args[1]))
            return
        live = self._live.get(_channel_of(event))
        if live is None:
            return
        # Lane tasks come and go, so the call id is bound per event rather than once per call.
        with structlog.contextvars.bound_contextvars(call_id=live.call_id):
            async with live.lock:
                await self._guard(live.channel_id, self._on_call_event(live, event))

    async def _on_call_event(self, live: LiveCall, event: ev.Event) -> None:
        match event:
            case ev.ChannelDtmfReceived():
                await self._calls.record(live.call_id, CallEventKind.dtmf, digit=event.digit)
                if live.phase == "menu":
                    live.stop_timer()
                    await self._run(live, live.session.key(event.digit))
                elif live.phase == "leaving" and live.urgent and event.digit == self._ivr.menu.silent_digit:
                    await self._silent(live)
            case ev.PlaybackFinished() if event.playback.id == live.playback_id:
                live.playback_id = ""
                await self._prompt_done(live)
            case ev.RecordingFinished() | ev.RecordingFailed():
                await self._voicemail_done(live, event)
            case ev.ChannelHangupRequest():
                self._hung_up(live, event)
                await self._calls.record(
                    live.call_id, CallEventKind.hangup_request, cause=event.cause, soft=event.soft
                )
            case ev.StasisEnd():
                await self._end(live)

    async def _guard(self, channel_id: str, step: Awaitable[None]) -> None:
        """Run a step; on our failure, hand the caller to the dialplan fallback."""
        async with self._guard_steps.step("ivr", lambda: self._call_of(channel_id), channel_id) as undo:
            undo.add("menu", lambda: self._failed(channel_id))
            await step

    def _call_of(self, channel_id: str) -> str | None:
        live = self._live.get(channel_id)
        return live.call_id if live else None

    def _failed(self, channel_id: str) -> None:
        """A step failed: no more menu timers; the call ends as failed (the fallback takes it)."""
        live = self._live.get(channel_id)
        if live:
            live.stop_timer()
            live.outcome = live.outcome or CallOutcome.failed

    async def fallback(self, channel_id: str) -> None:
        """Send a caller to the dialplan fallback, which rings every agent phone directly."""
        await self._guard_steps.fallback(channel_id)

    # -- the call ----------------------------------------------------------------------------

    async def _start(self, channel: Channel) -> None:
        up = channel.state == "Up"  # answered in the dialplan, before Stasis()
        call, created = await self._calls.open(
            channel.id,
            answered=up,
            caller_number=channel.caller.number,
            caller_name=channel.caller.name,
            extension=channel.dialplan.exten,
            language=self._config.languages[0],
        )
        live = self._live.setdefault(channel.id, LiveCall(call.id, channel.id, self._session()))
        live.caller = (channel.caller.name, channel.caller.number)
        with structlog.contextvars.bound_contextvars(call_id=call.id):
            log.info("call_started", channel_id=channel.id, caller=channel.caller.number, new=created)
            async with live.lock:
                if not up:
                    await self._ari.channels.answer(channel.id)
                    await self._calls.answered(call.id)
                case = await self._open_ticket_of(live, channel.caller.number)
                actions = live.session.start(case.number, case.offer) if case else live.session.start()
                await self._run(live, actions)  # the welcome first, the look-up after
                await self._note_repeat_caller(live, channel.caller.number)

    async def _start_direct(self, channel: Channel, queue: str) -> None:
        """A direct line: no menu, straight into ``queue`` (the fallback if no such queue exists)."""
        known = self._queues.has_queue(queue)
        language = self._config.languages[0]
        urgent = queue == self._ivr.menu.emergency_queue
        routed = {"queue": queue, "category": self._queues.category(queue)} if known else {}
        up = channel.state == "Up"  # answered in the dialplan, before Stasis()
        call, _ = await self._calls.open(
            channel.id,
            answered=up,
            caller_number=channel.caller.number,
            caller_name=channel.caller.name,
            extension=channel.dialplan.exten,
            language=language,
            **routed,
        )
        # Kept live until handed on, so a failure or a hang-up meanwhile closes it like any call.
        live = self._live.setdefault(
            channel.id, LiveCall(call.id, channel.id, self._session(), phase="leaving")
        )
        live.caller = (channel.caller.name, channel.caller.number)
        with structlog.contextvars.bound_contextvars(call_id=call.id):
            log.info("call_started", channel_id=channel.id, caller=channel.caller.number, direct=queue)
            async with live.lock:
                if not up:
                    await self._ari.channels.answer(channel.id)
                    await self._calls.answered(call.id)
                await self._calls.record(call.id, CallEventKind.direct, queue=queue, known=known)
                if not known:  # a dialplan out of step with queues.toml: a person still answers
                    log.error("direct_queue_unknown", queue=queue)
                    live.outcome = CallOutcome.failed
                    await self.fallback(channel.id)
                    return
                if urgent:
                    await self._calls.mark_urgent(call.id, "direct")
                if urgent or self._queues.is_open(queue, self._clock.utcnow()):
                    await self._to_queue(live, queue, language, urgent)
                    # Noted for the desktop once the caller is queued: a look-up must not delay them.
                    await self._note_repeat_caller(live, channel.caller.number)
                    return
                await self._note_repeat_caller(live, channel.caller.number)
                # Closed: the same message and voicemail as after the menus.
                live.phase = "closed"
                if self._ivr.menu.closed:
                    await self._play(live, ((self._ivr.menu.closed, language),))
                else:
                    await self._prompt_done(live)

    async def _open_ticket_of(self, live: LiveCall, number: str) -> OpenCase | None:
        """The caller's open case, if the look-up answers in time: the welcome never waits long."""
        if self._open_ticket is None or not number or not self._ivr.menu.open_ticket:
            return None
        try:
            async with asyncio.timeout(OPEN_TICKET_WAIT):
                case = await self._open_ticket(number)
        except Exception as exc:  # a case not mentioned is better than a caller kept waiting
            log.warning("open_ticket_lookup_failed", error=repr(exc))
            return None
        if case is None:
            return None
        offer = case.offer
        if offer is not None and not (
            self._ivr.menu.open_ticket_offer and self._queues.has_queue(offer.queue)
        ):
            offer = None
        told: dict[str, Any] = {"ticket": case.number}
        if offer is not None:
            told["agent_offered"] = offer.agent
        await self._calls.record(live.call_id, CallEventKind.open_ticket_told, **told)
        return OpenCase(case.number, offer)

    async def _note_repeat_caller(self, live: LiveCall, number: str) -> None:
        previous = await self._calls.previous_calls(number, before=live.call_id)
        if previous:
            await self._calls.record(
                live.call_id,
                CallEventKind.repeat_caller,
                previous_calls=len(previous),
                last_call=previous[0].id,
                last_category=previous[0].category,
            )

    async def _run(self, live: LiveCall, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case StopPrompt():
                    await self._stop_prompt(live)
                case Play():
                    await self._play(live, action.prompts)
                case WaitForKey():
                    live.stop_timer()
                    live.timer = asyncio.create_task(self._wait_for_key(live, action.seconds))
                case Finished():
                    await self._finished(live, action)

    async def _play(self, live: LiveCall, prompts: tuple[tuple[str, str], ...]) -> None:
        live.plays += 1
        live.playback_id = f"{live.call_id}-{live.plays}"
        media = [self._sounds[name, language] for name, language in prompts]
        await self._ari.channels.play(live.channel_id, media, playback_id=live.playback_id)
        await self._calls.record(
            live.call_id, CallEventKind.prompt, prompts=[f"{n}/{lang}" for n, lang in prompts]
        )

    async def _stop_prompt(self, live: LiveCall) -> None:
        playback, live.playback_id = live.playback_id, ""
        if playback:  # it may have just finished by itself
            await self._ari.playbacks.stop(playback, missing_ok=True)

    async def _wait_for_key(self, live: LiveCall, seconds: float) -> None:
        await self._clock.sleep(seconds)
        async with live.lock:
            if live.timer is not asyncio.current_task():
                return  # a key or the end of the call overtook us
            live.timer = None
            with structlog.contextvars.bound_contextvars(call_id=live.call_id):
                await self._guard(live.channel_id, self._run(live, live.session.timed_out()))

    async def _finished(self, live: LiveCall, result: Finished) -> None:
        live.stop_timer()
        if result.urgent:
            await self._calls.mark_urgent(live.call_id, result.reason)
            log.warning("call_urgent", reason=result.reason)
        await self._calls.route(
            live.call_id,
            queue=result.queue,
            category=self._queues.category(result.queue),
            language=result.language,
            path=live.session.path,
        )
        menu = self._ivr.menu
        is_open = result.urgent or self._queues.is_open(result.queue, self._clock.utcnow())
        live.agent, live.urgent = result.agent, result.urgent
        live.phase = "leaving" if is_open else "closed"
        notice = (menu.emergency if result.urgent else menu.connecting) if is_open else menu.closed
        if notice:
            await self._play(live, ((notice, result.language),))
        else:
            await self._prompt_done(live)

    async def _silent(self, live: LiveCall) -> None:
        """The silent SOS: the caller cannot speak. The notice stops at once and they are handed on
        without another word; the call is marked so that every page says it."""
        if live.silent:
            return
        live.silent = True
        await self._stop_prompt(live)
        await self._calls.mark_urgent(live.call_id, "silent_sos")
        log.warning("call_silent_sos")
        await self._prompt_done(live)

    async def _prompt_done(self, live: LiveCall) -> None:
        if live.phase == "menu":
            await self._run(live, live.session.prompt_finished())
        elif live.phase == "leaving":
            await self._hand_off(live)
        elif live.phase == "closed":
            live.phase = "voicemail"
            await self._ari.channels.record(
                live.channel_id,
                f"voicemail-{live.call_id}",
                format="wav",
                max_duration_seconds=self._ivr.menu.voicemail_seconds,
                max_silence_seconds=10,
                beep=True,
                terminate_on="#",
                if_exists="overwrite",
            )

    async def _hand_off(self, live: LiveCall) -> None:
        """The menu is done: the call (still open) now belongs to whoever routes it to agents."""
        result = live.session.result
        call = await self._calls.get(live.call_id)
        if result is None and call is not None and call.queue:  # re-adopted after the menu was done
            queue, language, urgent = call.queue, call.language, call.urgent
        elif result is not None:
            queue, language, urgent = result.queue, result.language, result.urgent
        else:
            raise RuntimeError("hand-off before the menu chose a queue")
        await self._to_queue(live, queue, language, urgent)

    async def _to_queue(self, live: LiveCall, queue: str, language: str, urgent: bool) -> None:
        live.stop_timer()
        self._live.pop(live.channel_id, None)
        await self._calls.record(live.call_id, CallEventKind.handed_to_queue, queue=queue)
        name, number = live.caller
        handoff = Handoff(live.call_id, live.channel_id, queue, language, urgent, name, number, live.agent)
        await self._handoff(handoff)

    async def _voicemail_done(self, live: LiveCall, event: ev.RecordingFinished | ev.RecordingFailed) -> None:
        recording = event.recording
        await self._calls.voicemail(live.call_id, recording.name, recording.duration)
        if live.outcome is None:
            live.outcome = CallOutcome.voicemail
            live.hangup_cause = NORMAL_CLEARING
            await self._ari.channels.hangup(live.channel_id, reason="normal")

    def _hung_up(self, live: LiveCall, event: ev.ChannelHangupRequest) -> None:
        live.stop_timer()
        if live.outcome is None:
            live.outcome = {
                "menu": CallOutcome.abandoned_in_ivr,
                "leaving": CallOutcome.abandoned_in_ivr,
                "voicemail": CallOutcome.voicemail,  # a message cut short by the hang-up is still kept
            }.get(live.phase, CallOutcome.abandoned)
        # ChannelDestroyed is not delivered after StasisEnd, so the cause is taken here when there
        # is one (a caller's BYE carries none). A soft hang-up is ours: we noted our reason already.
        if not event.soft or live.hangup_cause is None:
            live.hangup_cause = event.cause

    async def _end(self, live: LiveCall) -> None:
        live.stop_timer()
        self._live.pop(live.channel_id, None)
        outcome = live.outcome or CallOutcome.abandoned
        await self._calls.record(live.call_id, CallEventKind.stasis_end)
        await self._calls.close(live.call_id, outcome, live.hangup_cause)
        log.info("call_ended", outcome=outcome.value)

    # -- stopping and restarting -------------------------------------------------------------

    def close(self) -> None:
        """Stop every key timer (the calls themselves stay with Asterisk)."""
        for live in self._live.values():
            live.stop_timer()

    async def hand_over_all(self) -> int:
        """Send every live call to the dialplan fallback (ring the agents directly); return how many.

        Used when the hotline stops on purpose: nobody would be left to serve these callers.
        """
        handed = 0
        for channel_id, live in list(self._live.items()):
            async with live.lock:
                live.stop_timer()
                await self._calls.record(live.call_id, CallEventKind.handed_to_fallback)
                await self.fallback(channel_id)
                self._live.pop(channel_id, None)
                await self._calls.close(live.call_id, CallOutcome.fallback, live.hangup_cause)
            handed += 1
        return handed

    async def _resync(self, event: ev.Connected) -> None:
        """After a (re)connect: keep serving calls Asterisk still holds, close the ones it lost."""
        alive = {channel.id: channel for channel in event.channels}
        talking = {c for b in event.bridges if b.bridge_type == "mixing" for c in b.channels}
        for call in await self._calls.open_calls():
            channel = alive.get(call.channel_id)
            if call.channel_id in talking:
                # With an agent already: the conversation goes on without us; nothing to resume.
                await self._calls.record(
                    call.id, CallEventKind.readopted_talking, generation=event.generation
                )
            elif channel is None:
                self._live.pop(call.channel_id, None)
                await self._calls.record(
                    call.id, CallEventKind.lost_while_disconnected, generation=event.generation
                )
                await self._calls.close(call.id, CallOutcome.recovered)
            elif call.channel_id not in self._live:
                live = LiveCall(call.id, call.channel_id, self._session())
                self._live[call.channel_id] = live
                await self._calls.record(call.id, CallEventKind.readopted, generation=event.generation)
                log.info("call_readopted", call_id=call.id, channel_id=call.channel_id)
                async with live.lock:
                    await self._guard(
                        call.channel_id, self._resume(live, channel, routed=call.queue is not None)
                    )

    async def _resume(self, live: LiveCall, channel: Channel, routed: bool) -> None:
        """Carry on with a call a previous run left mid-way (it may have died before answering)."""
        if channel.state != "Up":
            await self._ari.channels.answer(channel.id)
            await self._calls.answered(live.call_id)
        live.caller = (channel.caller.name, channel.caller.number)
        if routed:  # the menu was done: hand the caller on as the previous run was about to
            live.phase = "leaving"
            await self._prompt_done(live)
        else:  # the menu state died with the previous run: start it again
            await self._run(live, live.session.start())


def _channel_of(event: ev.Event) -> str:
    if isinstance(event, ev.ChannelEvent):
        return event.channel.id
    if isinstance(event, ev.PlaybackEvent):
        return event.playback.target_uri.removeprefix("channel:")
    if isinstance(event, ev.RecordingEvent):
        return event.recording.target_uri.removeprefix("channel:")
    return ""
