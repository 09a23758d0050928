"""The call record every domain package acts on, and its auditable timeline."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite keeps no zone, so it is restored on read)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; use hotline.models.utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def new_id() -> str:
    return uuid.uuid4().hex


class CallOutcome(StrEnum):
    completed = "completed"  # the caller was served (talked to an agent) and the call ended
    abandoned = "abandoned"  # the caller hung up while waiting for an agent
    failed = "failed"  # our side could not serve the call (logged with the reason)
    recovered = "recovered"  # the channel was gone when we came back after a restart
    fallback = "fallback"  # handed to the dialplan fallback (rings agents) as the hotline stopped
    abandoned_in_ivr = "abandoned_in_ivr"  # the caller hung up before choosing
    voicemail = "voicemail"  # the queue was closed and the caller left (or tried to leave) a message
    callback = "callback"  # the caller chose to be called back, keeping their place (see Callback)


class CallEventKind(StrEnum):
    """Every kind of entry on a call's timeline (``CallEvent.kind``); reports and tickets read them."""

    # the call
    stasis_start = "stasis_start"
    stasis_end = "stasis_end"
    ended = "ended"
    answered = "answered"
    urgent = "urgent"
    hangup_request = "hangup_request"
    error = "error"
    # the IVR
    dtmf = "dtmf"
    prompt = "prompt"
    direct = "direct"
    repeat_caller = "repeat_caller"
    open_ticket_told = "open_ticket_told"  # a repeat caller heard their open case's number
    ivr_done = "ivr_done"
    voicemail = "voicemail"
    handed_to_queue = "handed_to_queue"
    handed_to_fallback = "handed_to_fallback"
    readopted = "readopted"
    readopted_talking = "readopted_talking"
    lost_while_disconnected = "lost_while_disconnected"
    # the queues
    queued = "queued"
    queue_full = "queue_full"
    overflow = "overflow"
    offered = "offered"
    agent_no_answer = "agent_no_answer"
    agent_connected = "agent_connected"
    connect_failed = "connect_failed"
    abandoned_in_queue = "abandoned_in_queue"
    announced = "announced"
    reprioritised = "reprioritised"
    transferred = "transferred"
    readopted_with_agent = "readopted_with_agent"
    agent_left_while_away = "agent_left_while_away"
    # call backs
    callback_requested = "callback_requested"
    callback_waiting = "callback_waiting"
    callback_dialling = "callback_dialling"
    callback_attempt_failed = "callback_attempt_failed"
    callback_failed = "callback_failed"
    callback_of = "callback_of"
    callback_connected = "callback_connected"
    callback_resumed = "callback_resumed"
    callback_refused = "callback_refused"  # a number that may not be dialled back (toll fraud)
    # supervision
    spy_requested = "spy_requested"
    spy_connected = "spy_connected"
    spy_ended = "spy_ended"
    # transcripts
    transcript_started = "transcript_started"  # a speaker's live stream (engine, language)
    transcript_degraded = "transcript_degraded"  # beyond live capacity: recorded, transcribed later
    transcript_failed = "transcript_failed"  # capture could not start; the call goes on untouched
    transcribed_after_call = "transcribed_after_call"
    recording_started = "recording_started"
    # tickets
    ticket_created = "ticket_created"
    # our own failures (see hotline.callflow)
    step_failed = "step_failed"
    step_recovered = "step_recovered"
    recovery_failed = "recovery_failed"


# Timeline entries that put an agent on the call (their data names the agent).
AGENT_ON_CALL = frozenset(
    {CallEventKind.agent_connected, CallEventKind.readopted_with_agent, CallEventKind.callback_connected}
)


class Call(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    channel_id: str = Field(index=True, unique=True, max_length=128)
    caller_number: str = Field(default="", max_length=64, index=True)
    caller_name: str = Field(default="", max_length=128)
    extension: str = Field(default="", max_length=32)
    language: str = Field(default="", max_length=8)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)
    outcome: str | None = Field(default=None, max_length=32)
    hangup_cause: int | None = None
    # What the IVR learned: where the caller is going, on which subject, and whether it is urgent.
    queue: str | None = Field(default=None, max_length=64)
    category: str | None = Field(default=None, max_length=64)
    urgent: bool = Field(default=False, index=True)
    voicemail: str | None = Field(default=None, max_length=128)  # recording name, when one was left


class CallEvent(SQLModel, table=True):
    __tablename__ = "call_event"

    id: int | None = Field(default=None, primary_key=True)
    call_id: str = Field(foreign_key="call.id", index=True, max_length=32)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    kind: str = Field(max_length=64)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


class WebUser(SQLModel, table=True):
    """A person who signs in to the web desktop; roles and passwords live in ``hotline.auth``."""

    __tablename__ = "web_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=64)
    display_name: str = Field(default="", max_length=128)
    role: str = Field(max_length=16)  # agent | supervisor | admin
    agent_id: str | None = Field(default=None, index=True, max_length=64)  # the [[agents]] id this user is
    password_hash: str = Field(max_length=255)
    disabled: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class WebSession(SQLModel, table=True):
    """A signed-in browser or API client. Only the SHA-256 of the token is stored."""

    __tablename__ = "web_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="web_user.id", ondelete="CASCADE", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime, index=True)  # the absolute end, whatever the activity
