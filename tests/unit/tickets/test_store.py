"""Tickets in the database, on SQLite and PostgreSQL: the audit trail, concurrency, repeat callers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from hotline import db
from hotline.auth import Principal, Role
from tickets import store as tickets
from tickets.errors import Conflict, NotAllowed, NotFound
from tickets.models import Priority, Source, Status, Ticket, TicketEvent, Told
from tickets.service import Assign, Comment, Edit, NewTicket, Reply, TellCitizen, Transition

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
AGENT = Principal("ayse", Role.agent, agent_id="a1")
OTHER = Principal("can", Role.agent, agent_id="a2")
SUPERVISOR = Principal("selin", Role.supervisor)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def trail(events: list[TicketEvent]) -> list[tuple[Any, ...]]:
    return [(e.kind, e.by, e.at, e.field, e.before, e.after, e.comment) for e in events]


async def test_every_change_leaves_exactly_one_entry_with_who_when_and_before_after(store: db.Store) -> None:
    ticket = await tickets.create(store, NewTicket(source=Source.walk_in, caller_number="0532"), "system", T0)
    due = datetime(2026, 7, 1, 14, 0, tzinfo=UTC)
    steps: list[tuple[Principal, Any]] = [
        (SUPERVISOR, Assign("a1", comment="senin bölgen")),  # also new -> assigned
        (AGENT, Transition(Status.in_progress)),
        (AGENT, Edit("notes", "Yaşlı bakım desteği istiyor")),
        (AGENT, Edit("category", "sosyal-yardim")),
        (AGENT, Comment("Kızı da aradı")),
        (SUPERVISOR, Edit("unit", "ASHB-Ankara")),
        (SUPERVISOR, Edit("due_at", due)),
        (SUPERVISOR, Edit("priority", Priority.high)),
        (SUPERVISOR, Edit("urgent", True)),
        (AGENT, Edit("notes", "Yaşlı bakım desteği istiyor")),  # the same value: nothing
        (AGENT, Reply("Ev ziyareti planlandı")),
        (AGENT, Transition(Status.answered)),
        (AGENT, TellCitizen(Told.sms)),
        (SUPERVISOR, Transition(Status.closed, comment="tamam")),
        (SUPERVISOR, Transition(Status.reopened)),
        (SUPERVISOR, Assign("a2")),
    ]
    for minute, (who, change) in enumerate(steps, start=1):
        ticket = await tickets.apply(store, ticket.id, change, who, at(minute))
    with pytest.raises(NotAllowed):  # refused: records nothing
        await tickets.apply(store, ticket.id, Edit("unit", "x"), AGENT, at(30))

    events = await tickets.events(store, ticket.id)
    assert events[0].kind == "created" and events[0].by == "system" and events[0].at == T0
    assert events[0].after["number"] == ticket.number == "183-2026-000001"
    assert trail(events[1:]) == [
        ("assigned", "selin", at(1), "assigned_agent", None, "a1", "senin bölgen"),
        ("status", "selin", at(1), "status", "new", "assigned", None),
        ("status", "ayse", at(2), "status", "assigned", "in_progress", None),
        ("field", "ayse", at(3), "notes", "", "Yaşlı bakım desteği istiyor", None),
        ("field", "ayse", at(4), "category", None, "sosyal-yardim", None),
        ("comment", "ayse", at(5), None, None, None, "Kızı da aradı"),
        ("field", "selin", at(6), "unit", None, "ASHB-Ankara", None),
        ("field", "selin", at(7), "due_at", None, due.isoformat(), None),
        ("field", "selin", at(8), "priority", "normal", "high", None),
        ("field", "selin", at(9), "urgent", False, True, None),
        ("reply", "ayse", at(11), "reply", None, "Ev ziyareti planlandı", None),
        ("status", "ayse", at(12), "status", "in_progress", "answered", None),
        ("told", "ayse", at(13), "citizen_told", None, "sms", None),
        ("status", "selin", at(14), "status", "answered", "closed", "tamam"),
        ("status", "selin", at(15), "status", "closed", "reopened", None),
        ("assigned", "selin", at(16), "assigned_agent", "a1", "a2", None),
    ]
    stored = await tickets.get(store, ticket.id)
    assert stored.status == Status.reopened and stored.assigned_agent == "a2"
    assert (stored.unit, stored.category, stored.priority, stored.urgent) == (
        "ASHB-Ankara", "sosyal-yardim", "high", True,
    )  # fmt: skip
    assert (stored.due_at, stored.reply, stored.reply_at) == (due, "Ev ziyareti planlandı", at(11))
    assert (stored.citizen_told, stored.citizen_told_at) == ("sms", at(13))
    assert stored.updated_at == at(16) and stored.created_at == T0
    assert stored.version == 1 + 14  # one per step that changed a value (not the comment, not the no-op)
    assert stored == ticket


async def test_a_stale_version_is_refused_and_writes_nothing(store: db.Store) -> None:
    ticket = await tickets.create(store, NewTicket(source=Source.walk_in), "ayse", T0)
    await tickets.apply(store, ticket.id, Edit("notes", "first"), AGENT, at(1), version=1)
    with pytest.raises(Conflict):
        await tickets.apply(store, ticket.id, Edit("notes", "second"), SUPERVISOR, at(2), version=1)
    stored = await tickets.get(store, ticket.id)
    assert (stored.notes, stored.version) == ("first", 2)
    assert [e.after for e in await tickets.events(store, ticket.id)][1:] == ["first"]


async def test_concurrent_changes_lose_nothing_silently(store: db.Store) -> None:
    ticket = await tickets.create(store, NewTicket(source=Source.walk_in), "ayse", T0)

    async def edit(n: int) -> bool:
        try:
            await tickets.apply(store, ticket.id, Edit("notes", f"note {n}"), AGENT, at(n))
        except Conflict:
            return False
        return True

    done = await asyncio.gather(*(edit(n) for n in range(1, 21)))
    stored = await tickets.get(store, ticket.id)
    edits = (await tickets.events(store, ticket.id))[1:]
    assert stored.version == 1 + sum(done) == 1 + len(edits)
    assert stored.notes == edits[-1].after  # the last entry written is the value kept
    assert [e.before for e in edits[1:]] == [e.after for e in edits[:-1]]  # each saw the one before


async def test_several_changes_are_written_together_or_not_at_all(store: db.Store) -> None:
    ticket = await tickets.create(store, NewTicket(source=Source.walk_in), "ayse", T0)

    async def edit(n: int) -> bool:  # two fields a writer means together
        changes = [Edit("notes", f"note {n}"), Edit("caller_name", f"name {n}")]
        try:
            await tickets.apply_all(store, ticket.id, changes, SUPERVISOR, at(n), version=1)
        except Conflict:
            return False
        return True

    done = await asyncio.gather(*(edit(n) for n in range(1, 11)))
    [n] = [n for n, won in enumerate(done, start=1) if won]  # one writer of version 1 wins ...
    stored = await tickets.get(store, ticket.id)
    assert (stored.notes, stored.caller_name, stored.version) == (f"note {n}", f"name {n}", 2)
    assert [e.after for e in await tickets.events(store, ticket.id)][1:] == [f"note {n}", f"name {n}"]
    # ... and a refused change refuses the ones before it in the same call.
    with pytest.raises(NotAllowed):
        await tickets.apply_all(
            store, ticket.id, [Edit("notes", "half"), Edit("urgent", True)], AGENT, at(20)
        )
    assert await tickets.get(store, ticket.id) == stored


async def test_unknown_tickets(store: db.Store) -> None:
    with pytest.raises(NotFound):
        await tickets.get(store, "nope")
    with pytest.raises(NotFound):
        await tickets.apply(store, "nope", Comment("x"), SUPERVISOR, T0)
    ticket = await tickets.create(store, NewTicket(source=Source.walk_in), "ayse", T0)
    with pytest.raises(NotFound):
        await tickets.apply(store, ticket.id, Edit("related_to", "nope"), SUPERVISOR, T0)
    assert (await tickets.by_number(store, "183-2026-000001")).id == ticket.id
    with pytest.raises(NotFound):
        await tickets.by_number(store, "183-2026-000002")


async def test_an_agent_cannot_act_on_someone_elses_ticket(store: db.Store) -> None:
    ticket = await tickets.create(store, NewTicket(source=Source.walk_in, assigned_agent="a1"), "selin", T0)
    with pytest.raises(NotAllowed):
        await tickets.apply(store, ticket.id, Comment("x"), OTHER, at(1))
    await tickets.apply(store, ticket.id, Comment("x"), AGENT, at(1))
    assert [e.kind for e in await tickets.events(store, ticket.id)] == ["created", "comment"]


async def test_a_repeat_callers_ticket_is_linked_to_their_latest_open_one(store: db.Store) -> None:
    caller = NewTicket(source=Source.walk_in, caller_number="05321234567")
    first = await tickets.create(store, caller, "ayse", at(1))
    second = await tickets.create(store, caller, "ayse", at(2))
    stranger = await tickets.create(
        store, NewTicket(source=Source.walk_in, caller_number="0555"), "ayse", at(3)
    )
    anonymous = await tickets.create(store, NewTicket(source=Source.walk_in), "ayse", at(4))
    await tickets.create(store, NewTicket(source=Source.walk_in), "ayse", at(5))
    assert (first.related_to, second.related_to) == (None, first.id)
    assert (stranger.related_to, anonymous.related_to) == (None, None)
    await tickets.apply(store, second.id, Transition(Status.closed), SUPERVISOR, at(6))
    third = await tickets.create(store, caller, "ayse", at(7))
    assert third.related_to == first.id  # the closed one is skipped
    assert [t.id for t in await tickets.of_caller(store, "05321234567")] == [third.id, second.id, first.id]
    assert await tickets.of_caller(store, "") == []


async def test_the_audit_trail_refuses_update_and_delete_in_the_database(store: db.Store) -> None:
    ticket = await tickets.create(store, NewTicket(source=Source.walk_in), "ayse", T0)
    await tickets.apply(store, ticket.id, Comment("asıl yorum"), AGENT, at(1))
    before = trail(await tickets.events(store, ticket.id))
    for statement in (
        "UPDATE ticket_event SET comment = 'rewritten'",
        "UPDATE ticket_event SET by = 'someone' WHERE kind = 'created'",
        "DELETE FROM ticket_event",
        f"DELETE FROM ticket_event WHERE ticket_id = '{ticket.id}' AND kind = 'comment'",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with store.engine.begin() as conn:
                await conn.exec_driver_sql(statement)
    if store.engine.dialect.name == "postgresql":
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with store.engine.begin() as conn:
                await conn.exec_driver_sql("TRUNCATE ticket_event")
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):  # through the ORM as well
        async with store.session() as session:
            event = (await session.exec(select(TicketEvent).where(TicketEvent.kind == "comment"))).one()
            event.comment = "rewritten"
            await session.commit()
    assert trail(await tickets.events(store, ticket.id)) == before
    async with store.engine.begin() as conn:  # still open to new entries
        count = (await conn.execute(sa.select(sa.func.count()).select_from(TicketEvent))).scalar_one()
    assert count == 2
    await tickets.apply(store, ticket.id, Comment("ikinci"), AGENT, at(2))
    assert len(await tickets.events(store, ticket.id)) == 3


async def test_the_ticket_itself_stays_editable_in_the_database(store: db.Store) -> None:
    """Only the trail is append-only: the ticket row takes updates (its changes are audited)."""
    ticket = await tickets.create(store, NewTicket(source=Source.walk_in), "ayse", T0)
    async with store.engine.begin() as conn:
        await conn.execute(sa.update(Ticket).where(col(Ticket.id) == ticket.id).values(notes="x"))
    assert (await tickets.get(store, ticket.id)).notes == "x"
