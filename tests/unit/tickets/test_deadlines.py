"""Warnings before a ticket's deadline and when it has passed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hotline import db
from hotline.auth import Principal, Role
from hotline.clock import Clock
from tickets import store as tickets
from tickets.deadlines import DeadlineNotice, Deadlines
from tickets.models import Source, Status
from tickets.service import Assign, NewTicket, Reply, Transition

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
BOSS = Principal("selin", Role.supervisor)


async def ticket(store: db.Store, due_in: timedelta, number: str = "0532") -> str:
    new = NewTicket(source=Source.walk_in, caller_number=number, due_at=NOW + due_in, unit="central")
    return (await tickets.create(store, new, "system", NOW - timedelta(days=10))).number


async def test_supervisors_are_warned_once_before_the_deadline_and_once_when_it_passes(
    store: db.Store,
) -> None:
    soon = await ticket(store, timedelta(hours=5))
    late = await ticket(store, timedelta(hours=-1))
    await ticket(store, timedelta(days=3))  # not yet
    seen: list[DeadlineNotice] = []
    now = NOW
    deadlines = Deadlines(store, seen.append, warn_before=timedelta(hours=24), clock=Clock(wall=lambda: now))
    assert {(n.number, n.stage) for n in await deadlines.check()} == {(soon, "due_soon"), (late, "overdue")}
    assert await deadlines.check() == []  # once per stage
    now = NOW + timedelta(hours=6)  # the first one's deadline has passed meanwhile
    assert [(n.number, n.stage) for n in await deadlines.check()] == [(soon, "overdue")]
    assert [n.as_json()["type"] for n in seen] == ["ticket_overdue", "ticket_due_soon", "ticket_overdue"]


async def test_an_answered_ticket_is_not_warned_about(store: db.Store) -> None:
    done = await tickets.by_number(store, await ticket(store, timedelta(hours=-2)))
    assert done is not None
    for change in (
        Assign("a1"),
        Transition(Status.in_progress),
        Reply("Ziyaret edildi"),
        Transition(Status.answered),
    ):
        done = await tickets.apply(store, done.id, change, BOSS, NOW)
    deadlines = Deadlines(store, lambda _n: None, clock=Clock(wall=lambda: NOW))
    assert await deadlines.check() == []
