"""Incidents, their timeline, and the page outbox.

``incident`` holds one urgent case and where its escalation stands (level, loop, timers as
absolute times), so a restart picks every timer up where it was. ``incident_event`` is its
timeline: signals with their evidence, pages, deliveries, acknowledgements, escalations,
resolution; append-only (the database refuses UPDATE and DELETE, as for tickets).

``page`` is the durable outbox: a page is written (``pending``) before anything is sent, marked
``sending`` with its try counted before the try, and marked with the outcome after it. Its
``key`` is unique (the incident, the paging round, the target and the channel), so the same
page can never be queued twice, and it is the idempotency key a receiver dedups on.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hotline.models import UtcDateTime, new_id, utcnow


class Status(StrEnum):
    triggered = "triggered"  # paging up the levels until someone acknowledges
    acknowledged = "acknowledged"  # someone has it; re-paged if not resolved within ack_expiry
    resolved = "resolved"


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class EventKind(StrEnum):
    opened = "opened"
    signal = "signal"  # an urgency signal with its evidence (a new one on an open incident too)
    paged = "paged"  # a level's pages were queued
    sent = "sent"  # one page left (a webhook accepted, a desk's phone rang, an SMS gateway took it)
    failed = "failed"  # one try failed (retried while the incident is open, unless permanent)
    answered = "answered"  # a desk picked up the voice page (not yet an acknowledgement)
    acknowledged = "acknowledged"
    passed = "passed"  # a desk pressed "pass to the next team"
    escalated = "escalated"  # to the next level, the next loop, or (exhausted) again
    ack_expired = "ack_expired"  # acknowledged and not resolved in time: paging again
    resolved = "resolved"
    note = "note"
    callback = "callback"  # duty of care: the caller is being called back


class PageState(StrEnum):
    pending = "pending"  # written, waiting for its (next) try
    sending = "sending"  # a try is under way (counted before it started)
    sent = "sent"  # delivered to the channel; waiting for an acknowledgement (or none comes)
    answered = "answered"  # a voice page picked up; the desk is hearing it
    acknowledged = "acknowledged"
    passed = "passed"
    failed = "failed"  # gave up: a permanent failure, or every try failed
    cancelled = "cancelled"  # the incident was acknowledged or resolved first


class Incident(SQLModel, table=True):
    __tablename__ = "incident"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    call_id: str | None = Field(default=None, foreign_key="call.id", index=True, max_length=32)
    caller_number: str = Field(default="", max_length=64)
    province: str | None = Field(default=None, max_length=64)
    category: str = Field(max_length=64)
    severity: Severity = Field(sa_type=sa.String(16))
    silent: bool = False  # the caller cannot speak: no prompt they could be overheard by
    summary: str = Field(default="", sa_type=sa.Text)
    ticket: str | None = Field(default=None, max_length=24)  # the case number, once there is one
    policy: str = Field(max_length=64)
    status: Status = Field(default=Status.triggered, index=True, sa_type=sa.String(16))
    # Where escalation stands (see escalation.service.Escalation); times are absolute.
    level: int = 0
    loop: int = 0
    round: int = 0  # paging rounds so far: part of every page's key
    level_since: datetime = Field(sa_type=UtcDateTime)
    paged_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    acked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    exhausted: bool = False
    next_at: datetime | None = Field(default=None, index=True, sa_type=UtcDateTime)
    opened_at: datetime = Field(default_factory=utcnow, index=True, sa_type=UtcDateTime)
    acked_by: str | None = Field(default=None, max_length=128)
    resolved_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    resolved_by: str | None = Field(default=None, max_length=128)
    version: int = 1


class IncidentEvent(SQLModel, table=True):
    __tablename__ = "incident_event"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", index=True, max_length=32)
    at: datetime = Field(sa_type=UtcDateTime)
    kind: EventKind = Field(sa_type=sa.String(16))
    by: str = Field(default="system", max_length=128)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


class Page(SQLModel, table=True):
    __tablename__ = "page"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    incident_id: str = Field(foreign_key="incident.id", index=True, max_length=32)
    key: str = Field(index=True, unique=True, max_length=160)
    round: int
    level: int
    loop: int
    target: str = Field(max_length=64)
    channel: str = Field(max_length=16)
    state: PageState = Field(default=PageState.pending, index=True, sa_type=sa.String(16))
    tries: int = 0
    next_try_at: datetime = Field(default_factory=utcnow, index=True, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    detail: str = Field(default="", max_length=512)
    token: str = Field(index=True, unique=True, max_length=64)  # in the ack link; never logged
    code: str = Field(max_length=8)  # read or typed back to acknowledge
