"""Queues on ARI: callers wait in a holding bridge with music, the router picks agents, their
phones ring through ``channels/create`` + ``dial``, and an answer bridges caller and agent.

The router (agents.service) decides; this carries the decisions out and reports back what
Asterisk says. It is shared by every call, so one lock serialises its steps. The caller hanging
up at any instant cancels everything for that call; the agent hanging up ends it and starts
wrap-up, whose timer (not any event) ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from sqlmodel import col, select

from agents.config import QueuesConfig
from agents.errors import BadRequest, CommandError, UnknownTarget
from agents.models import AgentEvent, Callback
from agents.notifier import Notifier
from agents.service import Agent, Offer, Presence, PresenceError, Router, Transition, WaitingCall
from ari import AriClient, AriError, NotFound
from ari import events as ev
from ari.models import Channel
from hotline.calls import CallLog
from hotline.db import Store
from hotline.models import Call, CallOutcome, utcnow
from hotline.settings import AgentSection

log = structlog.get_logger(__name__)

Sleep = Callable[[float], Awaitable[None]]
NO_ANSWER = {"NOANSWER", "BUSY", "CHANUNAVAIL", "CONGESTION", "CANCEL", "DONTCALL", "TORTURE", "INVALIDARGS"}


@dataclass(frozen=True, slots=True)
class AgentSeat:
    """One configured agent: their phone and what they can take."""

    id: str
    name: str
    queues: frozenset[str]  # empty: every queue
    languages: frozenset[str]
    skills: dict[str, int]
    login_at_start: bool = True  # a static member; otherwise the agent logs in through the API


@dataclass(slots=True)
class Caller:
    call_id: str
    channel_id: str
    queue: str
    caller_name: str = ""
    caller_number: str = ""
    language: str = ""
    urgent: bool = False
    since: float = 0.0  # when the caller first joined a queue (kept across transfers)
    announced_at: float = 0.0  # when the caller last heard their place (or joined)
    callback_offered: bool = False
    callback_id: str = ""  # the caller asked to be called back (their channel may be gone)
    outbound_channel: str = ""  # the call back ringing the caller's number
    playback_id: str = ""  # the announcement playing to them, if any
    bridge_id: str = ""  # the mixing bridge once connected
    agent_id: str = ""
    agent_channel: str = ""


@dataclass(slots=True)
class Ringing:
    call_id: str
    agent_id: str
    channel_id: str
    timeout: float
    dialled: bool = False
    answered: bool = False
    missed: bool = False


SPY_MODES = {
    # mode -> what the snoop on the agent's channel does: hear both sides; whisper "out" is the
    # audio sent to the agent's phone, so only the agent hears the supervisor. Barge needs no snoop.
    "listen": "none",
    "whisper": "out",
    "barge": "",
}


@dataclass(slots=True)
class Spy:
    """A supervisor's phone listening to, whispering into or barging in on a call."""

    call_id: str
    mode: str
    phone: str  # the agent id whose phone rings for the supervisor
    channel_id: str
    snoop_id: str = ""
    bridge_id: str = ""
    answered: bool = False


@dataclass(slots=True)
class Timers:
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def start(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def cancel(self) -> None:
        for task in list(self.tasks):
            task.cancel()


class QueueFlow:
    def __init__(
        self,
        ari: AriClient,
        calls: CallLog,
        store: Store,
        queues: QueuesConfig,
        seats: Iterable[AgentSeat],
        *,
        sounds: Mapping[tuple[str, str], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._ari = ari
        self._calls = calls
        self._store = store
        self._queues = queues
        self._clock = clock
        self._sleep = sleep
        seats = list(seats)
        self.router = Router(q.rules(queue_id) for queue_id, q in queues.queues.items())
        for seat in seats:
            serves = seat.queues or frozenset(queues.queues)
            self.router.add_agent(Agent(seat.id, serves, seat.languages, dict(seat.skills)))
        self._lock = asyncio.Lock()
        self._callers: dict[str, Caller] = {}  # caller channel id -> caller
        self._ringing: dict[str, Ringing] = {}  # agent channel id -> the offer it carries
        self._holding: dict[str, str] = {}  # queue -> holding bridge id
        self._timers = Timers()
        self._seats = {seat.id: seat for seat in seats}
        self._wrap_ups: dict[str, asyncio.Task[None]] = {}  # agent -> the timer ending their wrap-up
        self._phones: dict[str, str] = {}  # agent -> last endpoint state seen
        self._spies: dict[str, Spy] = {}  # supervisor's channel id -> what it is doing
        self._sounds = sounds or {}  # (prompt, language) -> media URI, for announcements
        self._holdtime: dict[str, float] = {}  # queue -> recent waits of answered callers (average)
        self._announcing: dict[str, tuple[str, list[str]]] = {}  # playback id -> call id, prompts
        self._hang_up_after: dict[str, str] = {}  # playback id -> channel to hang up when it ends
        self.notices = Notifier()

    # -- agents --------------------------------------------------------------------------------

    async def start(self, tick: float = 1.0) -> None:
        """Agents come back as they were (logged out, or paused with their reason); static members
        log in on their first start. Those whose phone is not reachable are paused until it is."""
        async with self._lock:
            now = self._clock()
            await self._load_call_backs()
            for agent_id in self.router.agents:
                await self._restore(agent_id, now)
                try:
                    state = (await self._ari.endpoints.get("PJSIP", f"agent-{agent_id}")).state
                except NotFound:  # no such endpoint in Asterisk: its config is older than ours
                    state = "unknown"
                log.info("agent_phone", agent_id=agent_id, state=state)
                self._phones[agent_id] = state
                if state != "online":
                    self.router.device_unreachable(agent_id, now)
            await self._save_transitions()
        self._timers.start(self._tick(tick))

    async def _restore(self, agent_id: str, now: float) -> None:
        async with self._store.session() as session:
            last = (
                await session.exec(
                    select(AgentEvent)
                    .where(AgentEvent.agent_id == agent_id)
                    .order_by(col(AgentEvent.id).desc())
                    .limit(1)
                )
            ).first()
        if last is None:
            if self._seats[agent_id].login_at_start:
                self.router.login(agent_id, now)
        elif last.after != Presence.offline:
            self.router.login(agent_id, now)
            if last.after == Presence.paused and last.reason != "device_unreachable":
                self.router.pause(agent_id, last.reason, now)

    async def _watch_phones(self) -> None:
        """Follow the agents' phones registering and dropping (subscriptions end with a connection)."""
        sources = [f"endpoint:PJSIP/agent-{agent_id}" for agent_id in self.router.agents]
        if sources:
            await self._ari.applications.subscribe(sources)

    async def _phone_state(self, endpoint: str, state: str) -> None:
        agent_id = endpoint.removeprefix("agent-")
        if agent_id not in self.router.agents:
            return
        if self._phones.get(agent_id) == state:
            return  # the endpoint reports every change of its channels, not only of its state
        self._phones[agent_id] = state
        log.info("agent_phone", agent_id=agent_id, state=state)
        if state == "online":
            self.router.device_reachable(agent_id, self._clock())
            await self._offer()
        else:
            self.router.device_unreachable(agent_id, self._clock())
        await self._save_transitions()

    async def _tick(self, every: float) -> None:
        """Time alone changes things: tiers widen and callers overflow as they wait. Look again."""
        while True:
            await self._sleep(every)
            if not self.router.waiting:
                continue
            try:
                async with self._lock:
                    await self._overflow()
                    await self._offer()
                    await self._announce()
            except Exception:  # one bad pass must not stop time-based routing for good
                log.exception("queue_tick_failed")

    async def _overflow(self) -> None:
        now = self._clock()
        for call in list(self.router.waiting.values()):
            rules = self._queues.queues[call.queue]
            if rules.max_wait is None or rules.overflow is None or now - call.since < rules.max_wait:
                continue
            caller = self._caller_of(call.call_id)
            if caller is None or not self.router.move(call.call_id, rules.overflow):
                continue
            old, caller.queue = caller.queue, rules.overflow
            if caller.channel_id:  # a caller waiting for a call back has no line to move
                with contextlib.suppress(NotFound):
                    await self._ari.bridges.remove_channel(self._holding[old], caller.channel_id)
                holding = await self._holding_bridge(caller.queue)
                await self._ari.bridges.add_channel(holding, caller.channel_id)
            await self._calls.record(call.call_id, "overflow", source=old, queue=caller.queue)
            log.info("call_overflowed", call_id=call.call_id, source=old, queue=caller.queue)

    async def _announce(self) -> None:
        """Tell callers who have waited another ``announce_period`` their place and likely wait."""
        now = self._clock()
        spoken = self._queues.announcements
        for caller in list(self._callers.values()):
            if caller.queue not in self._queues.queues or caller.playback_id or not caller.channel_id:
                continue
            rules = self._queues.queues[caller.queue]
            if caller.call_id not in self.router.waiting or caller.callback_id:
                continue
            periodic = (
                rules.announce_period is not None and now - caller.announced_at >= rules.announce_period
            )
            offer = (
                rules.callback
                and _callable(caller.caller_number)
                and now - caller.since >= rules.callback_after
            )
            if not periodic and not (offer and not caller.callback_offered):
                continue
            caller.announced_at = now
            position = self.router.position(caller.call_id, now)
            names = spoken.say(position, self._holdtime.get(caller.queue)) if periodic else []
            if offer:
                names.append("callback_offer")
            media = [uri for name in names if (uri := self._sound(name, caller.language))]
            if not media or len(media) < len(names):  # prompts not built: say nothing rather than half
                continue
            caller.callback_offered = caller.callback_offered or offer
            caller.playback_id = f"hotline-announce-{uuid.uuid4().hex}"
            self._announcing[caller.playback_id] = (caller.call_id, names)
            try:
                await self._ari.channels.play(caller.channel_id, media, playback_id=caller.playback_id)
            except NotFound:  # the caller is gone; their StasisEnd is on its way
                self._announcing.pop(caller.playback_id, None)
                caller.playback_id = ""

    def _sound(self, name: str, language: str) -> str | None:
        found = self._sounds.get((name, language))
        if found is None:  # no text in the caller's language: the hotline's first language
            found = next((uri for (n, _), uri in self._sounds.items() if n == name), None)
        return found

    async def _announced(self, playback_id: str) -> None:
        call_id, names = self._announcing.pop(playback_id)
        caller = self._caller_of(call_id)
        if caller is not None and caller.playback_id == playback_id:
            caller.playback_id = ""
        await self._calls.record(call_id, "announced", prompts=names)
        if playback_id in self._hang_up_after:  # the call back is confirmed: the caller can go
            await self._hang_up(self._hang_up_after.pop(playback_id))

    async def _save_transitions(self) -> None:
        fresh: list[Transition] = self.router.drain()
        if not fresh:
            return
        for t in fresh:
            notice = {"type": "presence", "agent": t.agent_id, "presence": t.after, "reason": t.reason}
            self.notices.publish(notice, t.agent_id)
        async with self._store.session() as session:
            for t in fresh:
                session.add(
                    AgentEvent(
                        agent_id=t.agent_id,
                        before=t.before,
                        after=t.after,
                        reason=t.reason,
                        call_id=t.call_id,
                    )
                )
            await session.commit()

    # -- callers -------------------------------------------------------------------------------

    async def enqueue(
        self, call_id: str, channel_id: str, queue: str, language: str, urgent: bool, caller: tuple[str, str]
    ) -> None:
        """A caller the IVR is done with joins ``queue``; from now on this flow owns the channel."""
        async with self._lock:
            if channel_id in self._callers:  # handed over again after the event socket came back
                return
            waiting = Caller(
                call_id,
                channel_id,
                queue,
                caller_name=caller[0],
                caller_number=caller[1],
                language=language,
                urgent=urgent,
                since=self._clock(),
            )
            self._callers[channel_id] = waiting
            target = self._with_room(queue, urgent)
            if target != queue:
                await self._calls.record(call_id, "queue_full", queue=queue, overflow=target)
                log.info("queue_full", call_id=call_id, queue=queue, overflow=target)
            await self._wait_in(waiting, target)
            await self._offer()

    def _with_room(self, queue: str, urgent: bool) -> str:
        """The queue a new caller joins: ``queue``, or where its overflow leads while queues are
        full (``max_length``). Urgent callers are never turned away from their queue."""
        seen = {queue}
        while not urgent:
            rules = self._queues.queues[queue]
            waiting = sum(1 for c in self.router.waiting.values() if c.queue == queue)
            if rules.max_length is None or waiting < rules.max_length or rules.overflow in (None, *seen):
                break
            assert rules.overflow is not None
            queue = rules.overflow
            seen.add(queue)
        return queue

    async def _wait_in(self, caller: Caller, queue: str, only_agent: str | None = None) -> None:
        """Put the caller in ``queue``'s holding bridge and in the router's waiting calls."""
        caller.queue = queue
        caller.announced_at = self._clock()
        bridge = await self._holding_bridge(queue)
        try:
            await self._ari.bridges.add_channel(bridge, caller.channel_id)
        except AriError as exc:  # already there: a caller handed over again after a restart ...
            log.info("caller_already_waiting", call_id=caller.call_id, error=str(exc))
            caller.since = await self._first_queued(caller.call_id)  # ... who keeps their place
        call = WaitingCall(caller.call_id, queue, caller.language, caller.urgent, caller.since)
        call.only_agent = only_agent
        self.router.enqueue(call)
        position = self.router.position(caller.call_id, self._clock())
        await self._calls.record(
            caller.call_id, "queued", queue=queue, position=position, urgent=caller.urgent
        )
        log.info("call_queued", call_id=caller.call_id, queue=queue, position=position, urgent=caller.urgent)
        self._queue_changed(queue)

    async def _first_queued(self, call_id: str) -> float:
        """When (on our monotonic clock) the caller first joined a queue, from the stored timeline."""
        events = await self._calls.events(call_id)
        first = next((e.at for e in events if e.kind == "queued"), None)
        if first is None:
            return self._clock()
        return self._clock() - max(0.0, (utcnow() - first).total_seconds())

    def _queue_changed(self, queue: str) -> None:
        waiting = [c for c in self.router.waiting.values() if c.queue == queue]
        self.notices.publish({"type": "queue", "queue": queue, "waiting": len(waiting)})

    async def _holding_bridge(self, queue: str) -> str:
        bridge_id = self._holding.get(queue)
        if bridge_id is None:
            bridge_id = f"hotline-queue-{queue}"
            with contextlib.suppress(AriError):  # left over from a previous run: reuse it
                await self._ari.bridges.create(type="holding", bridge_id=bridge_id, name=f"queue {queue}")
            await self._ari.bridges.moh_start(bridge_id, moh_class=self._queues.queues[queue].moh_class)
            self._holding[queue] = bridge_id
        return bridge_id

    async def _offer(self) -> None:
        # Repeat while agents turn out unreachable: each miss frees them, and a caller may be
        # offered to the next; misses pause an agent after max_no_answer, so this ends.
        while offers := self.router.offers(self._clock()):
            before = len(self.router.transitions)
            for offer in offers:
                await self._ring(offer)
            if not any(t.reason == "no_answer" for t in self.router.transitions[before:]):
                break
        await self._save_transitions()

    async def _ring(self, offer: Offer) -> None:
        """Create the agents' channels; each is dialled once it has entered our app (StasisStart)."""
        caller = next(c for c in self._callers.values() if c.call_id == offer.call_id)
        label = self._queues.label(caller.queue)
        shown = (
            f"{label.get('tr') or next(iter(label.values()))}: {caller.caller_name or caller.caller_number}"
        )
        for agent_id in offer.agent_ids:
            # The channel's StasisStart may be handled before ``create`` returns (it comes on the
            # event socket, in another lane): the offer is known under our own id beforehand.
            channel_id = f"hotline-agent-{uuid.uuid4().hex}"
            self._ringing[channel_id] = Ringing(offer.call_id, agent_id, channel_id, offer.timeout)
            self.notices.publish({"type": "offer", **self._describe(caller)}, agent_id)
            try:
                await self._ari.channels.create(
                    f"PJSIP/agent-{agent_id}",
                    channel_id=channel_id,
                    app_args=["agent", offer.call_id],
                    variables={"CALLERID(name)": shown[:60], "CALLERID(num)": caller.caller_number},
                )
            except AriError as exc:
                del self._ringing[channel_id]
                log.warning("agent_unreachable", agent_id=agent_id, error=str(exc))
                self.router.no_answer(offer.call_id, agent_id, self._clock())
                continue
            await self._calls.record(offer.call_id, "offered", agent=agent_id)

    async def _dial(self, ringing: Ringing) -> None:
        caller = self._caller_of(ringing.call_id)
        if caller is None or ringing.dialled:
            return
        ringing.dialled = True
        label = self._queues.label(caller.queue)
        shown = (
            f"{label.get('tr') or next(iter(label.values()))}: {caller.caller_name or caller.caller_number}"
        )
        try:
            # What the agent's phone shows (PJSIP puts the connected line in From): queue, then caller.
            await self._ari.channels.set_variable(ringing.channel_id, "CONNECTEDLINE(name)", shown[:60])
            await self._ari.channels.set_variable(
                ringing.channel_id, "CONNECTEDLINE(num)", caller.caller_number
            )
            # No ``caller=``: Asterisk would copy the caller's identity over the line set above.
            await self._ari.channels.dial(ringing.channel_id, timeout=int(ringing.timeout))
        except AriError as exc:
            log.warning("agent_dial_failed", agent_id=ringing.agent_id, error=str(exc))
            await self._dial_progress(ringing, "CHANUNAVAIL")

    # -- events --------------------------------------------------------------------------------

    async def handle(self, event: ev.Event) -> None:
        match event:
            case ev.Connected():
                await self._watch_phones()
                async with self._lock:
                    await self._resync(event)
            case ev.EndpointStateChange() if event.endpoint.technology == "PJSIP":
                async with self._lock:
                    await self._phone_state(event.endpoint.resource, event.endpoint.state)
            case ev.StasisStart() if event.channel.id in self._ringing:
                async with self._lock:
                    await self._dial(self._ringing[event.channel.id])
            case ev.StasisStart() if event.channel.id in self._spies:
                async with self._lock:
                    await self._dial_spy(self._spies[event.channel.id])
            case ev.Dial() if event.peer.id in self._spies:
                async with self._lock:
                    await self._spy_progress(self._spies[event.peer.id], event.dialstatus)
            case ev.StasisStart() if event.channel.id.startswith("hotline-snoop-"):
                async with self._lock:
                    await self._snooping(event.channel.id)
            case ev.ChannelDtmfReceived() if event.channel.id in self._callers:
                async with self._lock:
                    await self._key(self._callers[event.channel.id], event.digit)
            case ev.StasisStart() if event.channel.id.startswith("hotline-callback-"):
                async with self._lock:
                    await self._dial_back(event.channel.id)
            case ev.Dial() if event.peer.id.startswith("hotline-callback-"):
                async with self._lock:
                    await self._call_back_progress(event.peer.id, event.dialstatus)
            case ev.StasisEnd() if event.channel.id.startswith("hotline-callback-"):
                async with self._lock:
                    await self._call_back_progress(event.channel.id, "HANGUP")
            case ev.PlaybackFinished() if event.playback.id in self._announcing:
                async with self._lock:
                    await self._announced(event.playback.id)
            case ev.StasisEnd() if event.channel.id in self._spies:
                async with self._lock:
                    await self._spy_gone(self._spies.pop(event.channel.id))
            case ev.Dial() if event.peer.id in self._ringing:
                async with self._lock:
                    await self._dial_progress(self._ringing[event.peer.id], event.dialstatus)
            case ev.StasisEnd() if event.channel.id in self._callers:
                async with self._lock:
                    await self._caller_left(self._callers.pop(event.channel.id))
            case ev.StasisEnd() if event.channel.id in self._ringing:
                async with self._lock:
                    await self._agent_channel_gone(self._ringing.pop(event.channel.id))

    async def _dial_progress(self, ringing: Ringing, status: str) -> None:
        # Events about an agent's channel can arrive twice (through the channel and through the
        # endpoint subscription): every step here must be idempotent.
        if ringing.answered or ringing.missed:
            return
        caller = self._caller_of(ringing.call_id)
        if caller is None:  # the caller has gone: this offer is moot
            await self._hang_up(ringing.channel_id)
            return
        if status == "ANSWER" and not caller.bridge_id:
            ringing.answered = True
            for other in self.router.answered(ringing.call_id, ringing.agent_id, self._clock()):
                await self._hang_up_offer(ringing.call_id, other)
            if caller.channel_id:
                await self._connect(caller, ringing)
            else:  # a call back: now that an agent is there, ring the caller
                await self._ring_back(caller, ringing)
        elif status == "ANSWER":
            # Answered a call that was already taken or gone: nothing to bridge to.
            await self._hang_up(ringing.channel_id)
        elif status in NO_ANSWER:
            await self._missed(ringing, status)
        await self._save_transitions()

    async def _missed(self, ringing: Ringing, status: str) -> None:
        """The agent did not take the offer: release them (penalised) and offer the call again."""
        if ringing.missed or ringing.answered:
            return
        ringing.missed = True
        self.router.no_answer(ringing.call_id, ringing.agent_id, self._clock())
        await self._calls.record(ringing.call_id, "agent_no_answer", agent=ringing.agent_id, status=status)
        await self._hang_up(ringing.channel_id)
        await self._offer()

    async def _connect(self, caller: Caller, ringing: Ringing) -> None:
        self._hang_up_after.pop(caller.playback_id, None)  # asked for a call back, got an agent first
        if caller.callback_id:
            await self._update_call_back(caller.callback_id, status="connected")
        if caller.playback_id:  # the agent comes first; the rest of the announcement is moot
            with contextlib.suppress(NotFound):
                await self._ari.playbacks.stop(caller.playback_id)
        # Estimated wait, as app_queue keeps it: a running average that favours the past.
        waited = self._clock() - caller.since
        before = self._holdtime.get(caller.queue)
        self._holdtime[caller.queue] = waited if before is None else (3 * before + waited) / 4
        bridge = await self._ari.bridges.create(type="mixing", name=f"call {caller.call_id}")
        caller.bridge_id, caller.agent_id, caller.agent_channel = (
            bridge.id,
            ringing.agent_id,
            ringing.channel_id,
        )
        with contextlib.suppress(NotFound):
            await self._ari.bridges.remove_channel(self._holding[caller.queue], caller.channel_id)
        await self._ari.bridges.add_channel(bridge.id, [caller.channel_id, ringing.channel_id])
        await self._calls.record(caller.call_id, "agent_connected", agent=ringing.agent_id)
        log.info("agent_connected", call_id=caller.call_id, agent_id=ringing.agent_id)
        self.notices.publish({"type": "connected", **self._describe(caller)}, ringing.agent_id)
        self._queue_changed(caller.queue)

    def _describe(self, caller: Caller) -> dict[str, object]:
        """What a desktop shows about a call: who, from which queue, urgent or not."""
        return {
            "call_id": caller.call_id,
            "queue": caller.queue,
            "label": self._queues.label(caller.queue) if caller.queue in self._queues.queues else {},
            "caller_number": caller.caller_number,
            "caller_name": caller.caller_name,
            "language": caller.language,
            "urgent": caller.urgent,
            "agent": caller.agent_id or None,
            "callback": bool(caller.callback_id),
        }

    async def _hang_up_offer(self, call_id: str, agent_id: str) -> None:
        for channel_id, ringing in list(self._ringing.items()):
            if ringing.call_id == call_id and ringing.agent_id == agent_id:
                await self._hang_up(channel_id)

    async def _hang_up(self, channel_id: str) -> None:
        """Hang up a channel that may be gone already (its party hung up first)."""
        with contextlib.suppress(NotFound):
            await self._ari.channels.hangup(channel_id)

    def _caller_of(self, call_id: str) -> Caller | None:
        return next((c for c in self._callers.values() if c.call_id == call_id), None)

    async def _caller_left(self, caller: Caller) -> None:
        """The caller hung up (or left our app): stop every agent phone ringing for them."""
        if caller.callback_id and not caller.agent_channel:
            await self._await_call_back(caller)
            return
        if caller.agent_channel:
            await self._hang_up(caller.agent_channel)
            await self._close(caller, CallOutcome.completed)
            return
        for agent_id in self.router.abandon(caller.call_id, self._clock()):
            await self._hang_up_offer(caller.call_id, agent_id)
        await self._save_transitions()
        await self._calls.record(caller.call_id, "abandoned_in_queue", queue=caller.queue)
        await self._close(caller, CallOutcome.abandoned)
        self._queue_changed(caller.queue)

    async def _agent_channel_gone(self, ringing: Ringing) -> None:
        caller = self._caller_of(ringing.call_id)
        if not ringing.answered and caller is not None and not caller.bridge_id:
            # Rang out, busy or rejected: Asterisk ends such a dial without a final Dial status.
            await self._missed(ringing, "ENDED")
            await self._save_transitions()
        elif ringing.answered and caller is not None and caller.outbound_channel and not caller.bridge_id:
            # The agent gave up while the caller's phone rang: try again later.
            await self._hang_up(caller.outbound_channel)
            await self._call_back_failed(caller, "agent_hung_up")
            wrap = self.router.call_ended(ringing.agent_id, self._clock())
            await self._save_transitions()
            self._start_wrap_up(ringing.agent_id, wrap)
        elif ringing.answered:
            # The agent's call is over, whoever hung up first: wrap-up, then the next call.
            wrap = self.router.call_ended(ringing.agent_id, self._clock())
            self.notices.publish(
                {"type": "ended", "call_id": ringing.call_id, "wrap_up": wrap}, ringing.agent_id
            )
            await self._save_transitions()
            if caller is not None and caller.agent_channel == ringing.channel_id:
                self._callers.pop(caller.channel_id, None)
                await self._hang_up(caller.channel_id)
                await self._close(caller, CallOutcome.completed)
            self._start_wrap_up(ringing.agent_id, wrap)

    def _start_wrap_up(self, agent_id: str, seconds: float) -> None:
        # One timer per agent: a timer left from an earlier call must never cut a later wrap-up short.
        old = self._wrap_ups.pop(agent_id, None)
        if old is not None:
            old.cancel()
        self._wrap_ups[agent_id] = self._timers.start(self._wrap_up(agent_id, seconds))

    async def _wrap_up(self, agent_id: str, seconds: float) -> None:
        await self._sleep(seconds)
        async with self._lock:
            if self._wrap_ups.get(agent_id) is asyncio.current_task():
                del self._wrap_ups[agent_id]
            self.router.wrap_up_done(agent_id, self._clock())
            await self._offer()

    async def _end_spies(self, call_id: str) -> None:
        for spy in [s for s in self._spies.values() if s.call_id == call_id]:
            await self._hang_up(spy.channel_id)

    async def _close(self, caller: Caller, outcome: CallOutcome) -> None:
        await self._end_spies(caller.call_id)
        for playback_id in [p for p, (c, _) in self._announcing.items() if c == caller.call_id]:
            del self._announcing[playback_id]
        if caller.bridge_id:
            with contextlib.suppress(NotFound):
                await self._ari.bridges.destroy(caller.bridge_id)
        await self._calls.record(caller.call_id, "stasis_end")
        await self._calls.close(caller.call_id, outcome)
        log.info("call_ended", call_id=caller.call_id, outcome=outcome.value)

    # -- call backs ------------------------------------------------------------------------------

    async def _key(self, caller: Caller, digit: str) -> None:
        """A waiting caller pressed a key: "1" after the offer asks for a call back."""
        call = self.router.waiting.get(caller.call_id)
        if digit != "1" or not caller.callback_offered or caller.callback_id or call is None:
            return
        if call.offered_to:  # an agent's phone is ringing for them already: they are next
            return
        waited = self._clock() - caller.since
        row = Callback(
            call_id=caller.call_id,
            number=caller.caller_number,
            queue=caller.queue,
            language=caller.language,
            urgent=caller.urgent,
            waiting_since=utcnow() - timedelta(seconds=waited),
        )
        async with self._store.session() as session:
            session.add(row)
            await session.commit()
        caller.callback_id = row.id
        await self._calls.record(caller.call_id, "callback_requested", queue=caller.queue, callback=row.id)
        log.info("callback_requested", call_id=caller.call_id, queue=caller.queue)
        if caller.playback_id:
            with contextlib.suppress(NotFound):
                await self._ari.playbacks.stop(caller.playback_id)
        # Confirm, then let the caller go; their place stays in the queue.
        media = self._sound("callback_confirm", caller.language)
        if media is None:
            await self._hang_up(caller.channel_id)
            return
        caller.playback_id = f"hotline-announce-{uuid.uuid4().hex}"
        self._announcing[caller.playback_id] = (caller.call_id, ["callback_confirm"])
        self._hang_up_after[caller.playback_id] = caller.channel_id
        try:
            await self._ari.channels.play(caller.channel_id, [media], playback_id=caller.playback_id)
        except NotFound:
            self._announcing.pop(caller.playback_id, None)
            self._hang_up_after.pop(caller.playback_id, None)

    async def _await_call_back(self, caller: Caller) -> None:
        """The caller who asked for a call back has hung up: they wait in the queue without a line."""
        caller.channel_id, caller.playback_id = "", ""
        self._callers[f"callback:{caller.call_id}"] = caller
        await self._calls.record(caller.call_id, "callback_waiting", queue=caller.queue)
        await self._calls.close(caller.call_id, CallOutcome.callback)

    async def _load_call_backs(self) -> None:
        """Call backs a previous run had not finished wait again, in their place."""
        async with self._store.session() as session:
            rows = (
                await session.exec(select(Callback).where(col(Callback.status).in_(["waiting", "dialling"])))
            ).all()
        for row in rows:
            if row.queue not in self._queues.queues:
                continue
            waited = max(0.0, (utcnow() - row.waiting_since).total_seconds())
            caller = Caller(
                row.call_id,
                "",
                row.queue,
                caller_number=row.number,
                language=row.language,
                urgent=row.urgent,
                since=self._clock() - waited,
                callback_offered=True,
                callback_id=row.id,
            )
            self._callers[f"callback:{row.call_id}"] = caller
            self.router.enqueue(WaitingCall(row.call_id, row.queue, row.language, row.urgent, caller.since))
            if row.status == "dialling":  # the run that was dialling died: try again
                await self._update_call_back(row.id, status="waiting")

    async def _update_call_back(self, callback_id: str, **values: object) -> Callback | None:
        async with self._store.session() as session:
            row = await session.get(Callback, callback_id)
            if row is None:
                return None
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = utcnow()
            session.add(row)
            await session.commit()
            await session.refresh(row)
            return row

    async def _ring_back(self, caller: Caller, ringing: Ringing) -> None:
        """An agent took a call back: they hear ringing while the caller's number is dialled."""
        caller.agent_id, caller.agent_channel = ringing.agent_id, ringing.channel_id
        caller.outbound_channel = f"hotline-callback-{uuid.uuid4().hex}"
        row = await self._update_call_back(caller.callback_id, status="dialling")
        attempt = (row.attempts if row else 0) + 1
        await self._update_call_back(caller.callback_id, attempts=attempt)
        await self._calls.record(caller.call_id, "callback_dialling", agent=ringing.agent_id, attempt=attempt)
        with contextlib.suppress(AriError):
            tone = f"{caller.outbound_channel}-tone"
            await self._ari.channels.play(ringing.channel_id, "tone:ring", playback_id=tone)
        try:
            await self._ari.channels.create(
                self._queues.callback_dial.format(number=caller.caller_number),
                channel_id=caller.outbound_channel,
                app_args=["callback", caller.call_id],
            )
        except AriError as exc:
            log.warning("callback_unreachable", call_id=caller.call_id, error=str(exc))
            await self._call_back_failed(caller, "unreachable")

    def _calling_back(self, channel_id: str) -> Caller | None:
        return next((c for c in self._callers.values() if c.outbound_channel == channel_id), None)

    async def _dial_back(self, channel_id: str) -> None:
        caller = self._calling_back(channel_id)
        if caller is None:
            await self._hang_up(channel_id)
            return
        try:
            await self._ari.channels.dial(channel_id, timeout=30)
        except AriError as exc:
            log.warning("callback_dial_failed", call_id=caller.call_id, error=str(exc))
            await self._hang_up(channel_id)
            await self._call_back_failed(caller, "CHANUNAVAIL")

    async def _call_back_progress(self, channel_id: str, status: str) -> None:
        caller = self._calling_back(channel_id)
        if caller is None:
            return
        if status == "ANSWER" and not caller.bridge_id:
            await self._call_back_connected(caller)
        elif status == "HANGUP" and caller.bridge_id:  # the caller hung up after talking
            self._callers.pop(caller.channel_id, None)
            await self._caller_left(caller)
        elif (status in NO_ANSWER or status == "HANGUP") and not caller.bridge_id:
            await self._hang_up(channel_id)
            await self._call_back_failed(caller, status)

    async def _call_back_connected(self, caller: Caller) -> None:
        """The caller answered: from here on it is an ordinary conversation, of a new call."""
        origin = caller.call_id
        call, _ = await self._calls.open(
            caller.outbound_channel,
            caller_number=caller.caller_number,
            extension="callback",
            language=caller.language,
            queue=caller.queue,
            category=self._queues.category(caller.queue),
            urgent=caller.urgent,
        )
        await self._calls.answered(call.id)
        await self._calls.record(call.id, "callback_of", origin=origin, agent=caller.agent_id)
        await self._calls.record(
            origin, "callback_connected", outbound_call_id=call.id, agent=caller.agent_id
        )
        await self._update_call_back(caller.callback_id, status="connected", outbound_call_id=call.id)
        self._callers.pop(f"callback:{origin}", None)
        ringing = self._ringing[caller.agent_channel]
        ringing.call_id = caller.call_id = call.id
        self.router.agents[caller.agent_id].call_id = call.id
        caller.channel_id = caller.outbound_channel
        self._callers[caller.channel_id] = caller
        with contextlib.suppress(NotFound):
            await self._ari.playbacks.stop(f"{caller.channel_id}-tone")  # the agent's ring tone
        bridge = await self._ari.bridges.create(type="mixing", name=f"call {call.id}")
        caller.bridge_id = bridge.id
        await self._ari.bridges.add_channel(bridge.id, [caller.channel_id, caller.agent_channel])
        await self._calls.record(call.id, "agent_connected", agent=caller.agent_id)
        log.info("callback_connected", call_id=call.id, origin=origin, agent_id=caller.agent_id)
        self.notices.publish({"type": "connected", **self._describe(caller)}, caller.agent_id)

    async def _call_back_failed(self, caller: Caller, reason: str) -> None:
        """This attempt did not reach the caller: try again later, or give up after the last one."""
        agent_channel = caller.agent_channel
        caller.agent_id = caller.agent_channel = caller.outbound_channel = ""
        row = await self._update_call_back(caller.callback_id, status="waiting")
        rules = self._queues.queues[caller.queue]
        attempts = row.attempts if row else rules.callback_attempts
        await self._calls.record(caller.call_id, "callback_attempt_failed", reason=reason, attempt=attempts)
        if attempts >= rules.callback_attempts:
            await self._update_call_back(caller.callback_id, status="failed")
            await self._calls.record(caller.call_id, "callback_failed", attempts=attempts)
            self._callers.pop(f"callback:{caller.call_id}", None)
            log.warning("callback_failed", call_id=caller.call_id, attempts=attempts)
        else:
            self._timers.start(self._retry_call_back(caller, rules.callback_retry))
        if agent_channel:  # the agent's leg ends; its StasisEnd starts their wrap-up
            await self._hang_up(agent_channel)

    async def _retry_call_back(self, caller: Caller, delay: float) -> None:
        await self._sleep(delay)
        async with self._lock:
            if self._callers.get(f"callback:{caller.call_id}") is caller:
                call = WaitingCall(caller.call_id, caller.queue, caller.language, caller.urgent, caller.since)
                self.router.enqueue(call)
                await self._offer()

    # -- after a restart or a lost event socket --------------------------------------------------

    async def _resync(self, event: ev.Connected) -> None:
        """Forget what ended while events did not reach us, take back the conversations Asterisk
        still holds (their end must still start the agent's wrap-up), and hang up offers and
        supervisor legs that nobody follows any more. Waiting callers come back through the IVR,
        which hands them over again (see ``_wait_in``)."""
        alive = {c.id: c for c in event.channels}
        for caller in [c for c in self._callers.values() if c.channel_id and c.channel_id not in alive]:
            self._callers.pop(caller.channel_id, None)
            await self._caller_left(caller)
        for ringing in [r for r in self._ringing.values() if r.channel_id not in alive]:
            self._ringing.pop(ringing.channel_id, None)
            await self._agent_channel_gone(ringing)
        for spy in [s for s in self._spies.values() if s.channel_id not in alive]:
            self._spies.pop(spy.channel_id, None)
            await self._spy_gone(spy)
        open_calls = {call.channel_id: call for call in await self._calls.open_calls()}
        for bridge in event.bridges:
            if bridge.bridge_type != "mixing" or not bridge.name.startswith("call "):
                continue
            ours = [c for c in bridge.channels if c in open_calls and c not in self._callers]
            agents = [alive[c] for c in bridge.channels if c.startswith("hotline-agent-") and c in alive]
            if ours:
                await self._adopt(open_calls[ours[0]], bridge.id, agents[0] if agents else None)
        followed = set(self._ringing) | set(self._spies) | {s.snoop_id for s in self._spies.values()}
        followed |= {c.outbound_channel for c in self._callers.values()}
        for channel_id in alive:
            if channel_id.startswith(
                ("hotline-agent-", "hotline-spy-", "hotline-snoop-", "hotline-callback-")
            ):
                if channel_id not in followed:
                    log.info("orphan_leg_hung_up", channel_id=channel_id)
                    await self._hang_up(channel_id)
        await self._offer()  # call backs waiting since the last run, agents freed while away

    async def _adopt(self, call: Call, bridge_id: str, agent_channel: Channel | None) -> None:
        # PJSIP channel names are "PJSIP/agent-<id>-<sequence>".
        endpoint = agent_channel.name.partition("/")[2].rpartition("-")[0] if agent_channel else ""
        agent_id = endpoint.removeprefix("agent-")
        if agent_channel is None or agent_id not in self.router.agents:
            # The agent hung up while we were away: the conversation is over.
            await self._hang_up(call.channel_id)
            with contextlib.suppress(NotFound):
                await self._ari.bridges.destroy(bridge_id)
            await self._calls.record(call.id, "agent_left_while_away")
            await self._calls.close(call.id, CallOutcome.completed)
            return
        caller = Caller(
            call.id,
            call.channel_id,
            call.queue or "",
            caller_name=call.caller_name,
            caller_number=call.caller_number,
            language=call.language,
            urgent=call.urgent,
            since=self._clock(),
            bridge_id=bridge_id,
            agent_id=agent_id,
            agent_channel=agent_channel.id,
        )
        self._callers[call.channel_id] = caller
        self._ringing[agent_channel.id] = Ringing(
            call.id, agent_id, agent_channel.id, 0, dialled=True, answered=True
        )
        self.router.adopt(agent_id, call.id, caller.queue, self._clock())
        await self._calls.record(call.id, "readopted_with_agent", agent=agent_id)
        log.info("call_readopted", call_id=call.id, agent_id=agent_id)

    # -- agents' and supervisors' commands ------------------------------------------------------

    def _known(self, agent_id: str) -> None:
        if agent_id not in self.router.agents:
            raise UnknownTarget(f"no agent {agent_id!r}")

    async def login(self, agent_id: str) -> None:
        self._known(agent_id)
        async with self._lock:
            now = self._clock()
            try:
                self.router.login(agent_id, now)
            except PresenceError as exc:
                raise CommandError(str(exc)) from None
            if self._phones.get(agent_id) != "online":
                self.router.device_unreachable(agent_id, now)
            await self._offer()

    async def logout(self, agent_id: str) -> None:
        """Log out now, or when the call in progress (and its wrap-up) is over."""
        self._known(agent_id)
        async with self._lock:
            if self.router.agents[agent_id].presence is Presence.offline:
                raise CommandError(f"agent {agent_id} is not logged in")
            self.router.logout(agent_id, self._clock())
            await self._save_transitions()

    async def pause(self, agent_id: str, reason: str) -> None:
        """Pause now, or when the call in progress (and its wrap-up) is over."""
        self._known(agent_id)
        if reason not in self._queues.pause_reasons:
            raise BadRequest(f"unknown pause reason {reason!r}; use one of {self._queues.pause_reasons}")
        async with self._lock:
            if self.router.agents[agent_id].presence is Presence.offline:
                raise CommandError(f"agent {agent_id} is not logged in")
            self.router.pause(agent_id, reason, self._clock())
            await self._save_transitions()

    async def resume(self, agent_id: str) -> None:
        self._known(agent_id)
        async with self._lock:
            try:
                self.router.resume(agent_id, self._clock())
            except PresenceError as exc:
                raise CommandError(str(exc)) from None
            if self._phones.get(agent_id) != "online":
                self.router.device_unreachable(agent_id, self._clock())
            await self._offer()

    async def end_wrap_up(self, agent_id: str) -> None:
        """The agent is done with the paperwork before the wrap-up time is over."""
        self._known(agent_id)
        async with self._lock:
            if self.router.agents[agent_id].presence is not Presence.wrap_up:
                raise CommandError(f"agent {agent_id} is not in wrap-up")
            timer = self._wrap_ups.pop(agent_id, None)
            if timer is not None:
                timer.cancel()
            self.router.wrap_up_done(agent_id, self._clock())
            await self._offer()

    async def reprioritise(self, call_id: str, boost: int) -> None:
        """A supervisor moves a waiting caller ahead of (or behind) others of the same urgency."""
        async with self._lock:
            if not self.router.reprioritise(call_id, boost):
                raise UnknownTarget(f"no waiting call {call_id!r}")
            await self._calls.record(call_id, "reprioritised", boost=boost)
            await self._offer()

    async def transfer(self, agent_id: str, *, queue: str | None = None, to_agent: str | None = None) -> str:
        """Send the agent's caller to another queue or agent, keeping the call (its id, history and
        place: the caller's original wait counts); the agent goes to wrap-up. Returns the call id."""
        self._known(agent_id)
        if to_agent is not None:
            self._known(to_agent)
            if to_agent == agent_id:
                raise BadRequest("an agent cannot transfer a call to themselves")
        if queue is not None and queue not in self._queues.queues:
            raise UnknownTarget(f"no queue {queue!r}")
        async with self._lock:
            caller = next((c for c in self._callers.values() if c.agent_id == agent_id and c.bridge_id), None)
            if caller is None:
                raise CommandError(f"agent {agent_id} has no call to transfer")
            target = queue or caller.queue
            bridge, agent_channel = caller.bridge_id, caller.agent_channel
            caller.bridge_id = caller.agent_id = caller.agent_channel = ""
            await self._end_spies(caller.call_id)  # they were listening to this agent's conversation
            await self._calls.transferred(
                caller.call_id,
                queue=target,
                category=self._queues.category(target),
                by_agent=agent_id,
                to_agent=to_agent,
            )
            log.info("call_transferred", call_id=caller.call_id, agent_id=agent_id, queue=target, to=to_agent)
            with contextlib.suppress(NotFound):
                await self._ari.bridges.remove_channel(bridge, caller.channel_id)
            await self._wait_in(caller, target, only_agent=to_agent)
            # The agent's leg ends here; its StasisEnd starts their wrap-up (the caller stays).
            await self._hang_up(agent_channel)
            with contextlib.suppress(NotFound):
                await self._ari.bridges.destroy(bridge)
            await self._offer()
            return caller.call_id

    async def spy(self, call_id: str, mode: str, phone: str) -> str:
        """Ring the supervisor's ``phone`` (an agent id) and, once answered, let them listen to,
        whisper to the agent on, or barge into the call. Returns the supervisor's channel id."""
        if mode not in SPY_MODES:
            raise BadRequest(f"unknown mode {mode!r}; use one of {sorted(SPY_MODES)}")
        self._known(phone)
        async with self._lock:
            caller = self._caller_of(call_id)
            if caller is None or not caller.bridge_id:
                raise UnknownTarget(f"no call {call_id!r} with an agent")
            if caller.agent_id == phone:
                raise BadRequest("the supervisor's phone is the agent's own phone")
            channel_id = f"hotline-spy-{uuid.uuid4().hex}"
            self._spies[channel_id] = Spy(call_id, mode, phone, channel_id)
            label = {"listen": "Dinleme", "whisper": "Fısıltı", "barge": "Katılma"}[mode]
            try:
                await self._ari.channels.create(
                    f"PJSIP/agent-{phone}",
                    channel_id=channel_id,
                    app_args=["spy", call_id],
                    variables={"CALLERID(name)": f"{label}: {caller.agent_id}", "CALLERID(num)": "183"},
                )
            except AriError as exc:
                del self._spies[channel_id]
                raise CommandError(f"phone of {phone} cannot be rung: {exc}") from None
            await self._calls.record(call_id, "spy_requested", mode=mode, phone=phone)
            return channel_id

    async def _dial_spy(self, spy: Spy) -> None:
        try:
            await self._ari.channels.dial(spy.channel_id, timeout=30)
        except AriError as exc:
            log.warning("spy_dial_failed", call_id=spy.call_id, error=str(exc))
            await self._hang_up(spy.channel_id)

    async def _spy_progress(self, spy: Spy, status: str) -> None:
        if spy.answered or status != "ANSWER":
            if status in NO_ANSWER:
                await self._hang_up(spy.channel_id)
            return
        spy.answered = True
        caller = self._caller_of(spy.call_id)
        if caller is None or not caller.bridge_id:  # the call ended while the supervisor's phone rang
            await self._hang_up(spy.channel_id)
            return
        if spy.mode == "barge":
            await self._ari.bridges.add_channel(caller.bridge_id, spy.channel_id)
            await self._spy_connected(spy)
            return
        bridge = await self._ari.bridges.create(type="mixing", name=f"{spy.mode} {spy.call_id}")
        spy.bridge_id = bridge.id
        await self._ari.bridges.add_channel(bridge.id, spy.channel_id)
        # The snoop joins the bridge once it has entered our app (its StasisStart, see _snooping):
        # a bridge refuses a channel that is not in Stasis yet.
        spy.snoop_id = f"hotline-snoop-{uuid.uuid4().hex}"
        await self._ari.channels.snoop(
            caller.agent_channel,
            spy="both",
            whisper=SPY_MODES[spy.mode],
            app_args=["snoop", spy.call_id],
            snoop_id=spy.snoop_id,
        )

    async def _snooping(self, snoop_id: str) -> None:
        spy = next((s for s in self._spies.values() if s.snoop_id == snoop_id), None)
        if spy is None or not spy.bridge_id:  # the supervisor hung up meanwhile
            await self._hang_up(snoop_id)
            return
        await self._ari.bridges.add_channel(spy.bridge_id, snoop_id)
        await self._spy_connected(spy)

    async def _spy_connected(self, spy: Spy) -> None:
        await self._calls.record(spy.call_id, "spy_connected", mode=spy.mode, phone=spy.phone)
        log.info("spy_connected", call_id=spy.call_id, mode=spy.mode, phone=spy.phone)

    async def _spy_gone(self, spy: Spy) -> None:
        """The supervisor hung up (or the call ended): the snoop and its bridge go too."""
        if spy.snoop_id:
            await self._hang_up(spy.snoop_id)
        if spy.bridge_id:
            with contextlib.suppress(NotFound):
                await self._ari.bridges.destroy(spy.bridge_id)
        if spy.answered:
            await self._calls.record(spy.call_id, "spy_ended", mode=spy.mode, phone=spy.phone)

    def agent_state(self, agent_id: str) -> dict[str, object]:
        """An agent's presence and current call, for their desktop."""
        self._known(agent_id)
        agent = self.router.agents[agent_id]
        now = self._clock()
        call = next((c for c in self._callers.values() if c.agent_id == agent_id), None)
        offered = next(
            (self._caller_of(r.call_id) for r in self._ringing.values() if r.agent_id == agent_id), None
        )
        return {
            "agent": agent_id,
            "name": self._seats[agent_id].name,
            "presence": agent.presence.value,
            "reason": agent.reason,
            "seconds": round(now - agent.since, 1),
            "pending": agent.pending.value if agent.pending else None,
            "calls": agent.calls,
            "phone": self._phones.get(agent_id, "unknown"),
            "queues": sorted(agent.queues),
            "call": self._describe(call) if call else None,
            "offer": self._describe(offered) if offered and agent.presence is Presence.reserved else None,
        }

    def snapshot(self) -> dict[str, object]:
        """Every queue and agent as they are now, for the wallboard."""
        now = self._clock()
        queues = []
        for queue_id in self._queues.queues:
            waiting = sorted(
                (c for c in self.router.waiting.values() if c.queue == queue_id),
                key=lambda c: self.router.position(c.call_id, now),
            )
            queues.append(
                {
                    "queue": queue_id,
                    "label": self._queues.label(queue_id),
                    "waiting": len(waiting),
                    "longest_wait": round(max((now - c.since for c in waiting), default=0.0), 1),
                    "callers": [
                        {"call_id": c.call_id, "urgent": c.urgent, "wait": round(now - c.since, 1)}
                        for c in waiting
                    ],
                    "talking": sum(1 for c in self._callers.values() if c.queue == queue_id and c.bridge_id),
                }
            )
        return {"queues": queues, "agents": [self.agent_state(a) for a in self.router.agents]}

    # -- stopping ------------------------------------------------------------------------------

    async def hand_over_waiting(self, fallback: Callable[[str], Awaitable[None]]) -> int:
        """Send every caller still waiting (not those talking to an agent) to ``fallback``."""
        handed = 0
        async with self._lock:
            for caller in [c for c in self._callers.values() if not c.bridge_id and c.channel_id]:
                for agent_id in self.router.abandon(caller.call_id, self._clock()):
                    await self._hang_up_offer(caller.call_id, agent_id)
                self._callers.pop(caller.channel_id, None)
                await self._calls.record(caller.call_id, "handed_to_fallback")
                await fallback(caller.channel_id)
                await self._calls.close(caller.call_id, CallOutcome.fallback)
                handed += 1
            await self._save_transitions()
        return handed

    @property
    def live_calls(self) -> int:
        return len(self._callers)

    @property
    def config(self) -> QueuesConfig:
        return self._queues

    async def close(self, tidy: bool = True) -> None:
        """Stop timers; with ``tidy``, remove the queues' holding bridges nobody waits in any more."""
        self._timers.cancel()
        for bridge_id in self._holding.values() if tidy else ():
            with contextlib.suppress(AriError):
                if not (await self._ari.bridges.get(bridge_id)).channels:
                    await self._ari.bridges.destroy(bridge_id)


def _callable(number: str) -> bool:
    """A number that can be dialled back (caller ID may be withheld or a name)."""
    return re.fullmatch(r"\+?[0-9]{5,15}", number) is not None


def seats_from_settings(agents: Iterable[AgentSection]) -> list[AgentSeat]:
    """Agents as configured in hotline.toml ([[agents]])."""
    return [
        AgentSeat(a.id, a.name, frozenset(a.queues), frozenset(a.languages), dict(a.skills), a.login_at_start)
        for a in agents
    ]
