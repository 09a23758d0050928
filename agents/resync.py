"""After a restart or a lost event socket: forget what ended while events did not reach us, take
back the conversations Asterisk still holds (their end must still start the agent's wrap-up),
and hang up offers and supervisor legs that nobody follows any more. Waiting callers come back
through the IVR, which hands them over again (see ``Admission.enqueue``).

Offers wait for the first resync (``QueueContext.synced``): an agent still talking to a caller
from before the restart must be known to be on that call before anyone is offered to them.
"""

from __future__ import annotations

import structlog

from agents.context import QueueContext
from agents.live import Caller, Ringing
from ari import events as ev
from ari.models import Channel
from hotline.models import Call, CallEventKind, CallOutcome

log = structlog.get_logger(__name__)

# The ids this flow gives the channels it creates (a previous run's are recognised by them).
OUR_LEGS = ("hotline-agent-", "hotline-spy-", "hotline-snoop-", "hotline-callback-")


class Resync:
    def __init__(self, ctx: QueueContext) -> None:
        self.ctx = ctx

    async def run(self, event: ev.Connected) -> None:
        ctx = self.ctx
        alive = {c.id: c for c in event.channels}
        for caller in [c for c in ctx.live.callers.values() if c.channel_id and c.channel_id not in alive]:
            await ctx.connecting.caller_left(caller)
        for leg in [r for r in ctx.live.agent_legs.values() if r.channel_id not in alive]:
            ctx.live.agent_legs.pop(leg.channel_id, None)
            await ctx.connecting.agent_leg_gone(leg)
        for spy in [s for s in ctx.live.spies.values() if s.channel_id not in alive]:
            await ctx.supervision.gone(spy)
        open_calls = {call.channel_id: call for call in await ctx.calls.open_calls()}
        for bridge in event.bridges:
            if bridge.bridge_type != "mixing" or not bridge.name.startswith("call "):
                continue
            ours = [c for c in bridge.channels if c in open_calls and c not in ctx.live.lines]
            agents = [alive[c] for c in bridge.channels if c.startswith(OUR_LEGS[0]) and c in alive]
            if ours:
                await self._adopt(open_calls[ours[0]], bridge.id, agents[0] if agents else None)
        followed = ctx.live.followed()
        for channel_id in alive:
            if channel_id.startswith(OUR_LEGS) and channel_id not in followed:
                log.info("orphan_leg_hung_up", channel_id=channel_id)
                await ctx.hang_up(channel_id)
        ctx.synced.set()
        now = ctx.clock.now()
        for agent_id in ctx.router.agents:
            ctx.router.settle(agent_id, now)  # a pause asked for before the restart, now idle
        await ctx.presence.save()
        await ctx.offering.offer()  # callers waiting since the last run, agents freed while away

    async def _adopt(self, call: Call, bridge_id: str, agent_channel: Channel | None) -> None:
        ctx = self.ctx
        # PJSIP channel names are "PJSIP/agent-<id>-<sequence>".
        endpoint = agent_channel.name.partition("/")[2].rpartition("-")[0] if agent_channel else ""
        agent_id = endpoint.removeprefix("agent-")
        if agent_channel is None or agent_id not in ctx.router.agents:
            # The agent hung up while we were away: the conversation is over.
            await ctx.hang_up(call.channel_id)
            await ctx.ari.bridges.destroy(bridge_id, missing_ok=True)
            await ctx.calls.record(call.id, CallEventKind.agent_left_while_away)
            await ctx.calls.close(call.id, CallOutcome.completed)
            return
        caller = Caller(
            call.id,
            call.channel_id,
            call.queue or "",
            caller_name=call.caller_name,
            caller_number=call.caller_number,
            language=call.language,
            urgent=call.urgent,
            since=ctx.clock.now(),
            bridge_id=bridge_id,
            agent_id=agent_id,
            agent_channel=agent_channel.id,
        )
        ctx.live.add(caller)
        ctx.live.agent_legs[agent_channel.id] = Ringing(
            call.id, agent_id, agent_channel.id, 0, dialled=True, answered=True
        )
        ctx.router.adopt(agent_id, call.id, caller.queue, ctx.clock.now())
        await ctx.calls.record(
            call.id, CallEventKind.readopted_with_agent, agent=agent_id, agent_channel=agent_channel.id
        )
        log.info("call_readopted", call_id=call.id, agent_id=agent_id)
