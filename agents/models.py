"""What is stored about agents: every presence change, so reports survive restarts."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from hotline.models import UtcDateTime, new_id, utcnow


class AgentEvent(SQLModel, table=True):
    __tablename__ = "agent_event"

    id: int | None = Field(default=None, primary_key=True)
    agent_id: str = Field(index=True, max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)
    before: str = Field(max_length=16)
    after: str = Field(max_length=16)
    reason: str = Field(default="", max_length=64)
    call_id: str | None = Field(default=None, max_length=32)
    by: str = Field(default="", max_length=64)  # who asked, when not the agent (a supervisor)


class Callback(SQLModel, table=True):
    """A caller who chose to be called back rather than wait on the line; they keep their place.

    waiting -> dialling (an agent took it; the caller's number is ringing) -> connected, or back
    to waiting after a failed attempt, or failed once the attempts are used up.
    """

    __tablename__ = "callback"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    call_id: str = Field(foreign_key="call.id", index=True, max_length=32)  # the call that asked
    number: str = Field(max_length=64)
    queue: str = Field(max_length=64)
    language: str = Field(default="", max_length=8)
    urgent: bool = False
    waiting_since: datetime = Field(sa_type=UtcDateTime)  # first joined a queue: their place
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    status: str = Field(default="waiting", max_length=16, index=True)
    attempts: int = 0
    outbound_call_id: str | None = Field(default=None, max_length=32)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class AgentState(SQLModel, table=True):
    """Each agent's presence as it stands, and the pause or logout they asked for during a call:
    what a restart brings back (``agent_event`` is the history; this is the present)."""

    __tablename__ = "agent_state"

    agent_id: str = Field(primary_key=True, max_length=64)
    presence: str = Field(max_length=16)
    reason: str = Field(default="", max_length=64)
    pending: str | None = Field(default=None, max_length=16)
    pending_reason: str = Field(default="", max_length=64)
    call_id: str | None = Field(default=None, max_length=32)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
