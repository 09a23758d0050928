"""Agents' presence kept across restarts, and their phones followed as they register and drop.

Every transition the router makes is stored (``agent_event``, the history reports read) together
with each agent's present state and pending request (``agent_state``, what a restart restores),
written behind the calls (``Store.behind``), which keeps and retries a batch whose commit failed.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from sqlmodel import col, select

from agents.context import QueueContext
from agents.models import AgentEvent, AgentState
from agents.notifier import PresenceNotice
from agents.service import Presence
from ari import NotFound

log = structlog.get_logger(__name__)


class PresenceBook:
    def __init__(self, ctx: QueueContext) -> None:
        self.ctx = ctx

    async def restore(self) -> None:
        """Agents come back as they were (logged out, paused with their reason, a pause asked for
        during a call still pending); static members log in on their very first start."""
        router, now = self.ctx.router, self.ctx.clock.now()
        async with self.ctx.store.session() as session:
            states = {s.agent_id: s for s in (await session.exec(select(AgentState))).all()}
            for agent_id in router.agents:
                state = states.get(agent_id)
                if state is not None:
                    pending = Presence(state.pending) if state.pending else None
                    router.restore(
                        agent_id, Presence(state.presence), state.reason, pending, state.pending_reason, now
                    )
                    continue
                last = (
                    await session.exec(
                        select(AgentEvent)
                        .where(AgentEvent.agent_id == agent_id)
                        .order_by(col(AgentEvent.id).desc())
                        .limit(1)
                    )
                ).first()
                if last is None:
                    if self.ctx.seats[agent_id].login_at_start:
                        router.login(agent_id, now)
                else:
                    router.restore(agent_id, Presence(last.after), last.reason, None, "", now)

    async def check_phones(self) -> None:
        """Ask Asterisk where each agent's phone is; an unreachable one pauses its agent."""
        now = self.ctx.clock.now()
        for agent_id in self.ctx.router.agents:
            try:
                state = (await self.ctx.ari.endpoints.get("PJSIP", f"agent-{agent_id}")).state
            except NotFound:  # no such endpoint in Asterisk: its config is older than ours
                state = "unknown"
            log.info("agent_phone", agent_id=agent_id, state=state)
            self.ctx.phones[agent_id] = state
            if state != "online":
                self.ctx.router.device_unreachable(agent_id, now)

    async def watch_phones(self) -> None:
        """Follow the agents' phones registering and dropping (subscriptions end with a connection)."""
        sources = [f"endpoint:PJSIP/agent-{agent_id}" for agent_id in self.ctx.router.agents]
        if sources:
            await self.ctx.ari.applications.subscribe(sources)

    async def phone_state(self, endpoint: str, state: str) -> None:
        agent_id = endpoint.removeprefix("agent-")
        if agent_id not in self.ctx.router.agents or self.ctx.phones.get(agent_id) == state:
            return  # the endpoint reports every change of its channels, not only of its state
        self.ctx.phones[agent_id] = state
        log.info("agent_phone", agent_id=agent_id, state=state)
        if state == "online":
            self.ctx.router.device_reachable(agent_id, self.ctx.clock.now())
            await self.ctx.offering.offer()
        else:
            self.ctx.router.device_unreachable(agent_id, self.ctx.clock.now())
        await self.save()

    def unreachable_unless_online(self, agent_id: str) -> None:
        """After a login or resume: no offers to a phone that is not registered."""
        if self.ctx.phones.get(agent_id) != "online":
            self.ctx.router.device_unreachable(agent_id, self.ctx.clock.now())

    async def save(self, also: Iterable[str] = (), durable: bool = False) -> None:
        """Store the router's new transitions and the present state of the agents they (and
        ``also``: a pending request changes no presence) concern, and tell the desktops. Written
        behind (``Store.behind``), which keeps a batch whose commit failed and tries it again;
        ``durable`` commits before returning (what a person asked for must survive a crash)."""
        ctx, router = self.ctx, self.ctx.router
        fresh = list(router.transitions)
        touched = {t.agent_id for t in fresh} | set(also)
        if not touched:
            return
        behind = ctx.store.behind
        for t in fresh:
            behind.add(
                AgentEvent(
                    agent_id=t.agent_id,
                    before=t.before,
                    after=t.after,
                    reason=t.reason,
                    call_id=t.call_id,
                    by=t.by,
                )
            )
        for agent_id in touched:
            agent = router.agents[agent_id]
            state = AgentState(
                agent_id=agent_id,
                presence=agent.presence.value,
                reason=agent.reason,
                pending=agent.pending.value if agent.pending else None,
                pending_reason=agent.pending_reason,
                call_id=agent.call_id,
                updated_at=ctx.clock.utcnow(),
            )
            behind.add(state, merge=True)
        router.saved(len(fresh))
        for t in fresh:
            ctx.notices.publish(PresenceNotice(t.agent_id, t.after, t.reason), t.agent_id)
        if durable:
            await behind.flush()
