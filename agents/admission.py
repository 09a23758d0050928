"""Callers joining a queue and waiting in it: the holding bridge with music, the router's waiting
list, full queues and overflow, and putting a caller back in their place after a failed step."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from agents.context import QueueContext
from agents.live import Caller
from agents.service import WaitingCall
from ari import AriError, NotFound
from hotline.models import CallEventKind, CallOutcome

log = structlog.get_logger(__name__)

MAX_FAILURES = 3  # our own failed attempts to connect a caller before a person answers via the fallback


class Admission:
    def __init__(self, ctx: QueueContext) -> None:
        self.ctx = ctx

    async def admit(self, caller: Caller) -> bool:
        """Under the lock: a caller the IVR hands over. True for a new caller, now registered with
        the queue they will join (``hold`` and ``join`` follow); False when there is nothing more
        to do (a caller known already, handed over again)."""
        ctx = self.ctx
        known = ctx.live.caller(caller.call_id)
        if known is not None and known.callback_id and not known.channel_id:
            # A previous run stored their call back and died before letting them go.
            await ctx.call_backs.resume_confirmation(known, caller.channel_id)
            return False
        if known is not None:  # handed over again after the event socket came back
            if known.call_id not in ctx.router.waiting and not known.bridge_id and not known.outbound_channel:
                await self.put_back(known)  # stranded by a step that failed: back in their place
                await ctx.offering.offer()
            return False
        caller.since = caller.announced_at = ctx.clock.now()
        target = self.with_room(caller.queue, caller.urgent)
        if target != caller.queue:
            await ctx.calls.record(
                caller.call_id, CallEventKind.queue_full, queue=caller.queue, overflow=target
            )
            log.info("queue_full", call_id=caller.call_id, queue=caller.queue, overflow=target)
            caller.queue = target
        ctx.live.add(caller)
        return True

    async def hold(self, caller: Caller) -> Exception | None:
        """Outside the lock: the new caller into their queue's holding bridge, with music. Nothing
        else can act on them meanwhile (the router does not know them yet), and a burst of
        arrivals no longer keeps agents who answer waiting for the lock. Returns what failed."""
        try:
            await self.ctx.ari.bridges.add_channel(await self.holding_bridge(caller.queue), caller.channel_id)
        except NotFound as exc:  # the caller has gone: their StasisEnd is on its way
            return exc
        except AriError as exc:  # already there: a caller handed over again after a restart ...
            log.info("caller_already_waiting", call_id=caller.call_id, error=str(exc))
            caller.since = await self._first_queued(caller.call_id)  # ... who keeps their place
        except Exception as exc:
            return exc
        return None

    async def join(self, caller: Caller, held: Exception | None, only_agent: str | None = None) -> None:
        """Under the lock: the held caller joins the router's waiting calls and is offered."""
        ctx = self.ctx
        if ctx.live.caller(caller.call_id) is not caller:
            return  # hung up while being put on hold: already closed
        async with ctx.guard.step(
            "enqueue", caller.call_id, caller.channel_id, fallback=lambda: self.to_fallback(caller)
        ):
            if held is not None:
                raise held
            await self._waiting(caller, only_agent)
            await ctx.offering.offer()

    def with_room(self, queue: str, urgent: bool) -> str:
        """The queue a new caller joins: ``queue``, or where its overflow leads while queues are
        full (``max_length``). Urgent callers are never turned away from their queue."""
        seen = {queue}
        while not urgent:
            rules = self.ctx.config.queues[queue]
            waiting = sum(1 for c in self.ctx.router.waiting.values() if c.queue == queue)
            if rules.max_length is None or waiting < rules.max_length or rules.overflow in (None, *seen):
                break
            assert rules.overflow is not None
            queue = rules.overflow
            seen.add(queue)
        return queue

    async def wait_in(self, caller: Caller, queue: str, only_agent: str | None = None) -> None:
        """Put the caller in ``queue``'s holding bridge and in the router's waiting calls."""
        ctx = self.ctx
        caller.queue = queue
        caller.announced_at = ctx.clock.now()
        bridge = await self.holding_bridge(queue)
        await ctx.ari.bridges.add_channel(bridge, caller.channel_id)
        await self._waiting(caller, only_agent)

    async def _waiting(self, caller: Caller, only_agent: str | None = None) -> None:
        ctx = self.ctx
        self.wait_quietly(caller, only_agent)
        position = ctx.router.position(caller.call_id, ctx.clock.now())
        # A transfer's colleague, or the agent the caller asked for, is offered the call first.
        first: dict[str, Any] = {"agent": only_agent} if only_agent else {}
        await ctx.calls.record(
            caller.call_id,
            CallEventKind.queued,
            queue=caller.queue,
            position=position,
            urgent=caller.urgent,
            **first,
        )
        log.info(
            "call_queued", call_id=caller.call_id, queue=caller.queue, position=position, urgent=caller.urgent
        )
        ctx.queue_changed(caller.queue)

    def wait_quietly(self, caller: Caller, only_agent: str | None = None) -> None:
        """Put the caller in the router's waiting calls (no bridge, no record: see ``wait_in``)."""
        call = WaitingCall(caller.call_id, caller.queue, caller.language, caller.urgent, caller.since)
        if only_agent is not None:
            # A colleague (or the agent the caller asked for) gets the call alone while they free
            # up, for as long as an offer rings.
            call.only_agent = only_agent
            call.only_until = self.ctx.clock.now() + self.ctx.router.queues[caller.queue].ring_timeout
        self.ctx.router.enqueue(call)

    async def _first_queued(self, call_id: str) -> float:
        """When (on our monotonic clock) the caller first joined a queue, from the stored timeline."""
        events = await self.ctx.calls.events(call_id)
        first = next((e.at for e in events if e.kind == CallEventKind.queued), None)
        if first is None:
            return self.ctx.clock.now()
        return self.ctx.clock.now() - self.ctx.clock.since(first)

    async def holding_bridge(self, queue: str) -> str:
        bridge_id = self.ctx.live.holding.get(queue)
        if bridge_id is None:
            bridge_id = f"hotline-queue-{queue}"
            try:
                await self.ctx.ari.bridges.create(type="holding", bridge_id=bridge_id, name=f"queue {queue}")
            except AriError:  # left over from a previous run: reuse it
                pass
            await self.ctx.ari.bridges.moh_start(bridge_id, moh_class=self.ctx.config.queues[queue].moh_class)
            self.ctx.live.holding[queue] = bridge_id
        return bridge_id

    async def overflow(self) -> None:
        """Callers who waited ``max_wait`` move to their queue's overflow queue, keeping their wait."""
        ctx = self.ctx
        now = ctx.clock.now()
        for call in list(ctx.router.waiting.values()):
            rules = ctx.config.queues[call.queue]
            if rules.max_wait is None or rules.overflow is None or now - call.since < rules.max_wait:
                continue
            caller = ctx.live.caller(call.call_id)
            if caller is None or not ctx.router.move(call.call_id, rules.overflow):
                continue
            old, caller.queue = caller.queue, rules.overflow
            async with ctx.guard.step(
                "overflow", caller.call_id, caller.channel_id, recover=self.recovering(caller)
            ):
                if caller.channel_id:  # a caller waiting for a call back has no line to move
                    # Adding them to the other queue's bridge moves them out of this one.
                    await ctx.ari.bridges.add_channel(
                        await self.holding_bridge(caller.queue), caller.channel_id
                    )
                await ctx.calls.record(caller.call_id, CallEventKind.overflow, source=old, queue=caller.queue)
                log.info("call_overflowed", call_id=caller.call_id, source=old, queue=caller.queue)

    # -- after a failed step -------------------------------------------------------------------

    async def put_back(self, caller: Caller) -> None:
        """Undo whatever offer or connection was under way for ``caller`` and make them wait again
        in their queue's holding bridge, their place (first arrival) kept. Idempotent."""
        ctx = self.ctx
        now = ctx.clock.now()
        for leg in ctx.live.legs_of(caller.call_id):
            del ctx.live.agent_legs[leg.channel_id]  # its end is ours: no wrap-up, no miss
            ctx.router.release(leg.agent_id, caller.call_id, now)
            await ctx.hang_up(leg.channel_id)
        ctx.router.abandon(caller.call_id, now)  # releases agents still reserved for it
        if caller.bridge_id:
            await ctx.ari.bridges.destroy(caller.bridge_id, missing_ok=True)
        caller.bridge_id = caller.agent_id = caller.agent_channel = ""
        if caller.channel_id:
            caller.failures += 1
            if caller.failures >= MAX_FAILURES:
                raise RuntimeError(f"could not connect the caller after {caller.failures} tries")
            try:
                await ctx.ari.bridges.add_channel(await self.holding_bridge(caller.queue), caller.channel_id)
            except NotFound:  # the caller has gone; their StasisEnd is on its way
                raise
            except AriError as exc:  # still in the holding bridge: the failed step never moved them
                log.info("caller_already_waiting", call_id=caller.call_id, error=str(exc))
            self.wait_quietly(caller)
        ctx.queue_changed(caller.queue)
        await ctx.presence.save()

    async def recover(self, caller: Caller) -> None:
        """The guard's ``recover`` for queue steps: back in place, then offered again."""
        await self.put_back(caller)
        await self.ctx.offering.offer()

    def recovering(self, caller: Caller) -> Callable[[], Awaitable[None]]:
        return lambda: self.recover(caller)

    async def to_fallback(self, caller: Caller) -> None:
        """Forget the caller and hand them to the dialplan fallback (it rings every agent phone)."""
        ctx = self.ctx
        for agent_id in ctx.router.abandon(caller.call_id, ctx.clock.now()):
            for leg in ctx.live.legs_of(caller.call_id, agent_id):
                ctx.live.agent_legs.pop(leg.channel_id, None)
                await ctx.hang_up(leg.channel_id)
        ctx.live.forget(caller)
        if caller.channel_id:
            await ctx.calls.record(caller.call_id, CallEventKind.handed_to_fallback)
            await ctx.guard.fallback(caller.channel_id)
            await ctx.calls.close(caller.call_id, CallOutcome.fallback)
        ctx.queue_changed(caller.queue)
        await ctx.presence.save()
