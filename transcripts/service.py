"""From engine results to what is kept and shown: redaction, segments stored as they are
finalised, live notices, the live capacity per engine, and the figures a supervisor watches.

No ARI here: ``transcripts.stasis`` decides where audio comes from; this decides what becomes of it.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlmodel import col, select

from hotline.clock import SYSTEM, Clock
from hotline.db import Store
from transcripts.bus import Bus, TranscriptNotice
from transcripts.engine import Engine, Result
from transcripts.models import Mode, Speaker, TranscriptSegment
from transcripts.redaction import Redactor


class Capacity:
    """Live streams per engine. Beyond the limit a side is not decoded live (which would make every
    stream lag) but recorded and transcribed after the call."""

    def __init__(self, limits: Mapping[str, int]) -> None:
        self.limits = dict(limits)
        self.in_use: Counter[str] = Counter()

    def take(self, engine: str) -> bool:
        if self.in_use[engine] >= self.limits.get(engine, 0):
            return False
        self.in_use[engine] += 1
        return True

    def give(self, engine: str) -> None:
        self.in_use[engine] = max(0, self.in_use[engine] - 1)


@dataclass
class Figures:
    """Counters since start and recent lags, for ``/api/transcripts/status`` and the bench."""

    lags: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    counts: Counter[str] = field(default_factory=Counter)

    def lag_p95_ms(self) -> float | None:
        if not self.lags:
            return None
        ordered = sorted(self.lags)
        return round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 1)


@dataclass(frozen=True, slots=True)
class Speaking:
    """Who a stream's results belong to."""

    call_id: str
    speaker: Speaker
    agent_id: str  # the agent on the call, if any (for the agent side: the speaker)


class Transcriber:
    def __init__(
        self,
        store: Store,
        redactor: Redactor,
        bus: Bus,
        *,
        keep_raw: bool,
        clock: Clock = SYSTEM,
    ) -> None:
        self.store = store
        self.redactor = redactor
        self.bus = bus
        self.keep_raw = keep_raw
        self.clock = clock
        self.figures = Figures()

    def result(
        self, who: Speaking, result: Result, start: datetime, end: datetime, engine: str, lag: float
    ) -> None:
        """A result from a live stream: a partial is only shown; a final is stored, then shown."""
        if not result.text.strip():
            return
        if not result.final:
            self.figures.lags.append(lag)
            self.figures.counts["partials"] += 1
            self.bus.publish(
                self._notice(who, result, start, end, engine, self.redactor.redact(result.text).text)
            )
            return
        if engine == "whisper":  # no partials: a final's lag is what an agent waits for the text
            self.figures.lags.append(lag)
        segment = self._segment(who, result, start, end, engine, Mode.live)
        notice = self._notice(who, result, start, end, engine, segment.text)
        self.figures.counts["segments"] += 1
        # Committed at once (not within the batch window): a crash loses at most what is being said.
        self.store.behind.add(segment, lambda: self.bus.publish(notice), soon=True)

    async def after_call(
        self,
        who: Speaking,
        engine: Engine,
        pool: Executor,
        pcm: bytes,
        language: str,
        started_at: datetime,
    ) -> int:
        """Transcribe a whole recording and store its segments; returns how many."""
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(pool, engine.transcribe, pcm, language)
        segments = [
            self._segment(
                who,
                r,
                started_at + timedelta(seconds=r.start),
                started_at + timedelta(seconds=r.end),
                engine.name,
                Mode.after_call,
            )
            for r in results
            if r.final and r.text.strip()
        ]
        async with self.store.session() as session:
            session.add_all(segments)
            await session.commit()
        self.figures.counts["after_call_segments"] += len(segments)
        return len(segments)

    def _segment(
        self, who: Speaking, result: Result, start: datetime, end: datetime, engine: str, mode: Mode
    ) -> TranscriptSegment:
        redacted = self.redactor.redact(result.text.strip())
        return TranscriptSegment(
            call_id=who.call_id,
            speaker=who.speaker,
            agent_id=who.agent_id if who.speaker is Speaker.agent else "",
            start_at=start,
            end_at=max(end, start),
            text=redacted.text,
            raw_text=result.text.strip() if self.keep_raw and redacted.found else None,
            confidence=result.confidence,
            engine=engine,
            language=result.language,
            mode=mode,
            redacted=sorted(set(redacted.found)),
        )

    def _notice(
        self, who: Speaking, result: Result, start: datetime, end: datetime, engine: str, text: str
    ) -> TranscriptNotice:
        return TranscriptNotice(
            call_id=who.call_id,
            speaker=who.speaker,
            agent_id=who.agent_id,
            final=result.final,
            text=text,
            start=start,
            end=end,
            language=result.language,
            engine=engine,
            confidence=result.confidence,
        )


def as_text(segments: Iterable[TranscriptSegment], tz: tzinfo = UTC) -> str:
    """The plain-text transcript: one line per segment, local time and speaker first (Turkish
    labels first, as agents read them)."""
    labels = {Speaker.caller: "Arayan/Caller", Speaker.agent: "Temsilci/Agent"}
    lines = []
    for s in segments:
        who = labels[Speaker(s.speaker)] + (f" {s.agent_id}" if s.agent_id else "")
        text = " ".join(s.text.split())  # one line per segment, whatever the engine wrote
        lines.append(f"[{s.start_at.astimezone(tz):%H:%M:%S}] {who}: {text}")
    return "\n".join(lines) + ("\n" if lines else "")


async def caller_said(store: Store, call_id: str) -> str:
    """Everything the caller said on a call, in order (for a ticket's category hint)."""
    async with store.session() as session:
        rows = await session.exec(
            select(TranscriptSegment.text)
            .where(TranscriptSegment.call_id == call_id, TranscriptSegment.speaker == Speaker.caller)
            .order_by(col(TranscriptSegment.start_at))
        )
        return " ".join(rows.all())


def status(capacity: Capacity, figures: Figures, extra: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "live_streams": dict(capacity.in_use),
        "max_streams": capacity.limits,
        "lag_p95_ms": figures.lag_p95_ms(),
        "counts": dict(figures.counts),
        **extra,
    }
