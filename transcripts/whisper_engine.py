"""Whisper (faster-whisper, CTranslate2 int8 on CPU): any language, one final per utterance.

Whisper is not a streaming recognizer: it transcribes a finished stretch of audio. A stream's
recognizer therefore runs the energy VAD (``transcripts.vad``) on what it is fed and, each time
an utterance ends (500 ms of silence, or 15 s of speech), transcribes it and returns one final
``Result`` for it, in stream time. **There are no partials from Whisper**: the first text of an
utterance comes once it has ended, plus the decoding time.

Language, per utterance: a multilingual model detects it, among the languages this engine was
set up for (so a bad line is not taken for Thai); when the best of them is below 0.5, the
call's language given to ``recognizer(language)`` is used. An English-only model (tiny.en)
always answers "en".

Decoding: greedy (``beam_size=1``), one pass at temperature 0 (no sampling retries: the cost is
bounded and the same audio gives the same text), word timestamps, nothing carried over from the
previous utterance (``condition_on_previous_text=False``), no Silero VAD (ours has cut already).

Cost measured on this project's machines (2 cores, base, int8, one core per job): ≈2.0 CPU-s
for the 4.6 s flite sentence (≈0.45 CPU-s per audio second), ≈1.0 of it language detection,
which is a second encoder pass; Whisper encodes a 30 s window whatever the length, so a short
utterance costs nearly as much as a long one.

Threads: one ``WhisperModel`` is shared; CTranslate2 runs up to ``threads`` (``num_workers``)
jobs at once, each on one core (``cpu_threads=1``), and queues the rest. Seen here with
threads=2: two utterances transcribed at once from two threads took 2.0 s wall against 1.85 s
for one alone, with the same text; a third one at once waited its turn (3.2 s wall).
Recognizers hold only VAD state: there is no pool, ``release`` just lets one go.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from transcripts.engine import Result, Word
from transcripts.vad import Utterance, Vad

DETECTION_THRESHOLD = 0.5


def choose_language(
    probabilities: Iterable[tuple[str, float]], candidates: frozenset[str], fallback: str
) -> str:
    """The most probable candidate language, or ``fallback`` when it is below the threshold."""
    best, best_p = fallback, -1.0
    for language, p in probabilities:
        if (not candidates or language in candidates) and p > best_p:
            best, best_p = language, p
    return best if best_p >= DETECTION_THRESHOLD else fallback


def load_model(model_dir: Path, threads: int) -> Any:
    """A faster-whisper model from a local folder; never reaches for a model hub."""
    if not (model_dir / "model.bin").is_file():
        raise FileNotFoundError(f"Whisper model folder {model_dir} not found (no model.bin)")
    os.environ["HF_HUB_OFFLINE"] = "1"  # a missing tokenizer.json must fail, not download
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]

    return WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=1, num_workers=threads)


class WhisperRecognizer:
    """One stream: VAD state and the call's language; not thread-safe (one stream, one thread)."""

    def __init__(self, engine: WhisperEngine, language: str) -> None:
        self.engine = engine
        self.language = language
        self._vad = Vad()

    def feed(self, pcm: bytes) -> list[Result]:
        """Finals for the utterances that ended within this audio (decoded now, in this thread)."""
        return self.engine.transcribe_utterances(self._vad.feed(pcm), self.language)

    def finish(self) -> list[Result]:
        return self.engine.transcribe_utterances(self._vad.flush(), self.language)


class WhisperEngine:
    """Implements ``transcripts.engine.Engine`` with one faster-whisper model for all languages."""

    name = "whisper"

    def __init__(self, model_dir: Path, threads: int, languages: frozenset[str]) -> None:
        self.model_dir = model_dir
        self._model = load_model(model_dir, threads)
        self.multilingual = bool(self._model.model.is_multilingual)
        self._languages = languages

    def languages(self) -> frozenset[str]:
        return self._languages

    def recognizer(self, language: str) -> WhisperRecognizer:
        if language not in self._languages:
            raise ValueError(f"Whisper was not set up for language {language!r}")
        return WhisperRecognizer(self, language)

    def release(self, recognizer: object) -> None:
        if not isinstance(recognizer, WhisperRecognizer) or recognizer.engine is not self:
            raise ValueError("not a recognizer of this engine")

    def transcribe(self, pcm: bytes, language: str) -> list[Result]:
        """A whole recording, cut by the VAD as a live stream would be."""
        vad = Vad()
        return self.transcribe_utterances(vad.feed(pcm) + vad.flush(), language)

    def transcribe_utterances(self, utterances: Sequence[Utterance], fallback: str) -> list[Result]:
        results = (self.transcribe_utterance(u, fallback) for u in utterances)
        return [r for r in results if r is not None]

    def detect(self, audio: np.ndarray[Any, Any], fallback: str) -> str:
        if not self.multilingual:
            return "en"
        _, _, probabilities = self._model.detect_language(audio=audio)
        return choose_language(probabilities, self._languages, fallback)

    def transcribe_utterance(self, utterance: Utterance, fallback: str) -> Result | None:
        """One utterance's final, in stream time; None when Whisper heard no words."""
        audio = np.frombuffer(utterance.pcm, dtype="<i2").astype(np.float32) / 32768.0
        if audio.size == 0:
            return None
        language = self.detect(audio, fallback)
        segments, _ = self._model.transcribe(
            audio,
            language=language,
            beam_size=1,
            temperature=0.0,
            vad_filter=False,
            word_timestamps=True,
            condition_on_previous_text=False,
        )
        texts: list[str] = []
        words: list[Word] = []
        for segment in segments:
            texts.append(segment.text.strip())
            words += self._words(segment.words or [], utterance, words[-1].start if words else None)
        text = " ".join(t for t in texts if t)
        if not text:
            return None
        return Result(
            text=text,
            final=True,
            start=words[0].start if words else utterance.start,
            end=words[-1].end if words else utterance.end,
            confidence=sum(w.confidence for w in words) / len(words) if words else None,
            language=language,
            words=tuple(words),
        )

    @staticmethod
    def _words(raw: Iterable[Any], utterance: Utterance, after: float | None) -> list[Word]:
        """Whisper's words moved to stream time, kept inside the utterance and in order."""
        words = []
        floor = utterance.start if after is None else after
        for w in raw:
            text = str(w.word).strip()
            if not text:
                continue
            start = min(max(utterance.start + float(w.start), floor), utterance.end)
            end = min(max(utterance.start + float(w.end), start), utterance.end)
            words.append(Word(text, round(start, 3), round(end, 3), float(w.probability)))
            floor = start
        return words
