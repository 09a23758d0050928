"""Connecting a caller to the agent who answered, and ending the conversation: whoever hangs up
first, the other side goes too, the call is closed and the agent's wrap-up starts; its timer (or
the agent) ends it, never an unrelated event."""

from __future__ import annotations

import asyncio

import structlog

from agents.context import QueueContext
from agents.live import Caller, Ringing
from agents.notifier import EndedNotice
from hotline.models import CallEventKind, CallOutcome

log = structlog.get_logger(__name__)


class Connecting:
    def __init__(self, ctx: QueueContext) -> None:
        self.ctx = ctx

    async def connect(self, caller: Caller, leg: Ringing) -> None:
        """Bridge the caller with the agent's answered leg. If any step fails, the caller goes back
        to their place in the queue (see ``Admission.put_back``) and the agent is free again."""
        ctx = self.ctx
        async with ctx.guard.step(
            "connect",
            caller.call_id,
            caller.channel_id,
            recover=ctx.admission.recovering(caller),
            fallback=lambda: ctx.admission.to_fallback(caller),
        ):
            caller.agent_id, caller.agent_channel = leg.agent_id, leg.channel_id
            caller.hang_up_after = ""  # asked for a call back, but an agent came first
            if caller.callback_id:
                await ctx.call_backs.update(caller.callback_id, status="connected")
            if caller.playback_id:  # the agent comes first; the rest of the announcement is moot
                await ctx.ari.playbacks.stop(caller.playback_id, missing_ok=True)
            bridge = await ctx.ari.bridges.create(type="mixing", name=f"call {caller.call_id}")
            caller.bridge_id = bridge.id
            # Adding the caller moves them out of the holding bridge: no removal round trip.
            await ctx.ari.bridges.add_channel(bridge.id, [caller.channel_id, leg.channel_id])
            # Estimated wait, as app_queue keeps it: a running average that favours the past.
            waited = ctx.clock.now() - caller.since
            before = ctx.holdtime.get(caller.queue)
            ctx.holdtime[caller.queue] = waited if before is None else (3 * before + waited) / 4
            # Who took the call is what a ticket is built from: committed at once (not within the
            # batch window), and logged once it is, without holding the flow up for the commit.
            call_id, agent_id = caller.call_id, leg.agent_id
            await ctx.calls.record(
                call_id,
                CallEventKind.agent_connected,
                soon=True,
                on_commit=lambda: log.info("agent_connected", call_id=call_id, agent_id=agent_id),
                agent=agent_id,
                agent_channel=leg.channel_id,
            )
            ctx.tell_agent("connected", caller, leg.agent_id)
            ctx.queue_changed(caller.queue)

    async def caller_left(self, caller: Caller) -> None:
        """The caller hung up (or left our app): stop every agent phone ringing for them."""
        ctx = self.ctx
        if caller.callback_id and not caller.agent_channel:
            await ctx.call_backs.await_call_back(caller)
            return
        if caller.agent_channel:
            await ctx.hang_up(caller.agent_channel)
            await self.close(caller, CallOutcome.completed)
            return
        for agent_id in ctx.router.abandon(caller.call_id, ctx.clock.now()):
            for leg in ctx.live.legs_of(caller.call_id, agent_id):
                await ctx.hang_up(leg.channel_id)
        await ctx.presence.save()
        await ctx.calls.record(caller.call_id, CallEventKind.abandoned_in_queue, queue=caller.queue)
        await self.close(caller, CallOutcome.abandoned)
        ctx.queue_changed(caller.queue)

    async def agent_leg_gone(self, leg: Ringing) -> None:
        """An agent's leg has left our app: an offer that rang out, or the end of a conversation."""
        ctx = self.ctx
        ctx.live.agent_legs.pop(leg.channel_id, None)
        caller = ctx.live.caller(leg.call_id)
        if not leg.answered:
            if caller is not None and not caller.bridge_id:
                # Rang out, busy or rejected: Asterisk ends such a dial without a final Dial status.
                await ctx.offering.missed(leg, "ENDED")
                await ctx.presence.save()
            return
        if caller is not None and caller.outbound_channel and not caller.bridge_id:
            # The agent gave up while the caller's phone rang: try again later.
            await ctx.hang_up(caller.outbound_channel)
            await ctx.call_backs.failed(caller, "agent_hung_up")
            self._wrap_up(leg)
            await ctx.presence.save()
            return
        self._wrap_up(leg)
        if caller is not None and caller.agent_channel == leg.channel_id:
            await ctx.hang_up(caller.channel_id)
            await self.close(caller, CallOutcome.completed)
        await ctx.presence.save()

    def _wrap_up(self, leg: Ringing) -> None:
        """The agent's call is over, whoever hung up first: wrap-up, then the next call."""
        ctx = self.ctx
        wrap = ctx.router.call_ended(leg.agent_id, ctx.clock.now())
        ctx.notices.publish(EndedNotice(leg.call_id, wrap), leg.agent_id)
        # One timer per agent: a timer left from an earlier call must never cut a later wrap-up short.
        old = ctx.wrap_ups.pop(leg.agent_id, None)
        if old is not None:
            old.cancel()
        ctx.wrap_ups[leg.agent_id] = ctx.timers.start(self._wrap_up_timer(leg.agent_id, wrap))

    async def _wrap_up_timer(self, agent_id: str, seconds: float) -> None:
        ctx = self.ctx
        await ctx.clock.sleep(seconds)
        async with ctx.lock:
            if ctx.wrap_ups.get(agent_id) is asyncio.current_task():
                del ctx.wrap_ups[agent_id]
            await self.end_wrap_up(agent_id)

    async def end_wrap_up(self, agent_id: str) -> None:
        ctx = self.ctx
        timer = ctx.wrap_ups.pop(agent_id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        ctx.router.wrap_up_done(agent_id, ctx.clock.now())
        await ctx.presence.save()
        await ctx.offering.offer()

    async def close(self, caller: Caller, outcome: CallOutcome) -> None:
        """The call is over for us: supervisors' legs go, its bridge goes, the record is closed."""
        ctx = self.ctx
        ctx.live.forget(caller)
        await ctx.supervision.end(caller.call_id)
        if caller.bridge_id:
            await ctx.ari.bridges.destroy(caller.bridge_id, missing_ok=True)
        await ctx.calls.record(caller.call_id, CallEventKind.stasis_end)
        await ctx.calls.close(caller.call_id, outcome)
        log.info("call_ended", call_id=caller.call_id, outcome=outcome.value)
