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
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import structlog

from agents.config import QueuesConfig
from agents.models import AgentEvent
from agents.service import Agent, Offer, Router, Transition, WaitingCall
from ari import AriClient, AriError, NotFound
from ari import events as ev
from hotline.calls import CallLog
from hotline.db import Store
from hotline.models import CallOutcome
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


@dataclass(slots=True)
class Caller:
    call_id: str
    channel_id: str
    queue: str
    caller_name: str = ""
    caller_number: str = ""
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


@dataclass(slots=True)
class Timers:
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def start(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

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
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._ari = ari
        self._calls = calls
        self._store = store
        self._queues = queues
        self._clock = clock
        self._sleep = sleep
        self.router = Router(q.rules(queue_id) for queue_id, q in queues.queues.items())
        for seat in seats:
            serves = seat.queues or frozenset(queues.queues)
            self.router.add_agent(Agent(seat.id, serves, seat.languages, dict(seat.skills)))
        self._lock = asyncio.Lock()
        self._callers: dict[str, Caller] = {}  # caller channel id -> caller
        self._ringing: dict[str, Ringing] = {}  # agent channel id -> the offer it carries
        self._holding: dict[str, str] = {}  # queue -> holding bridge id
        self._timers = Timers()
        self._saved = 0  # router transitions already stored

    # -- agents --------------------------------------------------------------------------------

    async def start(self, tick: float = 1.0) -> None:
        """Agents are logged in (static members, until the agent API exists); those whose phone is
        not reachable are paused until it is."""
        async with self._lock:
            now = self._clock()
            for agent_id in self.router.agents:
                self.router.login(agent_id, now)
                try:
                    state = (await self._ari.endpoints.get("PJSIP", f"agent-{agent_id}")).state
                except NotFound:  # no such endpoint in Asterisk: its config is older than ours
                    state = "unknown"
                log.info("agent_phone", agent_id=agent_id, state=state)
                if state != "online":
                    self.router.device_unreachable(agent_id, now)
            await self._save_transitions()
        self._timers.start(self._tick(tick))

    async def _watch_phones(self) -> None:
        """Follow the agents' phones registering and dropping (subscriptions end with a connection)."""
        sources = [f"endpoint:PJSIP/agent-{agent_id}" for agent_id in self.router.agents]
        if sources:
            await self._ari.applications.subscribe(sources)

    async def _phone_state(self, endpoint: str, state: str) -> None:
        agent_id = endpoint.removeprefix("agent-")
        if agent_id not in self.router.agents:
            return
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
            if self.router.waiting:
                async with self._lock:
                    await self._overflow()
                    await self._offer()

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
            with contextlib.suppress(NotFound):
                await self._ari.bridges.remove_channel(self._holding[old], caller.channel_id)
            await self._ari.bridges.add_channel(await self._holding_bridge(caller.queue), caller.channel_id)
            await self._calls.record(call.call_id, "overflow", source=old, queue=caller.queue)
            log.info("call_overflowed", call_id=call.call_id, source=old, queue=caller.queue)

    async def _save_transitions(self) -> None:
        fresh: list[Transition] = self.router.transitions[self._saved :]
        if not fresh:
            return
        self._saved = len(self.router.transitions)
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
            waiting = Caller(call_id, channel_id, queue, caller_name=caller[0], caller_number=caller[1])
            self._callers[channel_id] = waiting
            bridge = await self._holding_bridge(queue)
            try:
                await self._ari.bridges.add_channel(bridge, channel_id)
            except AriError as exc:  # already there: a caller handed over again after a restart
                log.info("caller_already_waiting", call_id=call_id, error=str(exc))
            self.router.enqueue(WaitingCall(call_id, queue, language, urgent, self._clock()))
            position = self.router.position(call_id, self._clock())
            await self._calls.record(call_id, "queued", queue=queue, position=position, urgent=urgent)
            log.info("call_queued", call_id=call_id, queue=queue, position=position, urgent=urgent)
            await self._offer()

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
            unreachable = len(self.router.transitions)
            for offer in offers:
                await self._ring(offer)
            if not any(t.reason == "no_answer" for t in self.router.transitions[unreachable:]):
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
            case ev.EndpointStateChange() if event.endpoint.technology == "PJSIP":
                async with self._lock:
                    await self._phone_state(event.endpoint.resource, event.endpoint.state)
            case ev.StasisStart() if event.channel.id in self._ringing:
                async with self._lock:
                    await self._dial(self._ringing[event.channel.id])
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
            await self._ari.channels.hangup(ringing.channel_id)
            return
        if status == "ANSWER" and not caller.bridge_id:
            ringing.answered = True
            for other in self.router.answered(ringing.call_id, ringing.agent_id, self._clock()):
                await self._hang_up_offer(ringing.call_id, other)
            await self._connect(caller, ringing)
        elif status == "ANSWER":
            # Answered a call that was already taken or gone: nothing to bridge to.
            await self._ari.channels.hangup(ringing.channel_id)
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
        await self._ari.channels.hangup(ringing.channel_id)
        await self._offer()

    async def _connect(self, caller: Caller, ringing: Ringing) -> None:
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

    async def _hang_up_offer(self, call_id: str, agent_id: str) -> None:
        for channel_id, ringing in list(self._ringing.items()):
            if ringing.call_id == call_id and ringing.agent_id == agent_id:
                await self._ari.channels.hangup(channel_id)

    def _caller_of(self, call_id: str) -> Caller | None:
        return next((c for c in self._callers.values() if c.call_id == call_id), None)

    async def _caller_left(self, caller: Caller) -> None:
        """The caller hung up (or left our app): stop every agent phone ringing for them."""
        if caller.agent_channel:
            await self._ari.channels.hangup(caller.agent_channel)
            await self._close(caller, CallOutcome.completed)
            return
        for agent_id in self.router.abandon(caller.call_id, self._clock()):
            await self._hang_up_offer(caller.call_id, agent_id)
        await self._save_transitions()
        await self._calls.record(caller.call_id, "abandoned_in_queue", queue=caller.queue)
        await self._close(caller, CallOutcome.abandoned)

    async def _agent_channel_gone(self, ringing: Ringing) -> None:
        caller = self._caller_of(ringing.call_id)
        if not ringing.answered and caller is not None and not caller.bridge_id:
            # Rang out: Asterisk ends a dial that times out without a final Dial status.
            await self._missed(ringing, "TIMEOUT")
            await self._save_transitions()
        elif ringing.answered:
            # The agent's call is over, whoever hung up first: wrap-up, then the next call.
            wrap = self.router.call_ended(ringing.agent_id, self._clock())
            await self._save_transitions()
            if caller is not None and caller.agent_channel == ringing.channel_id:
                self._callers.pop(caller.channel_id, None)
                await self._ari.channels.hangup(caller.channel_id)
                await self._close(caller, CallOutcome.completed)
            self._timers.start(self._wrap_up(ringing.agent_id, wrap))

    async def _wrap_up(self, agent_id: str, seconds: float) -> None:
        await self._sleep(seconds)
        async with self._lock:
            self.router.wrap_up_done(agent_id, self._clock())
            await self._offer()

    async def _close(self, caller: Caller, outcome: CallOutcome) -> None:
        if caller.bridge_id:
            with contextlib.suppress(NotFound):
                await self._ari.bridges.destroy(caller.bridge_id)
        await self._calls.record(caller.call_id, "stasis_end")
        await self._calls.close(caller.call_id, outcome)
        log.info("call_ended", call_id=caller.call_id, outcome=outcome.value)

    # -- stopping ------------------------------------------------------------------------------

    async def hand_over_waiting(self, fallback: Callable[[str], Awaitable[None]]) -> int:
        """Send every caller still waiting (not those talking to an agent) to ``fallback``."""
        handed = 0
        async with self._lock:
            for caller in [c for c in self._callers.values() if not c.bridge_id]:
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

    async def close(self, tidy: bool = True) -> None:
        """Stop timers; with ``tidy``, remove the queues' holding bridges nobody waits in any more."""
        self._timers.cancel()
        for bridge_id in self._holding.values() if tidy else ():
            with contextlib.suppress(AriError):
                if not (await self._ari.bridges.get(bridge_id)).channels:
                    await self._ari.bridges.destroy(bridge_id)


def seats_from_settings(agents: Iterable[AgentSection]) -> list[AgentSeat]:
    """Agents as configured in hotline.toml ([[agents]])."""
    return [
        AgentSeat(a.id, a.name, frozenset(a.queues), frozenset(a.languages), dict(a.skills)) for a in agents
    ]
