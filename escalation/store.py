"""Incidents and pages in the database. Each function is one transaction.

The escalation state (``escalation.service.Escalation``) lives on the incident row; every change
to it is written with the timeline entries and the pages it causes, together or not at all
(``escalation.flow`` makes the changes of one incident one at a time).

Pages follow the outbox rule: written ``pending`` in the transaction that decided them; a try is
counted (``sending``) and committed before it starts, and its outcome is written after it. A
page of an incident no longer triggered (acknowledged or resolved) is cancelled rather than tried.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from escalation.channels import ChannelKind, Delivery
from escalation.errors import NotFound
from escalation.models import EventKind, Incident, IncidentEvent, Page, PageState, Severity, Status
from escalation.service import (
    Action,
    Escalated,
    Escalation,
    PageLevel,
    Policy,
    acknowledge,
    choose_policy,
    open_escalation,
    pass_on,
    resolve,
    step,
)
from hotline.db import Store

MAX_TRIES = 5  # tries of one page before it is given up (the level's ack timeout moves on anyway)
BACKOFF = (5.0, 10.0, 20.0, 40.0)  # seconds before the 2nd, 3rd, … try


@dataclass(frozen=True, slots=True)
class Signal:
    """Something that says a call is urgent, with its evidence."""

    kind: str  # ivr_key | silent_sos | keyword | button | repeat_calls | abandoned_urgent
    category: str
    severity: Severity
    call_id: str | None = None
    caller_number: str = ""
    silent: bool = False  # the caller cannot speak
    summary: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    by: str = "system"


# The (target, channel) pairs a level's paging round reaches, for an incident (config knows).
Reach = Callable[[Incident, PageLevel], list[tuple[str, ChannelKind]]]


def state_of(incident: Incident) -> Escalation:
    return Escalation(
        Status(incident.status),  # read back as a plain string
        level=incident.level,
        loop=incident.loop,
        round=incident.round,
        level_since=incident.level_since,
        paged_at=incident.paged_at,
        acked_at=incident.acked_at,
        exhausted=incident.exhausted,
    )


async def open_or_add(
    store: Store, signal: Signal, policies: tuple[Policy, ...], province: str | None, now: datetime
) -> tuple[Incident, bool]:
    """The call's open incident with the signal added (its severity raised if this one is graver),
    or a new incident; True when new."""
    async with store.session() as session:
        found = await _open_for_call(session, signal.call_id) if signal.call_id else None
        if found is not None:
            found.silent = found.silent or signal.silent
            found.summary = found.summary or signal.summary
            if signal.severity.rank > Severity(found.severity).rank:
                found.severity = signal.severity
            found.version += 1
            session.add(found)
            session.add(_event(found.id, now, EventKind.signal, signal.by, _signal_data(signal)))
            await session.commit()
            await session.refresh(found)
            return found, False
        policy = choose_policy(policies, signal.category, signal.severity)
        state = open_escalation(now)
        incident = Incident(
            call_id=signal.call_id,
            caller_number=signal.caller_number,
            province=province,
            category=signal.category,
            severity=signal.severity,
            silent=signal.silent,
            summary=signal.summary,
            policy=policy.id,
            level_since=state.level_since,
            next_at=now,
            opened_at=now,
        )
        session.add(incident)
        await session.flush()
        session.add(_event(incident.id, now, EventKind.opened, signal.by, {"policy": policy.id}))
        session.add(_event(incident.id, now, EventKind.signal, signal.by, _signal_data(signal)))
        await session.commit()
        await session.refresh(incident)
        return incident, True


async def advance(store: Store, incident_id: str, policy: Policy, reach: Reach, now: datetime) -> list[Page]:
    """Do what fell due by ``now``; the new pages to send."""
    async with store.session() as session:
        incident = await _get(session, incident_id)
        state, actions, next_at = step(policy, state_of(incident), now)
        pages = _apply(session, incident, state, actions, next_at, reach, now)
        await session.commit()
        return pages


async def acknowledge_page(
    store: Store, page_id: str, by: str, now: datetime, policy: Policy
) -> Incident | None:
    """A page's target has it: the incident is acknowledged (None: it was not triggered)."""
    async with store.session() as session:
        page = await session.get(Page, page_id)
        if page is None:
            raise NotFound(f"no page {page_id}")
        incident = await _get(session, page.incident_id)
        if incident.status != Status.triggered:
            return None
        page.state, page.done_at = PageState.acknowledged, now
        session.add(page)
        who = {"target": page.target, "channel": page.channel, "page": page.id}
        incident.acked_by = by
        state = acknowledge(state_of(incident), now)
        _, _, next_at = step(policy, state, now)
        _apply(session, incident, state, [], next_at, lambda *_: [], now)
        session.add(_event(incident.id, now, EventKind.acknowledged, by, who))
        await _cancel_pending(session, incident.id, now, keep=page.id)
        await session.commit()
        return incident


async def page_by_token(store: Store, token: str) -> Page | None:
    async with store.session() as session:
        return (await session.exec(select(Page).where(Page.token == token))).first()


async def pass_page(
    store: Store, page_id: str, by: str, now: datetime, policy: Policy, reach: Reach
) -> list[Page]:
    """A page's target passes the incident on: the next level now; its pages."""
    async with store.session() as session:
        page = await session.get(Page, page_id)
        if page is None:
            raise NotFound(f"no page {page_id}")
        incident = await _get(session, page.incident_id)
        # Already moved on (paged_at is None while the next level waits its delay): a second
        # "pass" for the same round changes nothing.
        if incident.status != Status.triggered or page.round != incident.round or incident.paged_at is None:
            return []
        page.state, page.done_at = PageState.passed, now
        session.add(page)
        session.add(_event(incident.id, now, EventKind.passed, by, {"target": page.target, "page": page.id}))
        state, moved = pass_on(policy, state_of(incident), now)
        state, actions, next_at = step(policy, state, now)
        pages = _apply(session, incident, state, [*moved, *actions], next_at, reach, now)
        await session.commit()
        return pages


async def resolve_incident(
    store: Store, incident_id: str, by: str, now: datetime, note: str = ""
) -> Incident:
    async with store.session() as session:
        incident = await _get(session, incident_id)
        if incident.status == Status.resolved:
            return incident
        incident.resolved_at, incident.resolved_by = now, by
        _apply(session, incident, resolve(state_of(incident)), [], None, lambda *_: [], now)
        session.add(_event(incident.id, now, EventKind.resolved, by, {"note": note} if note else {}))
        await _cancel_pending(session, incident.id, now)
        await session.commit()
        return incident


async def due_incidents(store: Store, now: datetime) -> list[tuple[str, str]]:
    """(id, policy) of every unresolved incident with something due by ``now``."""
    async with store.session() as session:
        rows = await session.exec(
            select(Incident.id, Incident.policy).where(
                col(Incident.next_at) <= now, Incident.status != Status.resolved
            )
        )
        return list(rows.all())


async def next_due(store: Store) -> datetime | None:
    async with store.session() as session:
        query = select(Incident.next_at).where(
            col(Incident.next_at).is_not(None), Incident.status != Status.resolved
        )
        return (await session.exec(query.order_by(col(Incident.next_at)).limit(1))).first()


async def due_pages(store: Store, now: datetime, limit: int = 100) -> list[str]:
    async with store.session() as session:
        rows = await session.exec(
            select(Page.id)
            .where(Page.state == PageState.pending, col(Page.next_try_at) <= now)
            .order_by(col(Page.next_try_at))
            .limit(limit)
        )
        return list(rows.all())


async def next_page_at(store: Store) -> datetime | None:
    async with store.session() as session:
        query = select(Page.next_try_at).where(Page.state == PageState.pending)
        return (await session.exec(query.order_by(col(Page.next_try_at)).limit(1))).first()


async def claim(store: Store, page_id: str, now: datetime) -> tuple[Page, Incident] | None:
    """Count a try of a pending page and commit it before the try starts; None when the page is
    no longer wanted (cancelled here: the incident was acknowledged or resolved) or taken already.
    A page of an earlier level that has not reached its target yet is still tried: the incident
    moving on is no reason to give up telling the team that was paged first."""
    async with store.session() as session:
        page = await session.get(Page, page_id)
        if page is None or page.state != PageState.pending:
            return None
        incident = await _get(session, page.incident_id)
        if incident.status != Status.triggered:
            page.state, page.done_at = PageState.cancelled, now
            session.add(page)
            await session.commit()
            return None
        page.state, page.tries = PageState.sending, page.tries + 1
        session.add(page)
        await session.commit()
        await session.refresh(page)
        await session.refresh(incident)
        return page, incident


async def finish(store: Store, page_id: str, delivery: Delivery, now: datetime) -> Page:
    """Write how a try went: sent, another try later, or given up."""
    async with store.session() as session:
        page = await session.get(Page, page_id)
        if page is None:
            raise NotFound(f"no page {page_id}")
        data = {"target": page.target, "channel": page.channel, "try": page.tries, "detail": delivery.detail}
        page.detail = delivery.detail[:512]
        if page.state != PageState.sending:
            pass  # settled meanwhile (acknowledged during the call, or cancelled): keep that
        elif delivery.ok:
            page.state, page.sent_at = PageState.sent, now
            session.add(_event(page.incident_id, now, EventKind.sent, "system", data))
        elif delivery.retry and page.tries < MAX_TRIES:
            page.state = PageState.pending
            page.next_try_at = now + timedelta(seconds=BACKOFF[min(page.tries, len(BACKOFF)) - 1])
            session.add(_event(page.incident_id, now, EventKind.failed, "system", {**data, "retry": True}))
        else:
            page.state, page.done_at = PageState.failed, now
            session.add(_event(page.incident_id, now, EventKind.failed, "system", {**data, "retry": False}))
        session.add(page)
        await session.commit()
        await session.refresh(page)
        return page


async def interrupted(store: Store, now: datetime) -> list[Page]:
    """Pages a previous run was trying when it stopped: pending again, with the same key (a
    receiver that got the try dedups it)."""
    async with store.session() as session:
        pages = list((await session.exec(select(Page).where(Page.state == PageState.sending))).all())
        for page in pages:
            page.state, page.next_try_at = PageState.pending, now
            session.add(page)
            session.add(
                _event(page.incident_id, now, EventKind.note, "system", {"page": page.id, "resumed": True})
            )
        await session.commit()
        return pages


async def record(
    store: Store, incident_id: str, kind: EventKind, now: datetime, by: str = "system", **data: Any
) -> None:
    async with store.session() as session:
        session.add(_event(incident_id, now, kind, by, data))
        await session.commit()


async def get_incident(store: Store, incident_id: str) -> Incident:
    async with store.session() as session:
        return await _get(session, incident_id)


async def timeline(store: Store, incident_id: str) -> list[IncidentEvent]:
    async with store.session() as session:
        query = select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
        return list((await session.exec(query.order_by(col(IncidentEvent.id)))).all())


async def pages_of(store: Store, incident_id: str) -> list[Page]:
    async with store.session() as session:
        query = (
            select(Page).where(Page.incident_id == incident_id).order_by(col(Page.created_at), col(Page.key))
        )
        return list((await session.exec(query)).all())


async def pages_by_id(store: Store, page_ids: Sequence[str]) -> list[Page]:
    async with store.session() as session:
        return list((await session.exec(select(Page).where(col(Page.id).in_(page_ids)))).all())


async def open_incidents(store: Store) -> list[Incident]:
    async with store.session() as session:
        query = select(Incident).where(Incident.status != Status.resolved).order_by(col(Incident.opened_at))
        return list((await session.exec(query)).all())


# -- inside a transaction ---------------------------------------------------------------------


def _apply(
    session: AsyncSession,
    incident: Incident,
    state: Escalation,
    actions: Sequence[Action],
    next_at: datetime | None,
    reach: Reach,
    now: datetime,
) -> list[Page]:
    incident.status, incident.level, incident.loop = state.status, state.level, state.loop
    incident.round, incident.level_since, incident.paged_at = state.round, state.level_since, state.paged_at
    incident.acked_at, incident.exhausted, incident.next_at = state.acked_at, state.exhausted, next_at
    incident.version += 1
    session.add(incident)
    pages: list[Page] = []
    for action in actions:
        if isinstance(action, Escalated):
            data = {
                "from": action.from_level,
                "to": action.to_level,
                "loop": action.loop,
                "reason": action.reason,
            }
            session.add(_event(incident.id, now, EventKind.escalated, "system", data))
            continue
        made = [_page(incident, action, target, channel, now) for target, channel in reach(incident, action)]
        pages += made
        session.add_all(made)
        targets = [f"{p.target}/{p.channel}" for p in made]
        data = {"level": action.level, "loop": action.loop, "round": action.round, "pages": targets}
        session.add(_event(incident.id, now, EventKind.paged, "system", data))
    return pages


def _page(incident: Incident, action: PageLevel, target: str, channel: ChannelKind, now: datetime) -> Page:
    return Page(
        incident_id=incident.id,
        key=f"{incident.id}:{action.round}:{target}:{channel}",
        round=action.round,
        level=action.level,
        loop=action.loop,
        target=target,
        channel=channel,
        next_try_at=now,
        created_at=now,
        token=secrets.token_urlsafe(24),
        code=f"{secrets.randbelow(10_000):04d}",
    )


async def _cancel_pending(session: AsyncSession, incident_id: str, now: datetime, keep: str = "") -> None:
    waiting = (PageState.pending,)  # a try under way keeps its outcome
    query = select(Page).where(Page.incident_id == incident_id, col(Page.state).in_(waiting), Page.id != keep)
    for page in (await session.exec(query)).all():
        page.state, page.done_at = PageState.cancelled, now
        session.add(page)


async def _open_for_call(session: AsyncSession, call_id: str) -> Incident | None:
    query = select(Incident).where(Incident.call_id == call_id, Incident.status != Status.resolved)
    return (await session.exec(query.order_by(col(Incident.opened_at).desc()).limit(1))).first()


async def _get(session: AsyncSession, incident_id: str) -> Incident:
    incident = await session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    return incident


def _event(incident_id: str, at: datetime, kind: EventKind, by: str, data: dict[str, Any]) -> IncidentEvent:
    return IncidentEvent(incident_id=incident_id, at=at, kind=kind, by=by, data=data)


def _signal_data(signal: Signal) -> dict[str, Any]:
    return {
        "signal": signal.kind,
        "category": signal.category,
        "severity": str(signal.severity),
        "silent": signal.silent,
        **({"evidence": signal.evidence} if signal.evidence else {}),
    }
