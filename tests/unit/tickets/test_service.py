"""The ticket workflow and who may change what: every role against every step, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product
from typing import Any

import pytest

from hotline.auth import Principal, Role
from tickets.errors import BadTransition, Invalid, NotAllowed, TicketError
from tickets.models import EventKind, Priority, Source, Status, Ticket, Told
from tickets.service import (
    Assign,
    Change,
    Comment,
    Edit,
    NewTicket,
    Reply,
    TellCitizen,
    Transition,
    decide,
    open_ticket,
)

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
S = Status

OWN_AGENT = Principal("ayse", Role.agent, agent_id="a1")  # the ticket is assigned to a1
CALL_AGENT = Principal("mehmet", Role.agent, agent_id="a7")  # took the call: created the ticket
OTHER_AGENT = Principal("can", Role.agent, agent_id="a2")
SUPERVISOR = Principal("selin", Role.supervisor)
ADMIN = Principal("root", Role.admin)
EVERYONE = (OWN_AGENT, CALL_AGENT, OTHER_AGENT, SUPERVISOR, ADMIN)

# Written out here, not read from tickets.service, so that a changed rule fails this test.
AGENT_STEPS = {
    (S.new, S.in_progress),
    (S.assigned, S.in_progress),
    (S.in_progress, S.answered),
    (S.reopened, S.in_progress),
    (S.reopened, S.answered),
}
SUPERVISOR_STEPS = AGENT_STEPS | {
    (S.new, S.assigned),
    (S.answered, S.closed),
    (S.answered, S.reopened),
    (S.closed, S.reopened),
    (S.new, S.closed),
    (S.assigned, S.closed),
    (S.in_progress, S.closed),
    (S.reopened, S.closed),
}


def ticket(status: Status = S.new, **values: Any) -> Ticket:
    """A ticket that meets every step's condition (an agent, a reply, the citizen told)."""
    fields: dict[str, Any] = {
        "id": "t1",
        "number": "183-2026-000001",
        "year": 2026,
        "seq": 1,
        "source": Source.call,
        "call_id": "c1",
        "created_by": "mehmet",
        "assigned_agent": "a1",
        "reply": "Birim yanıtı",
        "citizen_told": Told.phone,
        "status": status,
        "created_at": NOW,
        "updated_at": NOW,
    }
    fields.update(values)
    return Ticket(**fields)


def expected(who: Principal, step: tuple[Status, Status]) -> type[TicketError] | None:
    if step not in SUPERVISOR_STEPS:
        return BadTransition
    if who.role in (Role.supervisor, Role.admin):
        return None
    if step in AGENT_STEPS and who is not OTHER_AGENT:
        return None
    return NotAllowed


@pytest.mark.parametrize(("before", "after"), list(product(Status, Status)))
@pytest.mark.parametrize("who", EVERYONE, ids=lambda p: p.username)
def test_every_role_against_every_step(who: Principal, before: Status, after: Status) -> None:
    refusal = expected(who, (before, after))
    if refusal is not None:
        with pytest.raises(refusal):
            decide(ticket(before), who, Transition(after), NOW)
        return
    decision = decide(ticket(before), who, Transition(after, comment="neden"), NOW)
    assert decision.values == {"status": after, "updated_at": NOW}
    [entry] = decision.entries
    assert (entry.kind, entry.field, entry.before, entry.after) == (EventKind.status, "status", before, after)
    assert (entry.by, entry.at, entry.comment) == (who.username, NOW, "neden")


@pytest.mark.parametrize(
    ("change", "agents_may"),
    [
        (Edit("notes", "aradı"), True),
        (Edit("category", "sosyal-yardim"), True),
        (Comment("geri arandı"), True),
        (Reply("Birim yanıtladı"), True),
        (TellCitizen(Told.sms), True),
        (Edit("unit", "ASHB"), False),
        (Edit("priority", Priority.high), False),
        (Edit("urgent", True), False),
        (Edit("due_at", NOW + timedelta(days=30)), False),
        (Edit("caller_name", "Ali"), False),
        (Edit("language", "ar"), False),
        (Edit("related_to", "t0"), False),
        (Assign("a3"), False),
    ],
    ids=repr,
)
@pytest.mark.parametrize("who", EVERYONE, ids=lambda p: p.username)
def test_who_may_make_each_change(who: Principal, change: Change, agents_may: bool) -> None:
    allowed = who.role != Role.agent or (agents_may and who is not OTHER_AGENT)
    if not allowed:
        with pytest.raises(NotAllowed):
            decide(ticket(S.in_progress), who, change, NOW)
        return
    decision = decide(ticket(S.in_progress), who, change, NOW)
    assert len(decision.entries) == 1 and decision.entries[0].by == who.username


@pytest.mark.parametrize(
    "name", ["status", "number", "seq", "call_id", "created_by", "created_at", "assigned_agent", "reply",
             "citizen_told", "version", "id", "source"],
)  # fmt: skip
@pytest.mark.parametrize("who", [OWN_AGENT, SUPERVISOR, ADMIN], ids=lambda p: p.username)
def test_nobody_edits_what_has_its_own_change_or_must_not_move(who: Principal, name: str) -> None:
    with pytest.raises(Invalid):
        decide(ticket(S.in_progress), who, Edit(name, "x"), NOW)


def test_assigning_a_new_ticket_also_moves_it_to_assigned() -> None:
    decision = decide(ticket(S.new, assigned_agent=None), SUPERVISOR, Assign("a3"), NOW)
    assert decision.values == {"assigned_agent": "a3", "status": S.assigned, "updated_at": NOW}
    assert [(e.kind, e.before, e.after) for e in decision.entries] == [
        (EventKind.assigned, None, "a3"),
        (EventKind.status, "new", "assigned"),
    ]
    later = decide(ticket(S.in_progress), SUPERVISOR, Assign("a3"), NOW)
    assert [(e.kind, e.before, e.after) for e in later.entries] == [(EventKind.assigned, "a1", "a3")]
    assert decide(ticket(S.in_progress), SUPERVISOR, Assign("a1"), NOW).entries == []


@pytest.mark.parametrize(
    ("current", "change", "reason"),
    [
        (ticket(S.new, assigned_agent=None), Transition(S.assigned), "assign an agent"),
        (ticket(S.in_progress, reply=None), Transition(S.answered), "reply"),
        (ticket(S.reopened, reply=None), Transition(S.answered), "reply"),
        (ticket(S.answered, citizen_told=None), Transition(S.closed), "citizen was told"),
        (ticket(S.answered, reply=None), TellCitizen(Told.phone), "no reply"),
        (ticket(S.in_progress), Comment("  "), "text"),
        (ticket(S.in_progress), Reply(""), "text"),
        (ticket(S.in_progress), Edit("priority", "whenever"), "priority"),
        (ticket(S.in_progress), Edit("urgent", "yes"), "true or false"),
        (ticket(S.in_progress), Edit("due_at", datetime(2026, 7, 1)), "time zone"),
        (ticket(S.in_progress), Edit("category", "x" * 65), "64"),
        (ticket(S.in_progress), Edit("related_to", "t1"), "itself"),
    ],
)
def test_conditions_of_the_steps(current: Ticket, change: Change, reason: str) -> None:
    with pytest.raises(Invalid, match=reason):
        decide(current, SUPERVISOR, change, NOW)


@pytest.mark.parametrize(
    "change",
    [Edit("notes", "x"), Edit("unit", "ASHB"), Reply("yeni"), TellCitizen(Told.sms), Assign("a3")],
    ids=repr,
)
def test_a_closed_ticket_takes_only_a_reopening_and_comments(change: Change) -> None:
    with pytest.raises(BadTransition, match="reopen"):
        decide(ticket(S.closed), SUPERVISOR, change, NOW)
    assert decide(ticket(S.closed), SUPERVISOR, Comment("not"), NOW).entries[0].kind == EventKind.comment
    assert decide(ticket(S.closed), SUPERVISOR, Transition(S.reopened), NOW).values["status"] == S.reopened


def test_an_edit_to_the_same_value_changes_and_records_nothing() -> None:
    assert decide(ticket(S.in_progress, notes="a"), OWN_AGENT, Edit("notes", "a"), NOW).entries == []
    assert decide(ticket(S.in_progress, notes="a"), OWN_AGENT, Edit("notes", "a"), NOW).values == {}


def test_edits_record_before_and_after_as_plain_values() -> None:
    due = datetime(2026, 7, 1, 14, 0, tzinfo=UTC)
    decision = decide(ticket(S.in_progress, due_at=NOW), SUPERVISOR, Edit("due_at", due), NOW)
    assert decision.values == {"due_at": due, "updated_at": NOW}
    [entry] = decision.entries
    assert (entry.field, entry.before, entry.after) == ("due_at", NOW.isoformat(), due.isoformat())
    entry = decide(ticket(S.in_progress), SUPERVISOR, Edit("priority", "high"), NOW).entries[0]
    assert (entry.before, entry.after) == ("normal", "high")


def test_time_is_passed_in_and_must_carry_a_zone() -> None:
    with pytest.raises(Invalid):
        decide(ticket(S.new), SUPERVISOR, Comment("x"), datetime(2026, 6, 1))


def test_opening_a_ticket() -> None:
    new = NewTicket(
        source=Source.abandoned_urgent,
        call_id="c9",
        caller_number="0532",
        ivr_path=["1", "3"],
        category="siddet",
    )
    opened, entry = open_ticket(new, "system", NOW, 2026, 123, related_to="t0")
    assert (opened.number, opened.status, opened.urgent) == ("183-2026-000123", S.new, True)
    assert opened.related_to == "t0"
    assert opened.ivr_path == ["1", "3"] and opened.created_at == opened.updated_at == NOW
    assert (entry.kind, entry.by, entry.at) == (EventKind.created, "system", NOW)
    assert entry.after["number"] == "183-2026-000123" and entry.after["source"] == "abandoned_urgent"
    with pytest.raises(Invalid, match="needs its call"):
        open_ticket(NewTicket(source=Source.voicemail), "system", NOW, 2026, 1, None)
    with pytest.raises(Invalid, match="unknown source"):
        open_ticket(NewTicket(source="fax"), "system", NOW, 2026, 1, None)  # type: ignore[arg-type]
