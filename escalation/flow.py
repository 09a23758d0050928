"""Escalation at run time: signals open incidents, timers move them up their policy, and the
outbox sends their pages.

* A signal for a call with an open incident is added to it; otherwise it opens one, whose first
  level is paged at once (the dispatcher is woken, not polled).
* The timer sleeps until the earliest ``next_at`` of any open incident (or until woken) and does
  what fell due; every time it waits on is in the store, so a restart carries on from there.
* The dispatcher sends due pages side by side, each try counted in the store before it starts;
  a sender's exception counts as a failed try to repeat, never as a lost page.
* Changes to one incident are made one at a time (a lock per incident), so a desk's key, a timer
  and a new signal never move it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog

from escalation import document
from escalation import store as incidents
from escalation.channels import ChannelKind, Delivery, PageMessage, Sender
from escalation.config import EscalationConfig
from escalation.errors import NotFound
from escalation.models import EventKind, Incident, Page
from escalation.service import PageLevel, Policy
from escalation.store import Signal
from hotline.clock import SYSTEM, Clock
from hotline.db import Store

log = structlog.get_logger(__name__)

MAX_WAIT = 30.0  # seconds the loops sleep at most without being woken (a safety net only)

Publish = Callable[[dict[str, Any]], None]  # a notice for the supervisors' streams


class Escalations:
    def __init__(
        self,
        store: Store,
        config: EscalationConfig,
        senders: Mapping[ChannelKind, Sender],
        *,
        address: Callable[[str, ChannelKind], str],
        links: Callable[[Page], dict[str, str]],
        province: Callable[[str], str | None] = lambda _number: None,
        publish: Publish = lambda _notice: None,
        clock: Clock = SYSTEM,
    ) -> None:
        self._store, self._config, self._senders = store, config, senders
        self._address, self._links, self._province = address, links, province
        self._publish, self._clock = publish, clock
        self._policies = config.policy_list()
        self._by_id = {p.id: p for p in self._policies}
        # One lock per incident (or call) while someone holds or waits for it: dropped after.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._timer_wake, self._outbox_wake = asyncio.Event(), asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._claiming: set[str] = set()  # page ids a task is claiming now

    async def start(self) -> None:
        resumed = await incidents.interrupted(self._store, self._clock.utcnow())
        if resumed:
            log.warning("pages_resumed", pages=len(resumed))
        self._tasks = [asyncio.create_task(self._timer()), asyncio.create_task(self._outbox())]

    async def close(self) -> None:
        for task in [*self._tasks, *self._sending]:
            task.cancel()
        for task in [*self._tasks, *self._sending]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks, self._sending = [], set()

    # -- what changes an incident ------------------------------------------------------------------

    async def signal(self, signal: Signal) -> Incident:
        """Open an incident for the signal (or add it to the call's open one); paged at once."""
        key = f"call:{signal.call_id}" if signal.call_id else f"signal:{id(signal)}"
        async with self._lock(key):
            province = self._province(signal.caller_number) if signal.caller_number else None
            incident, created = await incidents.open_or_add(
                self._store, signal, self._policies, province, self._clock.utcnow()
            )
        log.warning("incident_signal", incident_id=incident.id, signal=signal.kind, new=created)
        if created:
            await self.advance(incident.id)
        self._notice("incident", incident, signal=signal.kind)
        return incident

    async def advance(self, incident_id: str) -> None:
        async with self._lock(incident_id):
            incident = await incidents.get_incident(self._store, incident_id)
            pages = await incidents.advance(
                self._store, incident_id, self._policy(incident.policy), self._reach, self._clock.utcnow()
            )
        self._woken(pages)

    async def page_outcome(self, page_id: str, outcome: str, by: str = "") -> None:
        """What a target did with a page: accept | pass | answered | no_key | hung_up."""
        now = self._clock.utcnow()
        page = await self._page(page_id)
        who = by or page.target
        async with self._lock(page.incident_id):
            incident = await incidents.get_incident(self._store, page.incident_id)
            policy = self._policy(incident.policy)
            if outcome == "accept":
                acked = await incidents.acknowledge_page(self._store, page_id, who, now, policy)
                if acked is not None:
                    self._notice("acknowledged", acked, by=who)
            elif outcome == "pass":
                self._woken(await incidents.pass_page(self._store, page_id, who, now, policy, self._reach))
            else:
                kind = EventKind.answered if outcome == "answered" else EventKind.note
                await incidents.record(
                    self._store, page.incident_id, kind, now, who, page=page_id, outcome=outcome
                )
        self._timer_wake.set()

    async def acknowledge_token(self, token: str, by: str = "") -> Incident | None:
        """An acknowledgement link or code was used; the incident, or None for an unknown token."""
        page = await incidents.page_by_token(self._store, token)
        if page is None:
            return None
        await self.page_outcome(page.id, "accept", by or f"{page.target}/{page.channel}")
        return await incidents.get_incident(self._store, page.incident_id)

    async def resolve(self, incident_id: str, by: str, note: str = "") -> Incident:
        async with self._lock(incident_id):
            incident = await incidents.resolve_incident(
                self._store, incident_id, by, self._clock.utcnow(), note
            )
        self._notice("resolved", incident, by=by)
        self._timer_wake.set()
        return incident

    # -- the loops -------------------------------------------------------------------------------

    async def _timer(self) -> None:
        while True:
            try:
                for incident_id, _ in await incidents.due_incidents(self._store, self._clock.utcnow()):
                    await self.advance(incident_id)
                wait = self._until(await incidents.next_due(self._store))
            except Exception:  # one bad pass must not stop escalation for good
                log.exception("escalation_timer_failed")
                wait = 1.0
            await self._sleep(self._timer_wake, wait)

    async def _outbox(self) -> None:
        while True:
            try:
                for page_id in await incidents.due_pages(self._store, self._clock.utcnow()):
                    if page_id not in self._claiming:  # each page claimed by one task at a time
                        self._claiming.add(page_id)
                        task = asyncio.create_task(self._deliver(page_id))
                        self._sending.add(task)
                        task.add_done_callback(self._sending.discard)
                wait = self._until(await incidents.next_page_at(self._store))
                if wait == 0 and self._claiming:
                    wait = MAX_WAIT  # what is due is being claimed; each claim wakes us when done
            except Exception:
                log.exception("escalation_outbox_failed")
                wait = 1.0
            await self._sleep(self._outbox_wake, wait)

    async def _deliver(self, page_id: str) -> None:
        """Claim one page and send it. Pages are claimed side by side, so a slow claim or send
        never holds up another team's page."""
        try:
            claimed = await incidents.claim(self._store, page_id, self._clock.utcnow())
        finally:
            self._claiming.discard(page_id)
            self._outbox_wake.set()
        if claimed is not None:
            await self._send(*claimed)

    async def _send(self, page: Page, incident: Incident) -> None:
        channel = ChannelKind(page.channel)
        target = self._config.targets[page.target]
        links = self._links(page)
        message = PageMessage(
            page_id=page.id,
            key=page.key,
            attempt=page.tries,
            incident=document.document(incident, page, links),
            text=document.text(
                incident, target.language, self._config.voice.accept_digit, self._config.voice.pass_digit
            ),
            language=target.language,
            address=self._address(page.target, channel),
            ack_url=links.get("ack", ""),
            ack_code=page.code,
        )
        try:
            delivery = await self._senders[channel].send(message)
        except Exception as exc:  # a sender's own bug: a failed try, tried again
            log.exception("page_send_failed", page_id=page.id, channel=channel.value)
            delivery = Delivery(False, retry=True, detail=f"error: {exc.__class__.__name__}")
        finished = await incidents.finish(self._store, page.id, delivery, self._clock.utcnow())
        log.info(
            "page_tried", page_id=page.id, target=page.target, channel=channel.value, state=finished.state
        )
        self._notice(
            "page",
            incident,
            page=page.id,
            target=page.target,
            channel=page.channel,
            state=str(finished.state),
        )
        self._outbox_wake.set()

    # -- plumbing --------------------------------------------------------------------------------

    def _reach(self, incident: Incident, action: PageLevel) -> list[tuple[str, ChannelKind]]:
        level = self._policy(incident.policy).levels[action.level]
        return [
            (target, channel)
            for target in level.targets_for(incident.province)
            for channel in self._config.channels_of(level, target)
            if channel in self._senders
        ]

    def _policy(self, policy_id: str) -> Policy:
        # A policy renamed since the incident opened: the catch-all carries it on.
        return self._by_id.get(policy_id, self._policies[-1])

    async def _page(self, page_id: str) -> Page:
        for page in await incidents.pages_by_id(self._store, [page_id]):
            return page
        raise NotFound(f"no page {page_id}")

    def _woken(self, pages: list[Page]) -> None:
        if pages:
            self._outbox_wake.set()
        self._timer_wake.set()

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def _until(self, when: datetime | None) -> float:
        if when is None:
            return MAX_WAIT
        return min(MAX_WAIT, max(0.0, (when - self._clock.utcnow()).total_seconds()))

    async def _sleep(self, wake: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await wake.wait()
        wake.clear()

    def _notice(self, kind: str, incident: Incident, **data: Any) -> None:
        self._publish(
            {
                "type": "incident",
                "event": kind,
                "incident_id": incident.id,
                "call_id": incident.call_id,
                "category": incident.category,
                "severity": str(incident.severity),
                "status": str(incident.status),
                "silent": incident.silent,
                **data,
            }
        )
