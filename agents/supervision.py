"""Supervisors on a live call: ring their phone, then listen (a snoop hearing both sides),
whisper (a snoop whose audio only the agent hears) or barge (join the call's own bridge)."""

from __future__ import annotations

import uuid

import structlog

from agents.context import NO_ANSWER, QueueContext
from agents.errors import BadRequest, CommandError, UnknownTarget
from agents.live import Spy
from ari import AriError
from hotline.models import CallEventKind

log = structlog.get_logger(__name__)

SPY_MODES = {
    # mode -> what the snoop on the agent's channel does: hear both sides; whisper "out" is the
    # audio sent to the agent's phone, so only the agent hears the supervisor. Barge needs no snoop.
    "listen": "none",
    "whisper": "out",
    "barge": "",
}
LABELS = {"listen": "Dinleme", "whisper": "Fısıltı", "barge": "Katılma"}


class Supervision:
    def __init__(self, ctx: QueueContext) -> None:
        self.ctx = ctx

    async def spy(self, call_id: str, mode: str, phone: str, by: str = "") -> str:
        """Ring the supervisor's ``phone`` (an agent id); returns the supervisor's channel id.
        ``by`` is the signed-in user who asked, kept on the call's timeline."""
        ctx = self.ctx
        if mode not in SPY_MODES:
            raise BadRequest(f"unknown mode {mode!r}; use one of {sorted(SPY_MODES)}")
        caller = ctx.live.caller(call_id)
        if caller is None or not caller.bridge_id:
            raise UnknownTarget(f"no call {call_id!r} with an agent")
        if caller.agent_id == phone:
            raise BadRequest("the supervisor's phone is the agent's own phone")
        channel_id = f"hotline-spy-{uuid.uuid4().hex}"
        ctx.live.spies[channel_id] = Spy(call_id, mode, phone, channel_id, by=by)
        try:
            await ctx.ari.channels.create(
                f"PJSIP/agent-{phone}",
                channel_id=channel_id,
                app_args=["spy", call_id],
                variables={"CALLERID(name)": f"{LABELS[mode]}: {caller.agent_id}", "CALLERID(num)": "183"},
            )
        except AriError as exc:
            del ctx.live.spies[channel_id]
            raise CommandError(f"phone of {phone} cannot be rung: {exc}") from None
        await ctx.calls.record(call_id, CallEventKind.spy_requested, mode=mode, phone=phone, by=by)
        return channel_id

    async def dial(self, spy: Spy) -> None:
        try:
            await self.ctx.ari.channels.dial(spy.channel_id, timeout=30)
        except AriError as exc:
            log.warning("spy_dial_failed", call_id=spy.call_id, error=str(exc))
            await self.ctx.hang_up(spy.channel_id)

    async def progress(self, spy: Spy, status: str) -> None:
        ctx = self.ctx
        if spy.answered or status != "ANSWER":
            if status in NO_ANSWER:
                await ctx.hang_up(spy.channel_id)
            return
        spy.answered = True
        caller = ctx.live.caller(spy.call_id)
        if caller is None or not caller.bridge_id:  # the call ended while the supervisor's phone rang
            await ctx.hang_up(spy.channel_id)
            return
        if spy.mode == "barge":
            await ctx.ari.bridges.add_channel(caller.bridge_id, spy.channel_id)
            await self._connected(spy)
            return
        bridge = await ctx.ari.bridges.create(type="mixing", name=f"{spy.mode} {spy.call_id}")
        spy.bridge_id = bridge.id
        await ctx.ari.bridges.add_channel(bridge.id, spy.channel_id)
        # The snoop joins the bridge once it has entered our app (its StasisStart, see ``snooping``):
        # a bridge refuses a channel that is not in Stasis yet.
        spy.snoop_id = f"hotline-snoop-{uuid.uuid4().hex}"
        ctx.live.snoops[spy.snoop_id] = spy
        await ctx.ari.channels.snoop(
            caller.agent_channel,
            spy="both",
            whisper=SPY_MODES[spy.mode],
            app_args=["snoop", spy.call_id],
            snoop_id=spy.snoop_id,
        )

    async def snooping(self, spy: Spy) -> None:
        if spy.channel_id not in self.ctx.live.spies or not spy.bridge_id:  # the supervisor hung up
            await self.ctx.hang_up(spy.snoop_id)
            return
        await self.ctx.ari.bridges.add_channel(spy.bridge_id, spy.snoop_id)
        await self._connected(spy)

    async def _connected(self, spy: Spy) -> None:
        await self.ctx.calls.record(spy.call_id, CallEventKind.spy_connected, mode=spy.mode, phone=spy.phone)
        log.info("spy_connected", call_id=spy.call_id, mode=spy.mode, phone=spy.phone)

    async def gone(self, spy: Spy) -> None:
        """The supervisor hung up (or the call ended): the snoop and its bridge go too."""
        ctx = self.ctx
        ctx.live.spies.pop(spy.channel_id, None)
        if spy.snoop_id:
            ctx.live.snoops.pop(spy.snoop_id, None)
            await ctx.hang_up(spy.snoop_id)
        if spy.bridge_id:
            await ctx.ari.bridges.destroy(spy.bridge_id, missing_ok=True)
        if spy.answered:
            await ctx.calls.record(spy.call_id, CallEventKind.spy_ended, mode=spy.mode, phone=spy.phone)

    async def end(self, call_id: str) -> None:
        """Hang up every supervisor leg on ``call_id`` (its StasisEnd tidies up, see ``gone``)."""
        for spy in self.ctx.live.spies_on(call_id):
            await self.ctx.hang_up(spy.channel_id)
