"""What waiting callers hear besides music: every ``announce_period`` their place and the
estimated wait, in their language, and (where a queue allows) the offer of a call back."""

from __future__ import annotations

import uuid

import structlog

from agents.context import QueueContext
from agents.live import Caller
from ari import NotFound
from hotline.models import CallEventKind

log = structlog.get_logger(__name__)


class Announcements:
    def __init__(self, ctx: QueueContext) -> None:
        self.ctx = ctx

    async def announce(self) -> None:
        """Tell callers who have waited another ``announce_period`` their place and likely wait."""
        ctx = self.ctx
        now = ctx.clock.now()
        spoken = ctx.config.announcements
        for caller in list(ctx.live.callers.values()):
            if caller.playback_id or not caller.channel_id or caller.callback_id:
                continue
            if caller.call_id not in ctx.router.waiting:
                continue
            rules = ctx.config.queues[caller.queue]
            periodic = (
                rules.announce_period is not None and now - caller.announced_at >= rules.announce_period
            )
            offer = (
                rules.callback
                and ctx.config.may_call_back(caller.caller_number)
                and now - caller.since >= rules.callback_after
            )
            if not periodic and not (offer and not caller.callback_offered):
                continue
            caller.announced_at = now
            position = ctx.router.position(caller.call_id, now)
            names = spoken.say(position, ctx.holdtime.get(caller.queue)) if periodic else []
            if offer:
                names.append("callback_offer")
            media = [uri for name in names if (uri := self.sound(name, caller.language))]
            if not media or len(media) < len(names):  # prompts not built: say nothing rather than half
                continue
            caller.callback_offered = caller.callback_offered or offer
            await self.play(caller, names, media)

    async def play(self, caller: Caller, names: list[str], media: list[str]) -> str:
        """Play ``media`` to a waiting caller; returns the playback id ("" if the caller is gone)."""
        ctx = self.ctx
        playback_id = f"hotline-announce-{uuid.uuid4().hex}"
        caller.playback_id = playback_id
        ctx.live.announcing[playback_id] = (caller.call_id, names)
        try:
            await ctx.ari.channels.play(caller.channel_id, media, playback_id=playback_id)
        except NotFound:  # the caller is gone; their StasisEnd is on its way
            ctx.live.announcing.pop(playback_id, None)
            caller.playback_id = ""
            return ""
        return playback_id

    def sound(self, name: str, language: str) -> str | None:
        found = self.ctx.sounds.get((name, language))
        if found is None:  # no text in the caller's language: the hotline's first language
            found = next((uri for (n, _), uri in self.ctx.sounds.items() if n == name), None)
        return found

    async def finished(self, playback_id: str) -> None:
        ctx = self.ctx
        call_id, names = ctx.live.announcing.pop(playback_id)
        caller = ctx.live.caller(call_id)
        if caller is not None and caller.playback_id == playback_id:
            caller.playback_id = ""
        await ctx.calls.record(call_id, CallEventKind.announced, prompts=names)
        if caller is not None and caller.hang_up_after == playback_id:  # the call back is confirmed
            caller.hang_up_after = ""
            await ctx.hang_up(caller.channel_id)
