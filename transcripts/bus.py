"""Live transcript notices (partials as people speak, finals once stored) for whoever listens:
the agent's and supervisors' event streams, and escalation in-process.

Listeners are plain callables run inline; each must be quick and must not raise into the
pipeline (a listener that raises is logged and kept). Partials are never stored: a listener
that was not there when they were said does not get them again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from transcripts.models import Speaker

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TranscriptNotice:
    call_id: str
    speaker: Speaker
    agent_id: str  # the agent on the call (the agent side's speaker, or who hears the caller)
    final: bool
    text: str  # redacted as configured
    start: datetime
    end: datetime
    language: str
    engine: str
    confidence: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "type": "transcript",
            "call_id": self.call_id,
            "speaker": str(self.speaker),
            "agent_id": self.agent_id or None,
            "final": self.final,
            "text": self.text,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "language": self.language,
            "engine": self.engine,
            "confidence": self.confidence,
        }


Listener = Callable[[TranscriptNotice], None]


class Bus:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Hear every notice from now on; returns a function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def publish(self, notice: TranscriptNotice) -> None:
        for listener in list(self._listeners):
            try:
                listener(notice)
            except Exception:
                log.exception("transcript_listener_failed", call_id=notice.call_id)
