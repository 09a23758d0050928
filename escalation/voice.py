"""Voice pages: call a desk through Asterisk, say the incident, and take its key.

A page's leg is created in our Stasis app (``page`` and the page id as arguments) and dialled;
``send`` returns once the desk answers (a delivery) or the dial fails (a try to repeat later).
The message (synthesised while the desk rings) is then said up to ``plays`` times; the accept
key acknowledges the incident, the pass key hands it to the next level, and a desk that says
nothing (an answering machine, a phone left off the hook) acknowledges nothing: the level's
acknowledgement timeout moves the incident on.

The message is stopped at the first key, and nothing of the call is ever said to the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog

from ari import AriClient, AriError, NotFound
from ari import events as ev
from escalation.channels import Delivery, PageMessage

log = structlog.get_logger(__name__)

PREFIX = "hotline-page-"
FAILED_DIALS = {"NOANSWER", "BUSY", "CHANUNAVAIL", "CONGESTION", "CANCEL", "DONTCALL", "TORTURE"}

# (text, language) -> the sound URI Asterisk plays: synthesised offline by the app.
Speak = Callable[[str, str], Coroutine[Any, Any, str]]
# (page id, outcome) for: answered | accept | pass | no_key | hung_up
Outcome = Callable[[str, str], Coroutine[Any, Any, None]]


@dataclass(slots=True)
class _Leg:
    message: PageMessage
    channel_id: str
    delivered: asyncio.Future[Delivery]
    media: asyncio.Task[str]
    dialled: bool = False
    answered: bool = False
    plays: int = 0
    playback_id: str = ""
    settled: bool = False  # a key was taken or the plays ran out
    extra: list[asyncio.Task[None]] = field(default_factory=list)


class VoicePager:
    def __init__(
        self,
        ari: AriClient,
        speak: Speak,
        outcome: Outcome,
        *,
        accept_digit: str = "1",
        pass_digit: str = "2",
        plays: int = 3,
        ring_timeout: int = 30,
        caller_id: tuple[str, str] = ("Alo 183", "183"),
    ) -> None:
        self._ari, self._speak, self._outcome = ari, speak, outcome
        self._accept, self._pass, self._plays = accept_digit, pass_digit, plays
        self._ring_timeout, self._caller_id = ring_timeout, caller_id
        self._legs: dict[str, _Leg] = {}

    async def send(self, message: PageMessage) -> Delivery:
        channel_id = f"{PREFIX}{message.page_id}-{message.attempt}"
        loop = asyncio.get_running_loop()
        media = asyncio.create_task(self._speak(message.text, message.language))  # while it rings
        leg = _Leg(message, channel_id, loop.create_future(), media)
        self._legs[channel_id] = leg
        name, number = self._caller_id
        try:
            await self._ari.channels.create(
                message.address,
                channel_id=channel_id,
                app_args=["page", message.page_id],
                variables={"CALLERID(name)": name, "CALLERID(num)": number},
            )
            async with asyncio.timeout(self._ring_timeout + 15):
                return await leg.delivered
        except AriError as exc:
            self._drop(leg)
            return Delivery(False, retry=True, detail=f"unreachable: {exc.__class__.__name__}")
        except TimeoutError:
            self._drop(leg)
            await self._ari.channels.hangup(channel_id)
            return Delivery(False, retry=True, detail="no answer")

    async def handle(self, event: ev.Event) -> None:
        match event:
            case ev.StasisStart() if event.args[:1] == ["page"]:
                leg = self._legs.get(event.channel.id)
                if leg is None:  # left by a previous run: its page is tried again with a new leg
                    await self._ari.channels.hangup(event.channel.id)
                elif not leg.dialled:
                    leg.dialled = True
                    await self._dial(leg)
            case ev.Dial() if event.peer.id in self._legs:
                await self._progress(self._legs[event.peer.id], event.dialstatus)
            case ev.ChannelDtmfReceived() if event.channel.id in self._legs:
                await self._key(self._legs[event.channel.id], event.digit)
            case ev.PlaybackFinished() if event.playback.target_uri.removeprefix("channel:") in self._legs:
                leg = self._legs[event.playback.target_uri.removeprefix("channel:")]
                if event.playback.id == leg.playback_id:
                    await self._played(leg)
            case ev.StasisEnd() if event.channel.id in self._legs:
                await self._gone(self._legs[event.channel.id])

    async def hang_up_all(self) -> None:
        """Stopping: every desk call ends (the pages are tried again by the next run)."""
        for leg in list(self._legs.values()):
            self._drop(leg)
            await self._ari.channels.hangup(leg.channel_id)

    # -- one leg ---------------------------------------------------------------------------------

    async def _dial(self, leg: _Leg) -> None:
        try:
            await self._ari.channels.dial(leg.channel_id, timeout=self._ring_timeout)
        except AriError as exc:
            log.warning("page_dial_failed", page_id=leg.message.page_id, error=str(exc))
            self._deliver(leg, Delivery(False, retry=True, detail="dial failed"))
            await self._ari.channels.hangup(leg.channel_id)

    async def _progress(self, leg: _Leg, status: str) -> None:
        if status == "ANSWER" and not leg.answered:
            leg.answered = True
            self._deliver(leg, Delivery(True, detail="answered"))
            await self._outcome(leg.message.page_id, "answered")
            # Said once the synthesis is done, outside this channel's event lane: the desk's key
            # (or hang-up) is never held up behind it.
            task = asyncio.create_task(self._say(leg))
            leg.extra.append(task)
        elif status in FAILED_DIALS and not leg.answered:
            self._deliver(leg, Delivery(False, retry=True, detail=status.lower()))
            await self._ari.channels.hangup(leg.channel_id)

    async def _say(self, leg: _Leg) -> None:
        try:
            media = await leg.media
            if leg.settled or leg.channel_id not in self._legs:
                return  # a key came first, or the desk hung up
            leg.plays += 1
            leg.playback_id = f"{leg.channel_id}-say-{leg.plays}"
            await self._ari.channels.play(leg.channel_id, media, playback_id=leg.playback_id)
        except NotFound:
            return  # the desk hung up meanwhile: its StasisEnd says so
        except Exception:
            log.exception("page_say_failed", page_id=leg.message.page_id)
            if not leg.settled:  # nothing can be said: the level's timer moves the incident on
                leg.settled = True
                await self._outcome(leg.message.page_id, "no_key")
                await self._ari.channels.hangup(leg.channel_id)

    async def _played(self, leg: _Leg) -> None:
        if leg.settled:
            return
        if leg.plays < self._plays:
            await self._say(leg)
            return
        leg.settled = True  # said every time, and no key: nobody took it
        await self._outcome(leg.message.page_id, "no_key")
        await self._ari.channels.hangup(leg.channel_id)

    async def _key(self, leg: _Leg, digit: str) -> None:
        if not leg.answered or leg.settled or digit not in (self._accept, self._pass):
            return
        leg.settled = True
        playing, leg.playback_id = leg.playback_id, ""
        if playing:
            await self._ari.playbacks.stop(playing, missing_ok=True)
        await self._outcome(leg.message.page_id, "accept" if digit == self._accept else "pass")
        await self._ari.channels.hangup(leg.channel_id)

    async def _gone(self, leg: _Leg) -> None:
        self._drop(leg)
        self._deliver(leg, Delivery(False, retry=True, detail="hung up before answering"))
        if leg.answered and not leg.settled:
            leg.settled = True
            await self._outcome(leg.message.page_id, "hung_up")

    def _deliver(self, leg: _Leg, delivery: Delivery) -> None:
        if not leg.delivered.done():
            leg.delivered.set_result(delivery)

    def _drop(self, leg: _Leg) -> None:
        self._legs.pop(leg.channel_id, None)
        for task in leg.extra:
            if task is not asyncio.current_task():
                task.cancel()
        if not leg.media.done():
            leg.media.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            if leg.media.done() and not leg.media.cancelled():
                leg.media.exception()  # read, so a failed synthesis is not reported as unhandled
