"""Ticket rules, free of I/O and of the wall clock: what may change, by whom, and what it records.

``decide(ticket, principal, change, now)`` answers with the new column values and the audit
entries to write, or raises a ``tickets.errors`` error; ``tickets.store`` writes the answer in one
transaction. The rules:

* statuses: new -> assigned -> in_progress -> answered -> closed; ``reopened`` from answered or
  closed, and from there work goes on as from in_progress (-> in_progress, -> answered). An open
  ticket may be closed without an answer (a duplicate, a prank call) by a supervisor. Every step
  that exists is in ``TRANSITIONS`` with the least role that may take it; there are no others.
* agents act only on their own tickets: assigned to them (``assigned_agent`` is their agent id)
  or opened by them (``created_by`` is their username, as for the ticket of a call they took).
  Supervisors and admins act on every ticket and take every step.
* -> assigned needs an assigned agent; -> answered needs the unit's reply on the ticket;
  answered -> closed needs the citizen's being told recorded (``Told.unreachable`` counts).
* ``Assign`` is for supervisors; on a new ticket it also moves it to assigned (two entries).
* ``Edit``: agents may edit ``AGENT_FIELDS`` of their own tickets, supervisors ``EDITABLE``. No
  one edits the number, the call, the creation, nor (except through their own changes) status,
  assignment, reply or the citizen's being told. An edit to the value already there changes
  nothing and records nothing.
* ``Reply`` and ``TellCitizen`` are refused on a closed ticket; telling needs a reply first.
* a closed ticket takes only a reopening and comments.
* every change records one entry per value it changes (kind, field, before -> after, who, when);
  a comment records one entry. ``updated_at`` and the version move only when a value changed.
* the audit trail is never edited: there is no change for it, and the database refuses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import Enum
from typing import Any

from hotline.auth import Principal, Role
from tickets.errors import BadTransition, Invalid, NotAllowed
from tickets.models import EventKind, Priority, Source, Status, Ticket, Told, ticket_number

S = Status
TRANSITIONS: dict[tuple[Status, Status], Role] = {
    (S.new, S.assigned): Role.supervisor,
    (S.new, S.in_progress): Role.agent,
    (S.assigned, S.in_progress): Role.agent,
    (S.in_progress, S.answered): Role.agent,
    (S.answered, S.closed): Role.supervisor,
    (S.answered, S.reopened): Role.supervisor,
    (S.closed, S.reopened): Role.supervisor,
    (S.reopened, S.in_progress): Role.agent,
    (S.reopened, S.answered): Role.agent,
    (S.new, S.closed): Role.supervisor,
    (S.assigned, S.closed): Role.supervisor,
    (S.in_progress, S.closed): Role.supervisor,
    (S.reopened, S.closed): Role.supervisor,
}

AGENT_FIELDS = frozenset({"notes", "category"})
EDITABLE = AGENT_FIELDS | {"unit", "priority", "urgent", "due_at", "caller_name", "language", "related_to"}
_LENGTHS = {"category": 64, "unit": 64, "caller_name": 128, "language": 8, "related_to": 32}
_CALL_SOURCES = frozenset({Source.call, Source.voicemail, Source.abandoned_urgent})


# ---------------------------------------------------------------- changes


@dataclass(frozen=True, slots=True)
class Transition:
    to: Status
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class Assign:
    agent_id: str | None  # None: take the ticket back from its agent
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class Edit:
    field: str
    value: Any


@dataclass(frozen=True, slots=True)
class Comment:
    text: str


@dataclass(frozen=True, slots=True)
class Reply:
    """The responsible unit's reply, recorded on the ticket."""

    text: str


@dataclass(frozen=True, slots=True)
class TellCitizen:
    """The citizen was told of the reply (or could not be reached): the outcome is recorded."""

    outcome: Told


Change = Transition | Assign | Edit | Comment | Reply | TellCitizen


@dataclass(frozen=True, slots=True)
class Entry:
    """One audit entry to write (``tickets.models.TicketEvent``)."""

    kind: EventKind
    by: str
    at: datetime
    field: str | None = None
    before: Any = None
    after: Any = None
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    values: dict[str, Any]  # the ticket's new column values (empty: nothing changes)
    entries: list[Entry]


# ---------------------------------------------------------------- opening


@dataclass(frozen=True, slots=True)
class NewTicket:
    """What a ticket starts from (a call, a voice message, an abandoned urgent call, a visit…)."""

    source: Source
    call_id: str | None = None
    caller_number: str = ""
    caller_name: str = ""
    language: str = ""
    ivr_path: Sequence[str] = ()
    category: str | None = None
    unit: str | None = None
    urgent: bool = False
    priority: Priority = Priority.normal
    notes: str = ""
    assigned_agent: str | None = None  # the agent who took the call
    due_at: datetime | None = None  # the legal deadline, worked out by the caller


def ticket_year(now: datetime, zone: tzinfo) -> int:
    """The numbering year is the site's local year: 00:30 on 1 January in Istanbul is already
    the new year although it is still 31 December in UTC."""
    return now.astimezone(zone).year


def check_new(new: NewTicket) -> None:
    if new.source not in set(Source) or new.priority not in set(Priority):
        raise Invalid(f"unknown source {new.source!r} or priority {new.priority!r}")
    if new.source in _CALL_SOURCES and not new.call_id:
        raise Invalid(f"a ticket from a {new.source} needs its call")
    for name, limit in (("caller_number", 64), ("caller_name", 128), ("language", 8), ("category", 64),
                        ("unit", 64), ("assigned_agent", 64)):  # fmt: skip
        value = getattr(new, name)
        if value is not None and len(value) > limit:
            raise Invalid(f"{name} is longer than {limit} characters")
    _aware(new.due_at, "due_at")


def open_ticket(
    new: NewTicket, by: str, now: datetime, year: int, seq: int, related_to: str | None
) -> tuple[Ticket, Entry]:
    """The ticket numbered ``seq`` of ``year`` and its ``created`` entry."""
    check_new(new)
    _aware(now, "now")
    ticket = Ticket(
        number=ticket_number(year, seq),
        year=year,
        seq=seq,
        call_id=new.call_id,
        source=Source(new.source),
        caller_number=new.caller_number,
        caller_name=new.caller_name,
        language=new.language,
        ivr_path=list(new.ivr_path),
        category=new.category,
        unit=new.unit,
        urgent=new.urgent or new.source == Source.abandoned_urgent,
        priority=Priority(new.priority),
        status=Status.new,
        due_at=new.due_at,
        created_at=now,
        updated_at=now,
        created_by=by,
        assigned_agent=new.assigned_agent,
        notes=new.notes,
        related_to=related_to,
    )
    after = {
        "number": ticket.number,
        "status": ticket.status.value,
        "source": ticket.source.value,
        "call_id": ticket.call_id,
        "category": ticket.category,
        "unit": ticket.unit,
        "urgent": ticket.urgent,
        "priority": ticket.priority.value,
        "assigned_agent": ticket.assigned_agent,
        "due_at": _json(ticket.due_at),
        "related_to": related_to,
    }
    return ticket, Entry(EventKind.created, by, now, after=after)


# ---------------------------------------------------------------- changing


def is_own(ticket: Ticket, principal: Principal) -> bool:
    if principal.agent_id and ticket.assigned_agent == principal.agent_id:
        return True
    return ticket.created_by == principal.username


def may_transition(ticket: Ticket, principal: Principal, to: Status) -> bool:
    """Whether the workflow has the step and ``principal`` may take it (conditions aside)."""
    needed = TRANSITIONS.get((Status(ticket.status), to))
    return needed is not None and _may(ticket, principal, needed)


def decide(ticket: Ticket, principal: Principal, change: Change, now: datetime) -> Decision:
    """The values ``change`` gives ``ticket`` and the entries it records; raises ``NotAllowed``,
    ``BadTransition`` or ``Invalid`` (see the rules above)."""
    _aware(now, "now")
    by = principal.username
    status = Status(ticket.status)
    if status == Status.closed and not isinstance(change, (Comment, Transition)):
        raise BadTransition(f"{ticket.number} is closed: reopen it first")
    match change:
        case Transition(to=to, comment=comment):
            return _transition(ticket, principal, Status(to), comment, now)
        case Assign(agent_id=agent_id, comment=comment):
            return _assign(ticket, principal, agent_id, comment, now)
        case Edit(field=name, value=value):
            if name not in EDITABLE:
                raise Invalid(f"{name!r} cannot be edited")
            _need(ticket, principal, Role.agent if name in AGENT_FIELDS else Role.supervisor, f"edit {name}")
            value = _checked(ticket, name, value)
            before = getattr(ticket, name)
            if value == before:
                return Decision({}, [])
            entry = Entry(EventKind.field, by, now, name, _json(before), _json(value))
            return _done({name: value}, [entry], now)
        case Comment(text=text):
            _need(ticket, principal, Role.agent, "comment on this ticket")
            if not text.strip():
                raise Invalid("a comment needs some text")
            return Decision({}, [Entry(EventKind.comment, by, now, comment=text)])
        case Reply(text=text):
            _need(ticket, principal, Role.agent, "record the reply")
            if not text.strip():
                raise Invalid("a reply needs some text")
            if text == ticket.reply:
                return Decision({}, [])
            entry = Entry(EventKind.reply, by, now, "reply", ticket.reply, text)
            return _done({"reply": text, "reply_at": now}, [entry], now)
        case TellCitizen(outcome=outcome):
            _need(ticket, principal, Role.agent, "record that the citizen was told")
            if not ticket.reply:
                raise Invalid("there is no reply to tell the citizen yet")
            try:
                told = Told(outcome)
            except ValueError:
                raise Invalid(f"unknown outcome {outcome!r}") from None
            before = ticket.citizen_told.value if ticket.citizen_told is not None else None
            entry = Entry(EventKind.told, by, now, "citizen_told", before, told.value)
            return _done({"citizen_told": told, "citizen_told_at": now}, [entry], now)
    raise Invalid(f"unknown change {change!r}")


def _transition(
    ticket: Ticket, principal: Principal, to: Status, comment: str | None, now: datetime
) -> Decision:
    status = Status(ticket.status)
    needed = TRANSITIONS.get((status, to))
    if needed is None:
        raise BadTransition(f"{ticket.number} cannot go from {status} to {to}")
    _need(ticket, principal, needed, f"move a ticket from {status} to {to}")
    if to == Status.assigned and not ticket.assigned_agent:
        raise Invalid("assign an agent first")
    if to == Status.answered and not ticket.reply:
        raise Invalid("record the unit's reply first")
    if (status, to) == (Status.answered, Status.closed) and ticket.citizen_told is None:
        raise Invalid("record whether the citizen was told first")
    entry = Entry(EventKind.status, principal.username, now, "status", status.value, to.value, comment)
    return _done({"status": to}, [entry], now)


def _assign(
    ticket: Ticket, principal: Principal, agent_id: str | None, comment: str | None, now: datetime
) -> Decision:
    _need(ticket, principal, Role.supervisor, "assign tickets")
    if agent_id is not None and not (0 < len(agent_id) <= 64):
        raise Invalid("an agent id is 1 to 64 characters")
    by, status = principal.username, Status(ticket.status)
    values: dict[str, Any] = {}
    entries: list[Entry] = []
    if agent_id != ticket.assigned_agent:
        values["assigned_agent"] = agent_id
        before = ticket.assigned_agent
        entries.append(Entry(EventKind.assigned, by, now, "assigned_agent", before, agent_id, comment))
    if status == Status.new and agent_id is not None:
        values["status"] = Status.assigned
        entries.append(Entry(EventKind.status, by, now, "status", status.value, Status.assigned.value))
    return _done(values, entries, now)


def _done(values: dict[str, Any], entries: list[Entry], now: datetime) -> Decision:
    return Decision({**values, "updated_at": now} if values else {}, entries)


def _may(ticket: Ticket, principal: Principal, needed: Role) -> bool:
    if not principal.has(needed):
        return False
    return principal.has(Role.supervisor) or is_own(ticket, principal)


def _need(ticket: Ticket, principal: Principal, needed: Role, what: str) -> None:
    if not principal.has(needed):
        raise NotAllowed(f"only a {needed} or above may {what}")
    if not _may(ticket, principal, needed):
        raise NotAllowed(f"{principal.username} may {what} only on their own tickets")


def _checked(ticket: Ticket, name: str, value: Any) -> Any:
    if name in ("notes",):
        if not isinstance(value, str):
            raise Invalid("notes are text")
        return value
    if name in ("category", "unit", "related_to"):
        if value is None or value == "":
            return None
        if not isinstance(value, str) or len(value) > _LENGTHS[name]:
            raise Invalid(f"{name} is text of at most {_LENGTHS[name]} characters")
        if name == "related_to" and value == ticket.id:
            raise Invalid("a ticket cannot be related to itself")
        return value
    if name in ("caller_name", "language"):
        if not isinstance(value, str) or len(value) > _LENGTHS[name]:
            raise Invalid(f"{name} is text of at most {_LENGTHS[name]} characters")
        return value
    if name == "priority":
        try:
            return Priority(value)
        except ValueError:
            raise Invalid(f"unknown priority {value!r}") from None
    if name == "urgent":
        if not isinstance(value, bool):
            raise Invalid("urgent is true or false")
        return value
    if name == "due_at":
        if value is not None and not isinstance(value, datetime):
            raise Invalid("due_at is a date and time")
        _aware(value, "due_at")
        return value
    raise Invalid(f"{name!r} cannot be edited")  # pragma: no cover (EDITABLE is checked first)


def _aware(value: datetime | None, name: str) -> None:
    if value is not None and value.tzinfo is None:
        raise Invalid(f"{name} has no time zone")


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value
