"""What was said on a call: final segments per speaker, and the recordings kept of it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hotline.models import UtcDateTime


class Speaker(StrEnum):
    caller = "caller"
    agent = "agent"


class Mode(StrEnum):
    live = "live"  # decoded while the call went on
    after_call = "after_call"  # from the recording once it ended (beyond live capacity)


class TranscriptSegment(SQLModel, table=True):
    """One finalised utterance. Written as soon as the engine finalises it: a crash loses at most
    the utterance still being spoken. ``text`` is redacted as configured; ``raw_text`` is kept only
    where ``speech.keep_raw`` allows and is shown only to ``speech.raw_roles``."""

    __tablename__ = "transcript_segment"

    id: int | None = Field(default=None, primary_key=True)
    call_id: str = Field(foreign_key="call.id", index=True, max_length=32)
    speaker: Speaker = Field(sa_type=sa.String(16))
    agent_id: str = Field(default="", max_length=64)
    start_at: datetime = Field(sa_type=UtcDateTime)
    end_at: datetime = Field(sa_type=UtcDateTime)
    text: str = Field(sa_type=sa.Text)
    raw_text: str | None = Field(default=None, sa_type=sa.Text)
    confidence: float | None = None
    engine: str = Field(max_length=16)
    language: str = Field(max_length=8)
    mode: Mode = Field(default=Mode.live, sa_type=sa.String(16))
    redacted: list[str] = Field(default_factory=list, sa_type=sa.JSON)

    def shown(self, raw: bool) -> dict[str, Any]:
        """As the REST API and the desktop show it; the raw text only when ``raw`` is allowed."""
        shown: dict[str, Any] = {
            "speaker": self.speaker,
            "agent_id": self.agent_id or None,
            "start": self.start_at.isoformat(),
            "end": self.end_at.isoformat(),
            "text": self.text,
            "confidence": self.confidence,
            "engine": self.engine,
            "language": self.language,
            "mode": self.mode,
            "redacted": self.redacted,
        }
        if raw and self.raw_text is not None:
            shown["raw_text"] = self.raw_text
        return shown


class Recording(SQLModel, table=True):
    """A recording Asterisk keeps for a call (``name`` in its recording store), until it expires.
    ``pending``: still to be transcribed after the call (it was beyond the live capacity); the
    after-call work survives a restart because it is read from here."""

    __tablename__ = "recording"

    name: str = Field(primary_key=True, max_length=128)
    call_id: str = Field(foreign_key="call.id", index=True, max_length=32)
    side: str = Field(max_length=16)  # caller, agent or mixed
    agent_id: str = Field(default="", max_length=64)
    language: str = Field(default="", max_length=8)
    started_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime, index=True)
    pending: bool = Field(default=False, index=True)
    deleted: bool = False
