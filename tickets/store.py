"""Tickets in the database: creation with its number, changes with their audit entries.

Each function is one transaction. ``create`` takes the year's next number, links the caller's
open ticket, and writes the ticket and its ``created`` entry together; ``apply`` writes the new
values and their entries together, or nothing.

Numbering is gap-free per year: the number comes from one atomic upsert of ``ticket_counter``
(``INSERT … ON CONFLICT (year) DO UPDATE SET last = last + 1 RETURNING last``) run as the first
statement of the creating transaction. The counter row stays locked until that transaction ends
(a row lock on PostgreSQL; SQLite's single writer lock, taken by that first write, so no read
snapshot can go stale), so concurrent creations queue on it, each sees the last committed value,
and a creation that fails rolls its increment back with it: no number is skipped or given twice.
The upsert also covers the first ticket of a year, when two creations race to insert the row.

Changes use optimistic concurrency: ``version`` is read with the ticket and the UPDATE is made
``WHERE version = <read>``; a writer that lost the race gets ``Conflict`` and nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hotline.auth import Principal
from hotline.db import Store
from hotline.models import Call
from tickets.errors import Conflict, NotFound
from tickets.models import OPEN, Ticket, TicketCounter, TicketEvent
from tickets.service import Change, Entry, NewTicket, check_new, decide, open_ticket, ticket_year


async def next_number(session: AsyncSession, year: int) -> int:
    """Raise the counter of ``year`` (creating it at 1) in the session's transaction; the new value."""
    table = TicketCounter.__table__  # type: ignore[attr-defined]
    connection = await session.connection()
    dialect: Any = sqlite if connection.dialect.name == "sqlite" else postgresql
    statement = (
        dialect.insert(table)
        .values(year=year, last=1)
        .on_conflict_do_update(index_elements=[table.c.year], set_={"last": table.c.last + 1})
        .returning(table.c.last)
    )
    return int((await connection.execute(statement)).scalar_one())


async def create(store: Store, new: NewTicket, by: str, now: datetime, zone: tzinfo = UTC) -> Ticket:
    """A new ticket numbered in the site's local year (``zone``), linked to the caller's latest
    open ticket. Raises ``Invalid`` for a malformed one, ``Conflict`` when the call already has
    a ticket, ``NotFound`` when the call does not exist."""
    check_new(new)
    year = ticket_year(now, zone)
    try:
        async with store.session() as session:
            seq = await next_number(session, year)  # first: takes the write lock (see above)
            related = await _latest_open(session, new.caller_number)
            ticket, entry = open_ticket(new, by, now, year, seq, related)
            session.add(ticket)
            await session.flush()
            session.add(_event(ticket.id, entry))
            await session.commit()
    except sa.exc.IntegrityError:
        if new.call_id is None:
            raise
        if await by_call(store, new.call_id) is not None:
            raise Conflict(f"call {new.call_id} already has a ticket") from None
        raise NotFound(f"no call {new.call_id}") from None
    return ticket


async def get(store: Store, ticket_id: str) -> Ticket:
    async with store.session() as session:
        ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"no ticket {ticket_id}")
    return ticket


async def by_number(store: Store, number: str) -> Ticket:
    async with store.session() as session:
        ticket = (await session.exec(select(Ticket).where(Ticket.number == number))).first()
    if ticket is None:
        raise NotFound(f"no ticket {number}")
    return ticket


async def by_call(store: Store, call_id: str) -> Ticket | None:
    async with store.session() as session:
        return (await session.exec(select(Ticket).where(Ticket.call_id == call_id))).first()


async def of_caller(store: Store, caller_number: str) -> list[Ticket]:
    """Every ticket of one caller, newest first (repeat callers)."""
    if not caller_number:
        return []
    async with store.session() as session:
        query = (
            select(Ticket)
            .where(Ticket.caller_number == caller_number)
            .order_by(col(Ticket.year).desc(), col(Ticket.seq).desc())
        )
        return list((await session.exec(query)).all())


async def apply(
    store: Store,
    ticket_id: str,
    change: Change,
    principal: Principal,
    now: datetime,
    version: int | None = None,
) -> Ticket:
    """Make ``change`` as ``principal`` (rules: ``tickets.service``) and record it; the ticket as
    it is now. ``version``: the one the user saw, refused with ``Conflict`` if it moved since."""
    return await apply_all(store, ticket_id, [change], principal, now, version)


async def apply_all(
    store: Store,
    ticket_id: str,
    changes: Sequence[Change],
    principal: Principal,
    now: datetime,
    version: int | None = None,
) -> Ticket:
    """Make ``changes`` in order, all or none: one version step, every audit entry, one transaction.
    A change that is refused (or a concurrent writer) leaves the ticket as it was."""
    async with store.session() as session:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            raise NotFound(f"no ticket {ticket_id}")
        session.expunge(ticket)  # written below with an explicit version check, never flushed
        read = ticket.version
        if version is not None and version != read:
            raise Conflict(f"{ticket.number} was changed by someone else; read it again")
        values: dict[str, Any] = {}
        entries: list[Entry] = []
        for change in changes:  # each judged on the ticket as the changes before it left it
            decision = decide(ticket, principal, change, now)
            related = decision.values.get("related_to")
            if related is not None and await session.get(Ticket, related) is None:
                raise NotFound(f"no ticket {related}")
            for name, value in decision.values.items():
                setattr(ticket, name, value)
            values |= decision.values
            entries += decision.entries
        if values:
            table = Ticket.__table__  # type: ignore[attr-defined]
            statement = (
                sa.update(table)
                .where(table.c.id == ticket.id, table.c.version == read)
                .values(**values, version=read + 1)
            )
            connection = await session.connection()  # Core: SQLModel's session.exec wants a select
            result = await connection.execute(statement)
            if result.rowcount != 1:
                raise Conflict(f"{ticket.number} was changed by someone else; read it again")
            ticket.version = read + 1
        for entry in entries:
            session.add(_event(ticket.id, entry))
        await session.commit()
    return ticket


async def events(store: Store, ticket_id: str) -> list[TicketEvent]:
    """A ticket's audit trail, oldest first."""
    async with store.session() as session:
        query = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(col(TicketEvent.id))
        return list((await session.exec(query)).all())


async def open_case(store: Store, caller_number: str) -> tuple[Ticket, str | None] | None:
    """The caller's latest case that is not closed (what the IVR tells them), and the queue of the
    call it came from (where its agent takes such calls; None for a case opened by hand)."""
    async with store.session() as session:
        latest = await _latest_open(session, caller_number)
        ticket = await session.get(Ticket, latest) if latest is not None else None
        if ticket is None:
            return None
        call = await session.get(Call, ticket.call_id) if ticket.call_id else None
        return ticket, call.queue if call is not None else None


async def _latest_open(session: AsyncSession, caller_number: str) -> str | None:
    if not caller_number:
        return None
    query = (
        select(Ticket.id)
        .where(Ticket.caller_number == caller_number, col(Ticket.status).in_([s.value for s in OPEN]))
        .order_by(col(Ticket.year).desc(), col(Ticket.seq).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


def _event(ticket_id: str, entry: Entry) -> TicketEvent:
    return TicketEvent(
        ticket_id=ticket_id,
        at=entry.at,
        by=entry.by,
        kind=entry.kind,
        field=entry.field,
        before=entry.before,
        after=entry.after,
        comment=entry.comment,
    )
