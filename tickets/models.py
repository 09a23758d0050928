"""Tickets (the case a call becomes), their append-only audit trail, and the yearly counter.

``ticket_event`` is append-only: the database itself refuses UPDATE and DELETE on it (triggers
created by migration 0009, on SQLite and on PostgreSQL), so no code path can rewrite history.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hotline.models import UtcDateTime, new_id, utcnow

PREFIX = "183"


def ticket_number(year: int, seq: int) -> str:
    """The number people read out on the phone: ``183-2026-000123``."""
    return f"{PREFIX}-{year}-{seq:06d}"


class Status(StrEnum):
    new = "new"
    assigned = "assigned"
    in_progress = "in_progress"
    answered = "answered"  # the unit's reply is on the ticket
    closed = "closed"
    reopened = "reopened"  # back to work after answered or closed


OPEN = frozenset(set(Status) - {Status.closed})  # still a live case (answered: waiting to be closed)


class EventKind(StrEnum):
    created = "created"
    status = "status"
    field = "field"
    comment = "comment"
    assigned = "assigned"
    reply = "reply"
    told = "told"


class Source(StrEnum):
    call = "call"
    voicemail = "voicemail"
    abandoned_urgent = "abandoned_urgent"
    walk_in = "walk_in"
    email = "email"


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"


class Told(StrEnum):
    """How (or whether) the citizen was told of the unit's reply."""

    phone = "phone"
    sms = "sms"
    email = "email"
    letter = "letter"
    unreachable = "unreachable"  # tried, could not be reached: still a recorded outcome


class Ticket(SQLModel, table=True):
    __tablename__ = "ticket"
    __table_args__ = (sa.Index("ix_ticket_year_seq", "year", "seq", unique=True),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    number: str = Field(index=True, unique=True, max_length=24)
    year: int
    seq: int
    version: int = 1  # raised by every change; a stale writer is refused (optimistic concurrency)
    call_id: str | None = Field(default=None, foreign_key="call.id", index=True, unique=True, max_length=32)
    source: Source = Field(sa_type=sa.String(32))
    caller_number: str = Field(default="", index=True, max_length=64)
    caller_name: str = Field(default="", max_length=128)
    language: str = Field(default="", max_length=8)
    ivr_path: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    category: str | None = Field(default=None, index=True, max_length=64)
    unit: str | None = Field(default=None, index=True, max_length=64)
    urgent: bool = Field(default=False, index=True)
    priority: Priority = Field(default=Priority.normal, sa_type=sa.String(16))
    status: Status = Field(default=Status.new, index=True, sa_type=sa.String(16))
    due_at: datetime | None = Field(default=None, index=True, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, index=True, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    created_by: str = Field(max_length=64)
    assigned_agent: str | None = Field(default=None, index=True, max_length=64)
    notes: str = Field(default="", sa_type=sa.Text)
    reply: str | None = Field(default=None, sa_type=sa.Text)
    reply_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    citizen_told: Told | None = Field(default=None, sa_type=sa.String(16))
    citizen_told_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    related_to: str | None = Field(default=None, foreign_key="ticket.id", index=True, max_length=32)


class TicketEvent(SQLModel, table=True):
    """One entry of a ticket's audit trail: who did what, when, and the value before and after."""

    __tablename__ = "ticket_event"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: str = Field(foreign_key="ticket.id", index=True, max_length=32)
    at: datetime = Field(sa_type=UtcDateTime)
    by: str = Field(max_length=64)
    kind: EventKind = Field(sa_type=sa.String(16))
    field: str | None = Field(default=None, max_length=32)
    before: Any = Field(default=None, sa_type=sa.JSON, nullable=True)
    after: Any = Field(default=None, sa_type=sa.JSON, nullable=True)
    comment: str | None = Field(default=None, sa_type=sa.Text)


class TicketCounter(SQLModel, table=True):
    """The last sequence number given out in ``year``; raised in the creating transaction."""

    __tablename__ = "ticket_counter"

    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    last: int = 0
