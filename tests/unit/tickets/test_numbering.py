"""Ticket numbers: gap-free and unique per year under concurrency, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from hotline import db
from hotline.models import Call
from tickets import service
from tickets import store as tickets
from tickets.errors import Conflict, NotFound
from tickets.models import Source, Ticket, TicketCounter, TicketEvent, ticket_number
from tickets.service import NewTicket

ISTANBUL = ZoneInfo("Europe/Istanbul")
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def walk_in(number: str = "") -> NewTicket:
    return NewTicket(source=Source.walk_in, caller_number=number)


async def add_call(store: db.Store, call_id: str) -> None:
    async with store.session() as session:
        session.add(Call(id=call_id, channel_id=f"chan-{call_id}", caller_number="05321234567"))
        await session.commit()


async def all_tickets(store: db.Store) -> list[Ticket]:
    async with store.session() as session:
        return list((await session.exec(select(Ticket))).all())


def test_the_number_format() -> None:
    assert ticket_number(2026, 123) == "183-2026-000123"
    assert ticket_number(2027, 1) == "183-2027-000001"


async def test_fifty_concurrent_creations_take_1_to_50(store: db.Store) -> None:
    created = await asyncio.gather(*(tickets.create(store, walk_in(), "agent1", NOW) for _ in range(50)))
    assert sorted(t.seq for t in created) == list(range(1, 51))
    assert sorted(t.number for t in created) == [f"183-2026-{n:06d}" for n in range(1, 51)]
    stored = await all_tickets(store)
    assert sorted(t.seq for t in stored) == list(range(1, 51))
    assert {t.number for t in stored} == {t.number for t in created}
    async with store.session() as session:
        counter = await session.get(TicketCounter, 2026)
        events = (await session.exec(select(TicketEvent))).all()
    assert counter is not None and counter.last == 50
    numbers = sorted(e.after["number"] for e in events if e.kind == "created")
    assert numbers == sorted(t.number for t in created)


async def test_fifty_concurrent_creations_through_separate_engines(database_url: str) -> None:
    """As if from several processes (or sites) sharing the database."""
    await db.upgrade_async(database_url)
    stores = [db.Store(database_url) for _ in range(5)]
    try:
        created = await asyncio.gather(
            *(tickets.create(stores[n % 5], walk_in(), "agent1", NOW) for n in range(50))
        )
    finally:
        for one in stores:
            await one.close()
    assert sorted(t.seq for t in created) == list(range(1, 51))


async def test_a_creation_that_fails_after_taking_a_number_gives_it_back(store: db.Store) -> None:
    await add_call(store, "c1")
    first = await tickets.create(store, NewTicket(source=Source.call, call_id="c1"), "agent1", NOW)
    # The second ticket for the same call is refused by the database after the counter moved.
    with pytest.raises(Conflict):
        await tickets.create(store, NewTicket(source=Source.call, call_id="c1"), "agent1", NOW)
    with pytest.raises(NotFound):  # no such call: the foreign key refuses it
        await tickets.create(store, NewTicket(source=Source.call, call_id="nope"), "agent1", NOW)
    after = await tickets.create(store, walk_in(), "agent1", NOW)
    assert (first.seq, after.seq) == (1, 2)
    assert sorted(t.seq for t in await all_tickets(store)) == [1, 2]


async def test_a_failure_between_numbering_and_insert_leaves_no_gap(
    store: db.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await tickets.create(store, walk_in(), "agent1", NOW)
    real = service.open_ticket

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("crash after the number was taken")

    monkeypatch.setattr(tickets, "open_ticket", broken)
    with pytest.raises(RuntimeError):
        await tickets.create(store, walk_in(), "agent1", NOW)
    monkeypatch.setattr(tickets, "open_ticket", real)
    again = await asyncio.gather(*(tickets.create(store, walk_in(), "agent1", NOW) for _ in range(3)))
    assert sorted(t.seq for t in again) == [2, 3, 4]


async def test_numbering_restarts_with_the_local_year(store: db.Store) -> None:
    new_year = datetime(2027, 1, 1, tzinfo=ISTANBUL)  # 31 December 21:00 in UTC
    last_2026 = await tickets.create(store, walk_in(), "a", new_year - timedelta(minutes=1), ISTANBUL)
    first_2027 = await tickets.create(store, walk_in(), "a", new_year, ISTANBUL)
    second_2027 = await tickets.create(store, walk_in(), "a", new_year + timedelta(hours=1), ISTANBUL)
    late_2026 = await tickets.create(store, walk_in(), "a", new_year - timedelta(minutes=1), ISTANBUL)
    assert first_2027.created_at.astimezone(UTC).year == 2026  # still 2026 in UTC: the zone decides
    assert (last_2026.number, late_2026.number) == ("183-2026-000001", "183-2026-000002")
    assert (first_2027.number, second_2027.number) == ("183-2027-000001", "183-2027-000002")
    assert (first_2027.year, first_2027.seq) == (2027, 1)


async def test_concurrent_creations_across_new_year_number_each_year_from_1(store: db.Store) -> None:
    eve = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    day = datetime(2027, 1, 1, 0, 1, tzinfo=UTC)
    created = await asyncio.gather(
        *(tickets.create(store, walk_in(), "a", eve if n % 2 else day) for n in range(40))
    )
    assert sorted(t.seq for t in created if t.year == 2026) == list(range(1, 21))
    assert sorted(t.seq for t in created if t.year == 2027) == list(range(1, 21))


def test_the_year_is_the_sites_local_year() -> None:
    assert service.ticket_year(datetime(2026, 12, 31, 21, 30, tzinfo=UTC), ISTANBUL) == 2027
    assert service.ticket_year(datetime(2026, 12, 31, 21, 30, tzinfo=UTC), UTC) == 2026
