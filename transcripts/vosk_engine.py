"""Vosk (Kaldi) streaming recognition: partials as people speak, a final at each pause.

One ``vosk.Model`` per language is loaded once and shared by every recognizer (Vosk allows
that across threads). Recognizers are pooled per language: ``release`` resets one and keeps it
for the next stream, so a stream rarely pays for a new one (≈44 MB and a slow first utterance).

Cost measured on this project's machines (2 cores, Korean test model, 16 kHz, fed 20 ms frames,
a partial looked at after each): loading a model ≈1.2 s; decoding ≈0.07 CPU-s per audio
second once the words have been heard before, ≈0.16 for new words, partials adding ≈10 %.
A new recognizer's first stream costs ≈1.8 s more CPU (Kaldi fills its graph caches).
Warming each pooled recognizer at start with 0.5 s of silence and noise costs ≈0.5 s there and
takes ≈0.5 s off the first caller's stream (2.2 → 1.75 CPU-s for 6.6 s of audio); the rest
depends on the words actually spoken, so ``warm`` stays small.

Kaldi keeps counting time across streams, so each recognizer remembers how much audio it has
been fed and results are given in seconds since *its current stream* started (to the ms).

Results are reproducible (with ``--dither=0`` in the model's conf/mfcc.conf) between recognizers
with the same history; a recognizer's graph cache, filled by what it decoded before, can tip a
close call between two hypotheses, so a cold and a warmed one may differ in a word.

A recognizer is used by one thread at a time (the pipeline's one job per stream); the pool
itself is locked, so ``recognizer``/``release`` may be called from any thread.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import vosk  # type: ignore[import-untyped]

from transcripts.engine import FRAME_BYTES, SAMPLE_RATE, Result, Word

# Live audio is decoded in pieces of at most 100 ms, a partial looked at after each.
PIECE_BYTES = 5 * FRAME_BYTES
# Whole recordings are decoded in pieces of 1 s (no partials).
RECORDING_PIECE_BYTES = 50 * FRAME_BYTES


def warm_up_audio() -> bytes:
    """0.25 s of silence then 0.25 s of low noise: enough to make Kaldi build its first caches."""
    quiet = bytes(2 * SAMPLE_RATE // 4)
    noise = np.random.default_rng(0).normal(0, 1000, SAMPLE_RATE // 4).astype("<i2").tobytes()
    return quiet + noise


def _words(raw: list[dict[str, Any]], origin: float) -> tuple[Word, ...]:
    return tuple(
        Word(
            text=str(w["word"]),
            start=max(0.0, round(float(w["start"]) - origin, 3)),
            end=max(0.0, round(float(w["end"]) - origin, 3)),
            confidence=float(w.get("conf", 1.0)),
        )
        for w in raw
    )


class VoskRecognizer:
    """One stream's Kaldi recognizer; not thread-safe (one stream, one thread at a time)."""

    def __init__(self, model: Any, language: str) -> None:
        self.language = language
        self._kaldi = vosk.KaldiRecognizer(model, SAMPLE_RATE)
        # Word times on finals only: on every partial they cost about as much again as decoding
        # (measured with bench/transcribe_capacity.py); a partial starts where the last final ended.
        self._kaldi.SetWords(True)
        self._fed = 0  # samples ever given to Kaldi (it counts them across Reset())
        self._origin = 0  # samples fed before the current stream started
        self._last_partial = ""
        self._said_until = 0.0  # stream seconds: the end of the last final

    @property
    def position(self) -> float:
        """Seconds of the current stream fed so far."""
        return (self._fed - self._origin) / SAMPLE_RATE

    def feed(self, pcm: bytes) -> list[Result]:
        return self._decode(pcm, PIECE_BYTES, partials=True)

    def feed_recording(self, pcm: bytes) -> list[Result]:
        """Like ``feed`` without partials, in larger pieces: for whole recordings."""
        return self._decode(pcm, RECORDING_PIECE_BYTES, partials=False)

    def finish(self) -> list[Result]:
        self._last_partial = ""
        final = self._final(self._kaldi.FinalResult())
        return [final] if final else []

    def reset(self) -> None:
        """Forget the stream: the next audio fed is a new stream starting at 0 s.

        ``Reset()`` alone keeps Kaldi's feature pipeline, whose i-vector and CMN adaptation
        would carry the previous caller's voice into the next call (and make results depend on
        who called before). ``FinalResult()`` first drops that pipeline; the decoding graph's
        caches, which are what warming buys, stay.
        """
        self._kaldi.FinalResult()
        self._kaldi.Reset()
        self._origin = self._fed
        self._last_partial = ""
        self._said_until = 0.0

    def _decode(self, pcm: bytes, piece: int, partials: bool) -> list[Result]:
        results: list[Result] = []
        for offset in range(0, len(pcm), piece):
            chunk = pcm[offset : offset + piece]
            self._fed += len(chunk) // 2
            if self._kaldi.AcceptWaveform(chunk):
                self._last_partial = ""
                final = self._final(self._kaldi.Result())
                if final:
                    results.append(final)
            elif partials:
                partial = self._partial(self._kaldi.PartialResult())
                if partial:
                    results.append(partial)
        return results

    def _final(self, raw: str) -> Result | None:
        data = json.loads(raw)
        text = str(data.get("text", "")).strip()
        if not text:
            return None
        words = _words(data.get("result", []), self._origin / SAMPLE_RATE)
        self._said_until = words[-1].end if words else self.position
        if not words:  # SetWords(True) always gives them; be safe about an old libvosk
            return Result(text, True, self.position, self.position, None, self.language)
        return Result(
            text=text,
            final=True,
            start=words[0].start,
            end=words[-1].end,
            confidence=sum(w.confidence for w in words) / len(words),
            language=self.language,
            words=words,
        )

    def _partial(self, raw: str) -> Result | None:
        data = json.loads(raw)
        text = str(data.get("partial", "")).strip()
        if not text or text == self._last_partial:
            return None
        self._last_partial = text
        return Result(text, False, self._said_until, self.position, None, self.language)


class VoskEngine:
    """Implements ``transcripts.engine.Engine`` with Vosk models, one per language."""

    name = "vosk"

    def __init__(self, models: Mapping[str, Path], warm: int = 1) -> None:
        vosk.SetLogLevel(-2)  # errors only: -1 still prints a warning per odd partial lattice
        self._models: dict[str, Any] = {}
        for language, path in models.items():
            if not path.is_dir():
                raise FileNotFoundError(f"Vosk model folder {path} not found")
            try:
                self._models[language] = vosk.Model(str(path))
            except Exception as exc:  # libvosk says only "Failed to create a model"
                raise RuntimeError(f"{path}: not a Vosk model folder ({exc})") from None
        self._lock = threading.Lock()
        self._pools: dict[str, list[VoskRecognizer]] = {language: [] for language in self._models}
        warm_audio = warm_up_audio()
        for language, model in self._models.items():
            for _ in range(warm):
                recognizer = VoskRecognizer(model, language)
                recognizer.feed(warm_audio)
                recognizer.finish()
                recognizer.reset()
                self._pools[language].append(recognizer)

    def languages(self) -> frozenset[str]:
        return frozenset(self._models)

    def recognizer(self, language: str) -> VoskRecognizer:
        if language not in self._models:
            raise ValueError(f"no Vosk model for language {language!r}")
        with self._lock:
            pool = self._pools[language]
            if pool:
                return pool.pop()
        return VoskRecognizer(self._models[language], language)

    def release(self, recognizer: object) -> None:
        if not isinstance(recognizer, VoskRecognizer) or recognizer.language not in self._pools:
            raise ValueError("not a recognizer of this engine")
        recognizer.reset()
        with self._lock:
            self._pools[recognizer.language].append(recognizer)

    def pooled(self, language: str) -> int:
        """Warm recognizers waiting for a stream."""
        with self._lock:
            return len(self._pools[language])

    def transcribe(self, pcm: bytes, language: str) -> list[Result]:
        """A whole recording, with a recognizer of its own (a reset one from the pool)."""
        recognizer = self.recognizer(language)
        try:
            return recognizer.feed_recording(pcm) + recognizer.finish()
        finally:
            self.release(recognizer)
