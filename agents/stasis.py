"""Queues on ARI: the entry point that builds the queue flow's parts and routes Asterisk's events
to them.

The router (``agents.service``) decides; the parts carry its decisions out and report back what
Asterisk says:

- ``admission``: joining a queue, the holding bridge, overflow, putting a caller back in place;
- ``offering``: ringing agents and what their phones answer;
- ``connecting``: bridging caller and agent, the end of a conversation and wrap-up;
- ``callbacks``, ``announcements``, ``supervision``: the rest of what callers and supervisors do;
- ``presence``: agents' presence stored and restored, their phones followed;
- ``resync``: what a restart or a lost event socket leaves behind;
- ``desk``: the agents' and supervisors' commands and read models.

Every channel the flow follows is filed in the registry (``agents.live``) under its role when the
flow creates or adopts it, so events are routed by looking the channel up, and a StasisStart by its
``app_args`` (as the IVR does). One lock serialises the flow's steps, and each step runs inside the
call-flow guard (``hotline.callflow``): a step that fails puts its caller back in their place or,
failing that, hands them to the dialplan fallback; it never leaves them in silence.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping

import structlog

from agents.admission import Admission
from agents.announcements import Announcements
from agents.callbacks import CallBacks
from agents.config import QueuesConfig
from agents.connecting import Connecting
from agents.context import QueueContext
from agents.desk import Desk
from agents.live import AgentSeat, Caller
from agents.notifier import Notifier
from agents.offering import Offering
from agents.presence import PresenceBook
from agents.resync import Resync
from agents.service import Agent, Router
from agents.supervision import Supervision
from ari import AriClient, AriError
from ari import events as ev
from hotline.callflow import Guard
from hotline.calls import CallLog
from hotline.clock import SYSTEM, Clock
from hotline.db import Store
from hotline.models import CallEventKind, CallOutcome
from hotline.settings import AgentSection

log = structlog.get_logger(__name__)


class QueueFlow:
    def __init__(
        self,
        ari: AriClient,
        calls: CallLog,
        store: Store,
        queues: QueuesConfig,
        seats: Iterable[AgentSeat],
        guard: Guard,
        *,
        sounds: Mapping[tuple[str, str], str] | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        seats = list(seats)
        router = Router(q.rules(queue_id) for queue_id, q in queues.queues.items())
        for seat in seats:
            serves = seat.queues or frozenset(queues.queues)
            router.add_agent(Agent(seat.id, serves, seat.languages, dict(seat.skills)))
        ctx = QueueContext(
            ari, calls, store, queues, router, clock, guard, {s.id: s for s in seats}, sounds or {}
        )
        ctx.admission = Admission(ctx)
        ctx.offering = Offering(ctx)
        ctx.connecting = Connecting(ctx)
        ctx.call_backs = CallBacks(ctx)
        ctx.supervision = Supervision(ctx)
        ctx.announcements = Announcements(ctx)
        ctx.presence = PresenceBook(ctx)
        self.ctx = ctx
        self.desk = Desk(ctx)
        self._resync = Resync(ctx)

    @property
    def router(self) -> Router:
        return self.ctx.router

    @property
    def notices(self) -> Notifier:
        return self.ctx.notices

    @property
    def config(self) -> QueuesConfig:
        return self.ctx.config

    @property
    def live_calls(self) -> int:
        return len(self.ctx.live.callers)

    async def synced(self) -> None:
        """Return once the first resync has run (offers start then)."""
        await self.ctx.synced.wait()

    async def start(self, tick: float = 1.0) -> None:
        """Agents and call backs come back as a previous run left them; nobody is offered a call
        before the first resync (on the event socket's first Connected) has run."""
        ctx = self.ctx
        async with ctx.lock:
            await ctx.call_backs.load()
            await ctx.presence.restore()
            await ctx.presence.check_phones()
            await ctx.presence.save()
        ctx.timers.start(self._tick(tick))

    async def _tick(self, every: float) -> None:
        """Time alone changes things: tiers widen and callers overflow as they wait. Look again."""
        ctx = self.ctx
        while True:
            await ctx.clock.sleep(every)
            if not ctx.router.waiting:
                continue
            try:
                async with ctx.lock:
                    await ctx.admission.overflow()
                    await ctx.offering.offer()
                    await ctx.announcements.announce()
            except Exception:  # one bad pass must not stop time-based routing for good
                log.exception("queue_tick_failed")

    async def enqueue(
        self,
        call_id: str,
        channel_id: str,
        queue: str,
        language: str,
        urgent: bool,
        caller: tuple[str, str],
        agent: str | None = None,
    ) -> None:
        """A caller the IVR is done with joins ``queue``; from now on this flow owns the channel.
        ``agent``: the caller asked for this agent, who alone is offered the call for a ring time."""
        name, number = caller
        joining = Caller(call_id, channel_id, queue, name, number, language, urgent)
        admission = self.ctx.admission
        async with self.ctx.lock:
            if not await admission.admit(joining):
                return
        held = await admission.hold(joining)  # outside the lock: see Admission.hold
        async with self.ctx.lock:
            await admission.join(joining, held, agent if agent in self.ctx.router.agents else None)

    async def call_back(
        self, call_id: str, number: str, queue: str, language: str, reason: str
    ) -> str | None:
        """Call an urgent caller back who was cut off (see ``CallBacks.schedule``)."""
        async with self.ctx.lock:
            return await self.ctx.call_backs.schedule(call_id, number, queue, language, reason)

    # -- events --------------------------------------------------------------------------------

    async def handle(self, event: ev.Event) -> None:
        ctx = self.ctx
        if isinstance(event, ev.Connected):
            try:
                await ctx.presence.watch_phones()
            except AriError as exc:  # phones are looked at again on the next connect; go on
                log.warning("phone_watch_failed", error=str(exc))
            async with ctx.lock:
                try:
                    await self._resync.run(event)
                except Exception:  # offers must not wait forever for a resync that failed
                    log.exception("queue_resync_failed")
                    ctx.synced.set()
            return
        if self._route(event) is None:
            return  # not ours (most events of calls in the menus): no need to wait for the lock
        async with ctx.lock:
            step = self._route(event)  # again: the steps before ours may have changed the registry
            if step is None:
                return
            name, caller, action = step
            if caller is None:
                async with ctx.guard.step(name, None, None):
                    await action()
                return
            async with ctx.guard.step(
                name,
                caller.call_id,
                caller.channel_id or None,
                recover=ctx.admission.recovering(caller),
                fallback=lambda: ctx.admission.to_fallback(caller),
            ):
                await action()

    def _route(self, event: ev.Event) -> tuple[str, Caller | None, Callable[[], Awaitable[None]]] | None:
        """Which part acts on ``event``, for which caller (None: no caller at stake)."""
        ctx, live = self.ctx, self.ctx.live
        match event:
            case ev.EndpointStateChange() if event.endpoint.technology == "PJSIP":
                endpoint = event.endpoint
                return "phone", None, lambda: ctx.presence.phone_state(endpoint.resource, endpoint.state)
            case ev.StasisStart() if event.args[:1] == ["agent"] and event.channel.id in live.agent_legs:
                leg = live.agent_legs[event.channel.id]
                return "dial_agent", live.caller(leg.call_id), lambda: ctx.offering.dial(leg)
            case ev.StasisStart() if event.args[:1] == ["spy"] and event.channel.id in live.spies:
                spy = live.spies[event.channel.id]
                return "dial_supervisor", None, lambda: ctx.supervision.dial(spy)
            case ev.StasisStart() if event.args[:1] == ["snoop"] and event.channel.id in live.snoops:
                spy = live.snoops[event.channel.id]
                return "snoop", None, lambda: ctx.supervision.snooping(spy)
            case ev.StasisStart() if event.args[:1] == ["callback"] and event.channel.id in live.call_backs:
                caller, channel_id = live.call_backs[event.channel.id], event.channel.id
                return "dial_back", caller, lambda: ctx.call_backs.dial(caller, channel_id)
            case ev.StasisStart() if event.args[:1] in (["agent"], ["spy"], ["snoop"], ["callback"]):
                orphan = event.channel.id  # a leg of a call that has ended meanwhile
                return "orphan", None, lambda: ctx.hang_up(orphan)
            case ev.ChannelDtmfReceived() if event.channel.id in live.lines:
                caller, digit = live.lines[event.channel.id], event.digit
                return "key", caller, lambda: ctx.call_backs.key(caller, digit)
            case ev.Dial() if event.peer.id in live.agent_legs:
                leg, status = live.agent_legs[event.peer.id], event.dialstatus
                return "agent_dial", live.caller(leg.call_id), lambda: ctx.offering.progress(leg, status)
            case ev.Dial() if event.peer.id in live.spies:
                spy, status = live.spies[event.peer.id], event.dialstatus
                return "supervisor_dial", None, lambda: ctx.supervision.progress(spy, status)
            case ev.Dial() if event.peer.id in live.call_backs:
                caller, channel_id, status = live.call_backs[event.peer.id], event.peer.id, event.dialstatus
                return "call_back_dial", caller, lambda: ctx.call_backs.progress(caller, channel_id, status)
            case ev.PlaybackFinished() if event.playback.id in live.announcing:
                playback_id = event.playback.id
                return "announced", None, lambda: ctx.announcements.finished(playback_id)
            case ev.StasisEnd() if event.channel.id in live.call_backs:
                caller, channel_id = live.call_backs[event.channel.id], event.channel.id
                return (
                    "call_back_ended",
                    caller,
                    lambda: ctx.call_backs.progress(caller, channel_id, "HANGUP"),
                )
            case ev.StasisEnd() if event.channel.id in live.spies:
                spy = live.spies[event.channel.id]
                return "supervisor_gone", None, lambda: ctx.supervision.gone(spy)
            case ev.StasisEnd() if event.channel.id in live.lines:
                caller = live.lines[event.channel.id]
                return "caller_left", None, lambda: ctx.connecting.caller_left(caller)
            case ev.StasisEnd() if event.channel.id in live.agent_legs:
                leg = live.agent_legs[event.channel.id]
                return "agent_left", None, lambda: ctx.connecting.agent_leg_gone(leg)
        return None

    # -- stopping ------------------------------------------------------------------------------

    async def hand_over_waiting(self, fallback: Callable[[str], Awaitable[object]]) -> int:
        """Send every caller still waiting (not those talking to an agent) to ``fallback``."""
        ctx = self.ctx
        handed = 0
        async with ctx.lock:
            for caller in [c for c in ctx.live.callers.values() if not c.bridge_id and c.channel_id]:
                for agent_id in ctx.router.abandon(caller.call_id, ctx.clock.now()):
                    for leg in ctx.live.legs_of(caller.call_id, agent_id):
                        await ctx.hang_up(leg.channel_id)
                ctx.live.forget(caller)
                await ctx.calls.record(caller.call_id, CallEventKind.handed_to_fallback)
                await fallback(caller.channel_id)
                await ctx.calls.close(caller.call_id, CallOutcome.fallback)
                handed += 1
            await ctx.presence.save()
        return handed

    async def close(self, tidy: bool = True) -> None:
        """Stop timers; with ``tidy``, remove the queues' holding bridges nobody waits in any more."""
        ctx = self.ctx
        ctx.timers.cancel()
        for bridge_id in ctx.live.holding.values() if tidy else ():
            try:
                if not (await ctx.ari.bridges.get(bridge_id)).channels:
                    await ctx.ari.bridges.destroy(bridge_id, missing_ok=True)
            except AriError as exc:
                log.info("holding_bridge_left", bridge_id=bridge_id, error=str(exc))


def seats_from_settings(agents: Iterable[AgentSection]) -> list[AgentSeat]:
    """Agents as configured in hotline.toml ([[agents]])."""
    return [
        AgentSeat(a.id, a.name, frozenset(a.queues), frozenset(a.languages), dict(a.skills), a.login_at_start)
        for a in agents
    ]
