"""Ticket lists on SQLite and PostgreSQL: every filter against a plain Python oracle, keyset paging."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from hotline import db
from hotline.auth import Principal, Role
from tickets import store as tickets
from tickets.errors import Invalid
from tickets.models import Source, Status, Ticket
from tickets.queries import MAX_LIMIT, Cursor, TicketFilter, list_tickets
from tickets.service import NewTicket, is_own

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=30)
AGENT = Principal("ayse", Role.agent, agent_id="a1")
NO_DESK = Principal("can", Role.agent)  # an agent user without an agent id: their own creations only
STATUSES = list(Status)


def newest_first(found: list[Ticket]) -> list[str]:
    return [t.number for t in sorted(found, key=lambda t: (t.created_at, t.id), reverse=True)]


async def seed(store: db.Store, count: int = 24) -> list[Ticket]:
    """``count`` tickets whose fields vary independently; three share one creation time."""
    for i in range(count):
        new = NewTicket(
            source=Source.walk_in,
            caller_number=f"053211100{i % 4:02d}",
            category=("sosyal", "engelli", "yasli")[i % 3],
            unit="ASHB-Ankara" if i % 4 < 2 else "ASHB-Izmir",
            urgent=i % 5 == 0,
            assigned_agent=("a1", "a2", None)[(i // 2) % 3],
            due_at=(NOW - timedelta(days=1), NOW + timedelta(days=1), None, NOW)[(i + i // 4) % 4],
        )
        created = T0 + timedelta(hours=10 if 10 <= i <= 12 else i)  # 10, 11 and 12 tie
        ticket = await tickets.create(store, new, ("ayse", "can", "system")[(i // 4) % 3], created)
        async with store.session() as session:
            await (await session.connection()).execute(
                sa.update(Ticket.__table__)  # type: ignore[attr-defined]
                .where(Ticket.__table__.c.id == ticket.id)  # type: ignore[attr-defined]
                .values(status=STATUSES[(i * 7) % 6].value)
            )
            await session.commit()
    async with store.session() as session:
        return list((await session.exec(select(Ticket))).all())


CASES: list[tuple[str, dict[str, Any], Callable[[Ticket], bool]]] = [
    ("one status", {"statuses": {Status.new}}, lambda t: t.status == Status.new),
    (
        "statuses",
        {"statuses": {Status.assigned, Status.closed}},
        lambda t: t.status in (Status.assigned, Status.closed),
    ),
    ("category", {"category": "engelli"}, lambda t: t.category == "engelli"),
    ("unit", {"unit": "ASHB-Izmir"}, lambda t: t.unit == "ASHB-Izmir"),
    ("urgent", {"urgent": True}, lambda t: t.urgent),
    ("not urgent", {"urgent": False}, lambda t: not t.urgent),
    (
        "overdue",
        {"overdue": True},
        lambda t: (
            t.due_at is not None and t.due_at < NOW and t.status not in (Status.answered, Status.closed)
        ),
    ),
    (
        "created range",
        {"created_from": T0 + timedelta(hours=5), "created_to": T0 + timedelta(hours=14)},
        lambda t: T0 + timedelta(hours=5) <= t.created_at < T0 + timedelta(hours=14),
    ),
    ("caller number", {"caller_number": "05321110003"}, lambda t: t.caller_number == "05321110003"),
    ("assigned agent", {"assigned_agent": "a2"}, lambda t: t.assigned_agent == "a2"),
    ("visible to an agent", {"visible_to": AGENT}, lambda t: is_own(t, AGENT)),
    ("visible to a user without a desk", {"visible_to": NO_DESK}, lambda t: is_own(t, NO_DESK)),
]


async def test_each_filter_alone_lists_exactly_its_tickets_newest_first(store: db.Store) -> None:
    every = await seed(store)
    for name, fields, wanted in CASES:
        expected = newest_first([t for t in every if wanted(t)])
        assert 0 < len(expected) < len(every), f"{name}: the seed does not exercise this filter"
        page = await list_tickets(store, TicketFilter(limit=MAX_LIMIT, **fields), NOW)
        assert [t.number for t in page.tickets] == expected, name
        assert page.next is None, name


async def test_filters_combine_as_and(store: db.Store) -> None:
    every = await seed(store)
    combos: list[dict[str, Any]] = [
        {"statuses": {Status.new, Status.in_progress}, "unit": "ASHB-Ankara"},
        {"category": "sosyal", "urgent": False, "visible_to": AGENT},
        {"overdue": True, "unit": "ASHB-Ankara", "created_from": T0 + timedelta(hours=4)},
        {"caller_number": "05321110000", "assigned_agent": "a1", "created_to": T0 + timedelta(hours=10)},
    ]
    for fields in combos:
        flt = TicketFilter(limit=MAX_LIMIT, **fields)
        expected = newest_first([t for t in every if _matches(t, flt)])
        assert expected, fields
        for name in fields:  # every part narrows the others' result
            without = TicketFilter(**{k: v for k, v in fields.items() if k != name})
            assert len([t for t in every if _matches(t, without)]) > len(expected), (fields, name)
        page = await list_tickets(store, flt, NOW)
        assert [t.number for t in page.tickets] == expected, fields


def _matches(t: Ticket, flt: TicketFilter) -> bool:
    """The oracle: ``flt`` read as plain Python."""
    checks = [
        not flt.statuses or t.status in flt.statuses,
        flt.category is None or t.category == flt.category,
        flt.unit is None or t.unit == flt.unit,
        flt.urgent is None or t.urgent == flt.urgent,
        not flt.overdue
        or (t.due_at is not None and t.due_at < NOW and t.status not in (Status.answered, Status.closed)),
        flt.created_from is None or t.created_at >= flt.created_from,
        flt.created_to is None or t.created_at < flt.created_to,
        flt.caller_number is None or t.caller_number == flt.caller_number,
        flt.assigned_agent is None or t.assigned_agent == flt.assigned_agent,
        flt.visible_to is None or is_own(t, flt.visible_to),
    ]
    return all(checks)


async def test_overdue_is_past_its_deadline_and_unanswered(store: db.Store) -> None:
    due = NOW - timedelta(minutes=1)
    made: dict[str, tuple[Status, str]] = {}
    for status in Status:
        for label, due_at in (
            ("past", due),
            ("now", NOW),
            ("later", NOW + timedelta(days=1)),
            ("none", None),
        ):
            new = NewTicket(source=Source.walk_in, due_at=due_at)
            ticket = await tickets.create(store, new, "system", T0 + timedelta(minutes=len(made)))
            async with store.session() as session:
                await (await session.connection()).execute(
                    sa.update(Ticket.__table__)  # type: ignore[attr-defined]
                    .where(Ticket.__table__.c.id == ticket.id)  # type: ignore[attr-defined]
                    .values(status=status.value)
                )
                await session.commit()
            made[ticket.number] = (status, label)
    page = await list_tickets(store, TicketFilter(overdue=True, limit=MAX_LIMIT), NOW)
    assert sorted(made[t.number] for t in page.tickets) == sorted(
        (s, "past") for s in (Status.new, Status.assigned, Status.in_progress, Status.reopened)
    )


async def test_the_date_range_includes_its_start_and_excludes_its_end(store: db.Store) -> None:
    every = await seed(store, 8)
    start, end = T0 + timedelta(hours=2), T0 + timedelta(hours=5)
    page = await list_tickets(store, TicketFilter(created_from=start, created_to=end), NOW)
    assert [t.created_at for t in page.tickets] == [T0 + timedelta(hours=h) for h in (4, 3, 2)]
    assert len(every) == 8


async def test_keyset_paging_shows_every_ticket_once_in_order(store: db.Store) -> None:
    every = await seed(store, 23)
    for fields in (
        {},
        {"unit": "ASHB-Ankara"},
        {"visible_to": AGENT},
        {"statuses": set(Status) - {Status.closed}},
    ):
        flt = TicketFilter(limit=MAX_LIMIT, **fields)
        expected = newest_first([t for t in every if _matches(t, flt)])
        seen: list[str] = []
        cursor: Cursor | None = None
        pages = 0
        while True:
            page = await list_tickets(store, TicketFilter(limit=3, after=cursor, **fields), NOW)
            assert len(page.tickets) <= 3
            seen += [t.number for t in page.tickets]
            pages += 1
            if page.next is None:
                break
            assert len(page.tickets) == 3
            cursor = page.next
            if pages == 2:  # a ticket created meanwhile (newest) neither shifts nor joins the pages
                await tickets.create(store, NewTicket(source=Source.walk_in, unit="ASHB-Ankara"), "ayse", NOW)
        assert seen == expected, fields
        assert pages == max(1, -(-len(expected) // 3))  # a full last page already says it is the last
        every = (await list_tickets(store, TicketFilter(limit=MAX_LIMIT), NOW)).tickets


async def test_a_page_of_exactly_the_remaining_tickets_is_the_last(store: db.Store) -> None:
    await seed(store, 6)
    first = await list_tickets(store, TicketFilter(limit=3), NOW)
    assert first.next is not None
    second = await list_tickets(store, TicketFilter(limit=3, after=first.next), NOW)
    assert len(second.tickets) == 3 and second.next is None


@pytest.mark.parametrize(
    "fields",
    [
        {"limit": 0},
        {"limit": MAX_LIMIT + 1},
        {"limit": True},
        {"statuses": {"lost"}},
        {"statuses": "new"},
        {"created_from": datetime(2026, 1, 1)},
        {"after": Cursor(datetime(2026, 1, 1), "x")},
    ],
)
def test_a_malformed_filter_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(Invalid):
        TicketFilter(**fields)


def test_statuses_are_read_as_statuses() -> None:
    assert TicketFilter(statuses={"new", Status.closed}).statuses == {Status.new, Status.closed}  # type: ignore[arg-type]
    assert TicketFilter(limit=MAX_LIMIT).limit == MAX_LIMIT
