"""Offering waiting callers to agents: the router picks, the agents' phones ring through
``channels/create`` + ``dial``, and each ring ends answered (connect) or missed (offer again)."""

from __future__ import annotations

import uuid

import structlog

from agents.context import NO_ANSWER, QueueContext
from agents.live import Caller, Ringing
from agents.service import Offer
from ari import AriError
from hotline.models import CallEventKind

log = structlog.get_logger(__name__)


class Offering:
    def __init__(self, ctx: QueueContext) -> None:
        self.ctx = ctx

    async def offer(self) -> None:
        """Offer every waiting call an available agent can take, best call first."""
        ctx = self.ctx
        if not ctx.synced.is_set():
            return  # the first resync decides who is still talking; nobody is offered before that
        # Repeat while agents turn out unreachable: each miss frees them, and a caller may be
        # offered to the next; misses pause an agent after max_no_answer, so this ends.
        while offers := ctx.router.offers(ctx.clock.now()):
            before = len(ctx.router.transitions)
            for offer in offers:
                caller = ctx.live.caller(offer.call_id)
                assert caller is not None, "the router and the registry know the same callers"
                async with ctx.guard.step(
                    "ring",
                    caller.call_id,
                    caller.channel_id or None,
                    recover=ctx.admission.recovering(caller),
                ):
                    await self._ring(caller, offer)
            if not any(t.reason == "no_answer" for t in ctx.router.transitions[before:]):
                break
        await ctx.presence.save()

    def _identity(self, caller: Caller) -> dict[str, str]:
        """What the agent's phone shows: the queue, then the caller. PJSIP puts the connected line
        in the INVITE's From, so it is set with the caller id when the channel is created."""
        shown = f"{self.ctx.label(caller.queue)}: {caller.caller_name or caller.caller_number}"[:60]
        number = caller.caller_number
        return {
            "CALLERID(name)": shown,
            "CALLERID(num)": number,
            "CONNECTEDLINE(name)": shown,
            "CONNECTEDLINE(num)": number,
        }

    async def _ring(self, caller: Caller, offer: Offer) -> None:
        """Create the agents' channels; each is dialled once it has entered our app (StasisStart)."""
        ctx = self.ctx
        for agent_id in offer.agent_ids:
            # The channel's StasisStart may be handled before ``create`` returns (it comes on the
            # event socket, in another lane): the offer is filed under our own id beforehand.
            channel_id = f"hotline-agent-{uuid.uuid4().hex}"
            ctx.live.agent_legs[channel_id] = Ringing(offer.call_id, agent_id, channel_id, offer.timeout)
            ctx.tell_agent("offer", caller, agent_id)
            try:
                await ctx.ari.channels.create(
                    f"PJSIP/agent-{agent_id}",
                    channel_id=channel_id,
                    app_args=["agent", offer.call_id],
                    variables=self._identity(caller),
                )
            except AriError as exc:
                del ctx.live.agent_legs[channel_id]
                log.warning("agent_unreachable", agent_id=agent_id, error=str(exc))
                ctx.router.no_answer(offer.call_id, agent_id, ctx.clock.now())
                continue
            await ctx.calls.record(offer.call_id, CallEventKind.offered, agent=agent_id)

    async def dial(self, leg: Ringing) -> None:
        """The agent's channel is in our app: ring the phone, showing the queue and the caller."""
        ctx = self.ctx
        caller = ctx.live.caller(leg.call_id)
        if caller is None or leg.dialled:
            return
        leg.dialled = True
        try:
            # No ``caller=``: Asterisk would copy the caller's identity over the line set at creation.
            await ctx.ari.channels.dial(leg.channel_id, timeout=int(leg.timeout))
        except AriError as exc:
            log.warning("agent_dial_failed", agent_id=leg.agent_id, error=str(exc))
            await self.progress(leg, "CHANUNAVAIL")

    async def progress(self, leg: Ringing, status: str) -> None:
        """A dial status for an agent's leg. Events about it can arrive twice (through the channel
        and through the endpoint subscription): every step here is idempotent."""
        ctx = self.ctx
        if leg.answered or leg.missed:
            return
        caller = ctx.live.caller(leg.call_id)
        if caller is None:  # the caller has gone: this offer is moot
            ctx.live.agent_legs.pop(leg.channel_id, None)
            await ctx.hang_up(leg.channel_id)
            return
        if status == "ANSWER" and not caller.bridge_id:
            leg.answered = True
            for other in ctx.router.answered(leg.call_id, leg.agent_id, ctx.clock.now()):
                for ringing in ctx.live.legs_of(leg.call_id, other):
                    await ctx.hang_up(ringing.channel_id)
            if caller.channel_id:
                await ctx.connecting.connect(caller, leg)
            else:  # a call back: now that an agent is there, ring the caller
                await ctx.call_backs.ring_back(caller, leg)
        elif status == "ANSWER":
            # Answered a call that was already taken or gone: nothing to bridge to.
            await ctx.hang_up(leg.channel_id)
        elif status in NO_ANSWER:
            await self.missed(leg, status)
        await ctx.presence.save()

    async def missed(self, leg: Ringing, status: str) -> None:
        """The agent did not take the offer: release them (penalised) and offer the call again."""
        ctx = self.ctx
        if leg.missed or leg.answered:
            return
        leg.missed = True
        ctx.router.no_answer(leg.call_id, leg.agent_id, ctx.clock.now())
        await ctx.calls.record(leg.call_id, CallEventKind.agent_no_answer, agent=leg.agent_id, status=status)
        await ctx.hang_up(leg.channel_id)
        await self.offer()
