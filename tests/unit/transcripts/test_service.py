"""From results to segments and text: capacity, the plain-text transcript."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from transcripts.models import Speaker, TranscriptSegment
from transcripts.service import Capacity, Figures, as_text


def segment(speaker: Speaker, text: str, hour: int, agent_id: str = "") -> TranscriptSegment:
    at = datetime(2026, 12, 1, hour, 0, 2, tzinfo=UTC)
    return TranscriptSegment(
        call_id="c1", speaker=speaker, agent_id=agent_id, start_at=at, end_at=at, text=text,
        engine="vosk", language="tr",
    )  # fmt: skip


def test_the_text_transcript_reads_in_local_time_one_line_per_segment() -> None:
    text = as_text(
        [segment(Speaker.caller, "yardım edin\nlütfen", 9), segment(Speaker.agent, "sakin olun", 9, "9001")],
        ZoneInfo("Europe/Istanbul"),
    )
    assert (
        text == "[12:00:02] Arayan/Caller: yardım edin lütfen\n[12:00:02] Temsilci/Agent 9001: sakin olun\n"
    )
    assert as_text([]) == ""


def test_capacity_is_per_engine_and_given_back() -> None:
    capacity = Capacity({"vosk": 2, "whisper": 0})
    assert capacity.take("vosk") and capacity.take("vosk")
    assert not capacity.take("vosk")  # the third stream would make every stream lag
    assert not capacity.take("whisper") and not capacity.take("unknown")
    capacity.give("vosk")
    assert capacity.take("vosk")
    capacity.give("whisper")  # never below zero
    assert capacity.in_use["whisper"] == 0


def test_lag_p95_is_of_the_recent_lags() -> None:
    figures = Figures()
    assert figures.lag_p95_ms() is None
    figures.lags.extend([0.1] * 95 + [2.0] * 5)
    assert figures.lag_p95_ms() == 2000.0
    figures.lags.extend([0.1] * 2000)  # only the last 2000 are kept
    assert figures.lag_p95_ms() == 100.0
