"""Ticket lists: filters, newest first, paged by a keyset cursor.

``list_tickets(store, flt, now)`` answers one ``Page``: at most ``flt.limit`` (1 to 200) tickets
matching every filter set in ``flt``, newest first (``created_at``, then ``id``, both descending),
and the cursor of the next page, or None when this one is the last. Paging by keyset (the last
ticket's ``created_at`` and ``id``) costs the same on page 1 and page 1,000, and a ticket created
while someone pages never shifts what they see next: no ticket is shown twice or skipped.

The filters (unset ones do not filter):

* ``statuses``: any of these; ``category``, ``unit``, ``caller_number``, ``assigned_agent``: equal
  to (``caller_number`` as stored); ``urgent``: True or False.
* ``overdue``: past its deadline (``due_at < now``) and not yet answered or closed.
* ``created_from`` (included) to ``created_to`` (excluded).
* ``visible_to``: only the tickets of this principal, as ``tickets.service.is_own`` has it
  (assigned to their agent id, or opened by them, as for the calls they took). It always
  restricts: the caller sets it for agents and leaves it unset for supervisors.

Each common filter has an index that yields its tickets already newest first (migration 0010:
(status, created_at), (unit, created_at), ..., and for overdue a partial index of the unanswered
tickets), so a page reads about ``limit`` index entries, whatever the table's size.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from hotline.auth import Principal
from hotline.db import Store
from hotline.models import UtcDateTime
from tickets.errors import Invalid
from tickets.models import Status, Ticket

MAX_LIMIT = 200
# Still waiting for the unit's answer: a deadline runs. Spelled as this list (not "not answered
# or closed") so that the planner can prove the partial index of migration 0010 applies.
UNANSWERED = (Status.new, Status.assigned, Status.in_progress, Status.reopened)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page starts: just after (older than) this ticket."""

    created_at: datetime
    id: str


@dataclass(frozen=True, slots=True)
class TicketFilter:
    statuses: AbstractSet[Status] = field(default_factory=frozenset)  # kept as a frozenset
    category: str | None = None
    unit: str | None = None
    urgent: bool | None = None
    overdue: bool = False  # True: only overdue tickets; False: no filter
    created_from: datetime | None = None
    created_to: datetime | None = None
    caller_number: str | None = None
    assigned_agent: str | None = None
    visible_to: Principal | None = None
    limit: int = 50
    after: Cursor | None = None

    def __post_init__(self) -> None:
        if isinstance(self.statuses, str) or not isinstance(self.statuses, Iterable):
            raise Invalid("statuses is a set of statuses")
        try:
            statuses = frozenset(Status(s) for s in self.statuses)
        except ValueError:
            raise Invalid(f"unknown status in {sorted(self.statuses)}") from None
        object.__setattr__(self, "statuses", statuses)
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or not 0 < self.limit <= MAX_LIMIT:
            raise Invalid(f"limit is 1 to {MAX_LIMIT}")
        for name in ("created_from", "created_to"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise Invalid(f"{name} is a date and time with its time zone")
        if self.after is not None and self.after.created_at.tzinfo is None:
            raise Invalid("the cursor's time has no time zone")


@dataclass(frozen=True, slots=True)
class Page:
    tickets: list[Ticket]
    next: Cursor | None  # None: this is the last page


def conditions(flt: TicketFilter, now: datetime, *, own: bool = True) -> list[Any]:
    """The WHERE terms of ``flt`` on the ticket table (keyset cursor aside; ``own=False``: the
    visibility term too)."""
    table = Ticket.__table__  # type: ignore[attr-defined]
    c = table.c
    terms: list[Any] = []
    if flt.statuses:
        terms.append(c.status.in_(sorted(s.value for s in flt.statuses)))
    for name in ("category", "unit", "caller_number", "assigned_agent"):
        value = getattr(flt, name)
        if value is not None:
            terms.append(c[name] == value)
    if flt.urgent is not None:
        terms.append(c.urgent == flt.urgent)
    if flt.overdue:
        terms.append(c.status.in_([s.value for s in UNANSWERED]))
        terms.append(c.due_at < now)
    if flt.created_from is not None:
        terms.append(c.created_at >= flt.created_from)
    if flt.created_to is not None:
        terms.append(c.created_at < flt.created_to)
    if flt.visible_to is not None and own:
        terms.append(sa.or_(*owners(flt.visible_to)))
    return terms


def owners(principal: Principal) -> list[Any]:
    """The ways a ticket is ``principal``'s own (``tickets.service.is_own``), one term each."""
    c = Ticket.__table__.c  # type: ignore[attr-defined]
    terms = [c.created_by == principal.username]
    if principal.agent_id:
        terms.insert(0, c.assigned_agent == principal.agent_id)
    return terms


def after(cursor: Cursor) -> Any:
    """Older than ``cursor`` in the list's order. The plain ``created_at <=`` is redundant with the
    row comparison but lets every planner start the index scan at the cursor."""
    c = Ticket.__table__.c  # type: ignore[attr-defined]
    at = sa.bindparam(None, cursor.created_at, type_=UtcDateTime())
    return sa.and_(
        c.created_at <= at,
        sa.tuple_(c.created_at, c.id) < sa.tuple_(at, sa.bindparam(None, cursor.id, type_=sa.String())),
    )


def newest_first() -> tuple[Any, Any]:
    return col(Ticket.created_at).desc(), col(Ticket.id).desc()


def list_statement(flt: TicketFilter, now: datetime) -> SelectOfScalar[Ticket]:
    """The SELECT of one page, plus one ticket to tell whether another page follows.

    An agent's own tickets are the union of two lists, each read newest first from its own
    index ((assigned_agent, created_at) and (created_by, created_at)) and cut at the page size:
    one OR over both would make the database fetch and sort every ticket the agent ever had."""
    terms = conditions(flt, now, own=False)
    if flt.after is not None:
        terms.append(after(flt.after))
    if flt.visible_to is None:
        return select(Ticket).where(*terms).order_by(*newest_first()).limit(flt.limit + 1)
    c = Ticket.__table__.c  # type: ignore[attr-defined]
    branches = [
        sa.select(c.id, c.created_at)
        .where(*terms, way)
        .order_by(*newest_first())
        .limit(flt.limit + 1)
        .subquery()
        for way in owners(flt.visible_to)
    ]
    mine = sa.union(*(sa.select(branch) for branch in branches)).subquery("mine")
    return (
        select(Ticket).join(mine, col(Ticket.id) == mine.c.id).order_by(*newest_first()).limit(flt.limit + 1)
    )


async def list_tickets(store: Store, flt: TicketFilter, now: datetime) -> Page:
    if now.tzinfo is None:
        raise Invalid("now has no time zone")
    async with store.session() as session:
        found = list((await session.exec(list_statement(flt, now))).all())
    if len(found) <= flt.limit:
        return Page(found, None)
    last = found[flt.limit - 1]
    return Page(found[: flt.limit], Cursor(last.created_at, last.id))
