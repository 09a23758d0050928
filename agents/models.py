"""What is stored about agents: every presence change, so reports survive restarts."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from hotline.models import UtcDateTime, utcnow


class AgentEvent(SQLModel, table=True):
    __tablename__ = "agent_event"

    id: int | None = Field(default=None, primary_key=True)
    agent_id: str = Field(index=True, max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)
    before: str = Field(max_length=16)
    after: str = Field(max_length=16)
    reason: str = Field(default="", max_length=64)
    call_id: str | None = Field(default=None, max_length=32)
