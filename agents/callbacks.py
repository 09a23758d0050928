"""Call backs: a caller who waited ``callback_after`` seconds may press 1, hang up and keep their
place. When their turn comes, the agent who takes it hears ringing while the caller's number is
dialled (``callback_dial``); the answered leg becomes a new call linked to the first. A number that
does not answer is tried again ``callback_attempts`` times. The request is stored (``callback``
table), so it survives restarts."""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog
from sqlmodel import col, select

from agents.context import NO_ANSWER, QueueContext
from agents.live import Caller, Ringing
from agents.models import Callback
from ari import AriError
from hotline.models import CallEventKind, CallOutcome

log = structlog.get_logger(__name__)


class CallBacks:
    def __init__(self, ctx: QueueContext) -> None:
        self.ctx = ctx

    async def key(self, caller: Caller, digit: str) -> None:
        """A waiting caller pressed a key: "1" after the offer asks for a call back."""
        ctx = self.ctx
        call = ctx.router.waiting.get(caller.call_id)
        if digit != "1" or not caller.callback_offered or caller.callback_id or call is None:
            return
        if not ctx.config.may_call_back(caller.caller_number):  # never offered; checked again
            await ctx.calls.record(
                caller.call_id, CallEventKind.callback_refused, number=caller.caller_number
            )
            return
        if call.offered_to:  # an agent's phone is ringing for them already: they are next
            return
        waited = ctx.clock.now() - caller.since
        row = Callback(
            call_id=caller.call_id,
            number=caller.caller_number,
            queue=caller.queue,
            language=caller.language,
            urgent=caller.urgent,
            waiting_since=ctx.clock.utcnow() - timedelta(seconds=waited),
        )
        async with ctx.store.session() as session:
            session.add(row)
            await session.commit()
        caller.callback_id = row.id
        await ctx.calls.record(
            caller.call_id, CallEventKind.callback_requested, queue=caller.queue, callback=row.id
        )
        log.info("callback_requested", call_id=caller.call_id, queue=caller.queue)
        if caller.playback_id:
            await ctx.ari.playbacks.stop(caller.playback_id, missing_ok=True)
        await self._confirm(caller)

    async def schedule(self, call_id: str, number: str, queue: str, language: str, reason: str) -> str | None:
        """A call back nobody asked for (duty of care: an urgent caller cut off before an agent
        answered). From now on they wait in ``queue`` without a line, urgent; the next free agent
        hears ringing while their number is dialled. The call back's id, or None when the number
        may not be dialled, the queue is unknown, or one is under way for that call already."""
        ctx = self.ctx
        if ctx.live.caller(call_id) is not None or queue not in ctx.config.queues:
            return None
        if not number or not ctx.config.may_call_back(number):
            await ctx.calls.record(call_id, CallEventKind.callback_refused, number=number, reason=reason)
            return None
        now = ctx.clock.utcnow()
        row = Callback(
            call_id=call_id, number=number, queue=queue, language=language, urgent=True, waiting_since=now
        )
        async with ctx.store.session() as session:
            session.add(row)
            await session.commit()
        caller = Caller(
            call_id,
            "",
            queue,
            caller_number=number,
            language=language,
            urgent=True,
            since=ctx.clock.now(),
            callback_offered=True,
            callback_id=row.id,
        )
        ctx.live.add(caller)
        ctx.admission.wait_quietly(caller)
        await ctx.calls.record(
            call_id, CallEventKind.callback_requested, queue=queue, callback=row.id, reason=reason
        )
        log.warning("callback_scheduled", call_id=call_id, queue=queue, reason=reason)
        await ctx.offering.offer()
        return row.id

    async def _confirm(self, caller: Caller) -> None:
        """Confirm, then let the caller go; their place stays in the queue."""
        ctx = self.ctx
        media = ctx.announcements.sound("callback_confirm", caller.language)
        if media is None:
            await ctx.hang_up(caller.channel_id)
            return
        caller.hang_up_after = await ctx.announcements.play(caller, ["callback_confirm"], [media])

    async def resume_confirmation(self, caller: Caller, channel_id: str) -> None:
        """A previous run stored this caller's call back and died before letting them go: the line
        is handed over again. Finish what it was doing: confirm and hang up (they keep their place)."""
        ctx = self.ctx
        ctx.live.set_line(caller, channel_id)
        await ctx.calls.record(caller.call_id, CallEventKind.callback_resumed, queue=caller.queue)
        await self._confirm(caller)

    async def await_call_back(self, caller: Caller) -> None:
        """The caller who asked for a call back has hung up: they wait in the queue without a line."""
        ctx = self.ctx
        ctx.live.set_line(caller, "")
        caller.playback_id = caller.hang_up_after = ""
        await ctx.calls.record(caller.call_id, CallEventKind.callback_waiting, queue=caller.queue)
        await ctx.calls.close(caller.call_id, CallOutcome.callback)

    async def load(self) -> None:
        """Call backs a previous run had not finished wait again, in their place."""
        ctx = self.ctx
        async with ctx.store.session() as session:
            rows = (
                await session.exec(select(Callback).where(col(Callback.status).in_(["waiting", "dialling"])))
            ).all()
        for row in rows:
            if row.queue not in ctx.config.queues:
                continue
            caller = Caller(
                row.call_id,
                "",
                row.queue,
                caller_number=row.number,
                language=row.language,
                urgent=row.urgent,
                since=ctx.clock.now() - ctx.clock.since(row.waiting_since),
                callback_offered=True,
                callback_id=row.id,
            )
            ctx.live.add(caller)
            ctx.admission.wait_quietly(caller)
            if row.status == "dialling":  # the run that was dialling died: try again
                await self.update(row.id, status="waiting")

    async def update(self, callback_id: str, **values: object) -> Callback | None:
        async with self.ctx.store.session() as session:
            row = await session.get(Callback, callback_id)
            if row is None:
                return None
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = self.ctx.clock.utcnow()
            session.add(row)
            await session.commit()
            await session.refresh(row)
            return row

    async def ring_back(self, caller: Caller, leg: Ringing) -> None:
        """An agent took a call back: they hear ringing while the caller's number is dialled."""
        ctx = self.ctx
        caller.agent_id, caller.agent_channel = leg.agent_id, leg.channel_id
        caller.outbound_channel = f"hotline-callback-{uuid.uuid4().hex}"
        ctx.live.call_backs[caller.outbound_channel] = caller
        row = await self.update(caller.callback_id, status="dialling")
        attempt = (row.attempts if row else 0) + 1
        await self.update(caller.callback_id, attempts=attempt)
        await ctx.calls.record(
            caller.call_id, CallEventKind.callback_dialling, agent=leg.agent_id, attempt=attempt
        )
        try:
            await ctx.ari.channels.play(
                leg.channel_id, "tone:ring", playback_id=f"{caller.outbound_channel}-tone"
            )
        except AriError as exc:  # the agent hears silence rather than ringing: not worth failing for
            log.info("ring_tone_failed", call_id=caller.call_id, error=str(exc))
        try:
            await ctx.ari.channels.create(
                ctx.config.callback_dial.format(number=caller.caller_number),
                channel_id=caller.outbound_channel,
                app_args=["callback", caller.call_id],
            )
        except AriError as exc:
            log.warning("callback_unreachable", call_id=caller.call_id, error=str(exc))
            await self.failed(caller, "unreachable")

    async def dial(self, caller: Caller, channel_id: str) -> None:
        try:
            await self.ctx.ari.channels.dial(channel_id, timeout=30)
        except AriError as exc:
            log.warning("callback_dial_failed", call_id=caller.call_id, error=str(exc))
            await self.ctx.hang_up(channel_id)
            await self.failed(caller, "CHANUNAVAIL")

    async def progress(self, caller: Caller, channel_id: str, status: str) -> None:
        if status == "ANSWER" and not caller.bridge_id:
            await self.connected(caller)
        elif status == "HANGUP" and caller.bridge_id:  # the caller hung up after talking
            await self.ctx.connecting.caller_left(caller)
        elif (status in NO_ANSWER or status == "HANGUP") and not caller.bridge_id:
            await self.ctx.hang_up(channel_id)
            await self.failed(caller, status)

    async def connected(self, caller: Caller) -> None:
        """The caller answered: from here on it is an ordinary conversation, of a new call."""
        ctx = self.ctx
        origin, line = caller.call_id, caller.outbound_channel
        call, _ = await ctx.calls.open(
            line,
            caller_number=caller.caller_number,
            extension="callback",
            language=caller.language,
            queue=caller.queue,
            category=ctx.config.category(caller.queue),
            urgent=caller.urgent,
        )
        await ctx.calls.answered(call.id)
        await ctx.calls.record(call.id, CallEventKind.callback_of, origin=origin, agent=caller.agent_id)
        await ctx.calls.record(
            origin, CallEventKind.callback_connected, outbound_call_id=call.id, agent=caller.agent_id
        )
        await self.update(caller.callback_id, status="connected", outbound_call_id=call.id)
        # The caller is now the new call on the new line; the agent's leg and presence follow it.
        ctx.live.forget(caller)
        ctx.live.call_backs.pop(line, None)
        caller.call_id, caller.channel_id = call.id, ""
        ctx.live.add(caller)
        ctx.live.set_line(caller, line)
        ctx.live.agent_legs[caller.agent_channel].call_id = call.id
        ctx.router.agents[caller.agent_id].call_id = call.id
        await ctx.ari.playbacks.stop(f"{line}-tone", missing_ok=True)  # the agent's ring tone
        leg = ctx.live.agent_legs[caller.agent_channel]
        await ctx.connecting.connect(caller, leg)
        log.info("callback_connected", call_id=call.id, origin=origin, agent_id=caller.agent_id)

    async def failed(self, caller: Caller, reason: str) -> None:
        """This attempt did not reach the caller: try again later, or give up after the last one."""
        ctx = self.ctx
        agent_channel = caller.agent_channel
        ctx.live.call_backs.pop(caller.outbound_channel, None)
        caller.agent_id = caller.agent_channel = caller.outbound_channel = ""
        row = await self.update(caller.callback_id, status="waiting")
        rules = ctx.config.queues[caller.queue]
        attempts = row.attempts if row else rules.callback_attempts
        await ctx.calls.record(
            caller.call_id, CallEventKind.callback_attempt_failed, reason=reason, attempt=attempts
        )
        if attempts >= rules.callback_attempts:
            await self.update(caller.callback_id, status="failed")
            await ctx.calls.record(caller.call_id, CallEventKind.callback_failed, attempts=attempts)
            ctx.live.forget(caller)
            log.warning("callback_failed", call_id=caller.call_id, attempts=attempts)
        else:
            ctx.timers.start(self._retry(caller, rules.callback_retry))
        if agent_channel:  # the agent's leg ends; its StasisEnd starts their wrap-up
            await ctx.hang_up(agent_channel)

    async def _retry(self, caller: Caller, delay: float) -> None:
        ctx = self.ctx
        await ctx.clock.sleep(delay)
        async with ctx.lock:
            if ctx.live.caller(caller.call_id) is caller and not caller.channel_id:
                ctx.admission.wait_quietly(caller)
                await ctx.offering.offer()
