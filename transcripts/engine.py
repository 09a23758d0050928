"""What every speech engine offers the pipeline: feed 20 ms frames, get partial and final results.

Audio given to an engine is always 16 kHz, 16-bit signed, little-endian (native), mono PCM: the
capture decodes Asterisk's big-endian slin16 once, so engines never care where audio came from.

Engines are synchronous: the pipeline runs them in a bounded thread pool, one job per stream
at a time (a recognizer is not thread-safe), so the event loop never waits on decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

SAMPLE_RATE = 16000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 320
FRAME_BYTES = FRAME_SAMPLES * 2  # 640


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    start: float  # seconds since the stream's first frame
    end: float
    confidence: float


@dataclass(frozen=True, slots=True)
class Result:
    """A partial (the sentence so far, replaced by the next one) or a final segment."""

    text: str
    final: bool
    start: float  # seconds since the stream's first frame
    end: float
    confidence: float | None  # mean word confidence of a final; None for partials
    language: str
    words: tuple[Word, ...] = ()


class Recognizer(Protocol):
    """One stream's decoder, kept warm for the stream's whole life."""

    def feed(self, pcm: bytes) -> list[Result]:
        """Decode more audio (any whole number of samples); results ready so far, in order."""
        ...

    def finish(self) -> list[Result]:
        """The stream ended: the final result for whatever speech is still open."""
        ...


class Engine(Protocol):
    name: str  # "vosk" or "whisper"

    def languages(self) -> frozenset[str]:
        """The languages this engine was set up for."""
        ...

    def recognizer(self, language: str) -> Recognizer:
        """A recognizer for a new live stream (warm where the engine keeps a pool)."""
        ...

    def release(self, recognizer: Recognizer) -> None:
        """A stream is done with its recognizer: reset and keep it warm for the next one."""
        ...

    def transcribe(self, pcm: bytes, language: str) -> list[Result]:
        """A whole recording at once (after the call): its final results."""
        ...
