"""The agents' and supervisors' commands (presence, wrap-up, transfer, priority, supervision) and
the read models their desktops and the wallboard show. Every command takes the flow's lock."""

from __future__ import annotations

import structlog

from agents.context import QueueContext
from agents.errors import BadRequest, CommandError, UnknownTarget
from agents.service import Presence, PresenceError
from hotline.models import CallEventKind

log = structlog.get_logger(__name__)


class Desk:
    def __init__(self, ctx: QueueContext) -> None:
        self.ctx = ctx

    def _known(self, agent_id: str) -> None:
        if agent_id not in self.ctx.router.agents:
            raise UnknownTarget(f"no agent {agent_id!r}")

    async def login(self, agent_id: str, by: str = "") -> None:
        self._known(agent_id)
        ctx = self.ctx
        async with ctx.lock:
            try:
                ctx.router.login(agent_id, ctx.clock.now(), by)
            except PresenceError as exc:
                raise CommandError(str(exc)) from None
            ctx.presence.unreachable_unless_online(agent_id)
            await ctx.presence.save(durable=True)
            await ctx.offering.offer()

    async def logout(self, agent_id: str, by: str = "") -> None:
        """Log out now, or when the call in progress (and its wrap-up) is over."""
        self._known(agent_id)
        ctx = self.ctx
        async with ctx.lock:
            if ctx.router.agents[agent_id].presence is Presence.offline:
                raise CommandError(f"agent {agent_id} is not logged in")
            ctx.router.logout(agent_id, ctx.clock.now(), by)
            await ctx.presence.save(also=[agent_id], durable=True)

    async def pause(self, agent_id: str, reason: str, by: str = "") -> None:
        """Pause now, or when the call in progress (and its wrap-up) is over."""
        self._known(agent_id)
        ctx = self.ctx
        if reason not in ctx.config.pause_reasons:
            raise BadRequest(f"unknown pause reason {reason!r}; use one of {ctx.config.pause_reasons}")
        async with ctx.lock:
            if ctx.router.agents[agent_id].presence is Presence.offline:
                raise CommandError(f"agent {agent_id} is not logged in")
            ctx.router.pause(agent_id, reason, ctx.clock.now(), by)
            await ctx.presence.save(also=[agent_id], durable=True)

    async def resume(self, agent_id: str, by: str = "") -> None:
        self._known(agent_id)
        ctx = self.ctx
        async with ctx.lock:
            try:
                ctx.router.resume(agent_id, ctx.clock.now(), by)
            except PresenceError as exc:
                raise CommandError(str(exc)) from None
            ctx.presence.unreachable_unless_online(agent_id)
            await ctx.presence.save(durable=True)
            await ctx.offering.offer()

    async def end_wrap_up(self, agent_id: str) -> None:
        """The agent is done with the paperwork before the wrap-up time is over."""
        self._known(agent_id)
        ctx = self.ctx
        async with ctx.lock:
            if ctx.router.agents[agent_id].presence is not Presence.wrap_up:
                raise CommandError(f"agent {agent_id} is not in wrap-up")
            await ctx.connecting.end_wrap_up(agent_id)

    async def reprioritise(self, call_id: str, boost: int, by: str = "") -> None:
        """A supervisor moves a waiting caller ahead of (or behind) others of the same urgency."""
        ctx = self.ctx
        async with ctx.lock:
            if not ctx.router.reprioritise(call_id, boost):
                raise UnknownTarget(f"no waiting call {call_id!r}")
            await ctx.calls.record(call_id, CallEventKind.reprioritised, boost=boost, by=by)
            await ctx.offering.offer()

    async def transfer(self, agent_id: str, *, queue: str | None = None, to_agent: str | None = None) -> str:
        """Send the agent's caller to another queue or agent, keeping the call (its id, history and
        place: the caller's original wait counts); the agent goes to wrap-up. A colleague who is
        logged out or paused, or does not free up within a ring time, leaves the call to the queue.
        Returns the call id."""
        self._known(agent_id)
        ctx = self.ctx
        if to_agent is not None:
            self._known(to_agent)
            if to_agent == agent_id:
                raise BadRequest("an agent cannot transfer a call to themselves")
        if queue is not None and queue not in ctx.config.queues:
            raise UnknownTarget(f"no queue {queue!r}")
        async with ctx.lock:
            caller = ctx.live.talking_with(agent_id)
            if caller is None:
                raise CommandError(f"agent {agent_id} has no call to transfer")
            target = queue or caller.queue
            bridge, agent_channel = caller.bridge_id, caller.agent_channel
            async with ctx.guard.step(
                "transfer", caller.call_id, caller.channel_id, recover=ctx.admission.recovering(caller)
            ):
                caller.bridge_id = caller.agent_id = caller.agent_channel = ""
                await ctx.supervision.end(caller.call_id)  # they were listening to this conversation
                await ctx.calls.transferred(
                    caller.call_id,
                    queue=target,
                    category=ctx.config.category(target),
                    by_agent=agent_id,
                    to_agent=to_agent,
                )
                log.info(
                    "call_transferred", call_id=caller.call_id, agent_id=agent_id, queue=target, to=to_agent
                )
                await ctx.ari.bridges.remove_channel(bridge, caller.channel_id, missing_ok=True)
                await ctx.admission.wait_in(caller, target, only_agent=to_agent)
                # The agent's leg ends here; its StasisEnd starts their wrap-up (the caller stays).
                await ctx.hang_up(agent_channel)
                await ctx.ari.bridges.destroy(bridge, missing_ok=True)
                await ctx.offering.offer()
            return caller.call_id

    async def spy(self, call_id: str, mode: str, phone: str, by: str = "") -> str:
        self._known(phone)
        async with self.ctx.lock:
            return await self.ctx.supervision.spy(call_id, mode, phone, by)

    # -- read models ---------------------------------------------------------------------------

    def agent_state(self, agent_id: str) -> dict[str, object]:
        """An agent's presence and current call, for their desktop."""
        self._known(agent_id)
        ctx = self.ctx
        agent = ctx.router.agents[agent_id]
        call = next((c for c in ctx.live.callers.values() if c.agent_id == agent_id), None)
        leg = next((r for r in ctx.live.agent_legs.values() if r.agent_id == agent_id), None)
        offered = ctx.live.caller(leg.call_id) if leg is not None else None
        return {
            "agent": agent_id,
            "name": ctx.seats[agent_id].name,
            "presence": agent.presence.value,
            "reason": agent.reason,
            "seconds": round(ctx.clock.now() - agent.since, 1),
            "pending": agent.pending.value if agent.pending else None,
            "calls": agent.calls,
            "phone": ctx.phones.get(agent_id, "unknown"),
            "queues": sorted(agent.queues),
            "call": ctx.describe(call) if call else None,
            "offer": ctx.describe(offered) if offered and agent.presence is Presence.reserved else None,
        }

    def snapshot(self) -> dict[str, object]:
        """Every queue and agent as they are now, for the wallboard."""
        ctx = self.ctx
        now = ctx.clock.now()
        queues = []
        for queue_id in ctx.config.queues:
            waiting = sorted(
                (c for c in ctx.router.waiting.values() if c.queue == queue_id),
                key=lambda c: ctx.router.position(c.call_id, now),
            )
            talking = sum(1 for c in ctx.live.callers.values() if c.queue == queue_id and c.bridge_id)
            queues.append(
                {
                    "queue": queue_id,
                    "label": ctx.config.label(queue_id),
                    "waiting": len(waiting),
                    "longest_wait": round(max((now - c.since for c in waiting), default=0.0), 1),
                    "callers": [
                        {"call_id": c.call_id, "urgent": c.urgent, "wait": round(now - c.since, 1)}
                        for c in waiting
                    ],
                    "talking": talking,
                }
            )
        return {"queues": queues, "agents": [self.agent_state(a) for a in ctx.router.agents]}
