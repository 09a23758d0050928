"""Cuts a stream of 16 kHz PCM into utterances by energy: what Whisper needs to be fed live.

Pure and deterministic: the same audio gives the same cuts, whatever the sizes it is fed in.
Audio is looked at in 20 ms frames; a frame is *voiced* when its level (dBFS) is at least
``margin_db`` above an adaptive noise floor, and never below ``min_threshold_db``.

- The noise floor follows the quiet frames: down at once to a quieter frame, up slowly
  (``floor_rise``) to a louder quiet frame, and up by ``speech_floor_rise_db`` per second while
  frames are voiced, so a noise that steps up and stays is learnt rather than taken for speech.
- An utterance starts after ``start_ms`` of consecutive voiced frames; it begins ``preroll_ms``
  before the first of them (never before the stream or the previous utterance's end).
- It ends after ``end_ms`` of consecutive unvoiced frames; its audio stops ``tail_ms`` after
  the last voiced frame.
- An utterance reaching ``max_ms`` is cut there; if speech goes on, the next one starts at the cut.

Cost: one mean square per frame (numpy), a few microseconds; memory: the open utterance, at
most ``max_ms`` of audio (480 kB for 15 s).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from transcripts.engine import FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE

SILENCE_DB = -100.0  # the level of digital silence, so that arithmetic on levels stays finite
FULL_SCALE = 32768.0


@dataclass(frozen=True, slots=True)
class VadConfig:
    margin_db: float = 12.0
    min_threshold_db: float = -50.0
    initial_floor_db: float = -70.0
    floor_rise: float = 0.05  # fraction of the gap closed per quiet frame that is louder than the floor
    speech_floor_rise_db: float = 3.0  # per second of voiced frames
    start_ms: int = 60
    end_ms: int = 500
    max_ms: int = 15000
    preroll_ms: int = 200
    tail_ms: int = 200

    def frames(self, ms: int) -> int:
        return max(1, ms // FRAME_MS)


@dataclass(frozen=True, slots=True)
class Utterance:
    """One stretch of speech: its audio and where it lies in the stream, in samples."""

    start_sample: int
    end_sample: int
    pcm: bytes
    cut: bool = False  # ended by the length limit, not by silence

    @property
    def start(self) -> float:
        return self.start_sample / SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.end_sample / SAMPLE_RATE


def frame_level(frame: bytes) -> float:
    """The level of a frame of s16 LE samples in dBFS (SILENCE_DB for digital silence)."""
    samples = np.frombuffer(frame, dtype="<i2").astype(np.float64)
    if samples.size == 0:
        return SILENCE_DB
    power = float(np.mean(samples * samples)) / (FULL_SCALE * FULL_SCALE)
    return max(SILENCE_DB, 10.0 * math.log10(power)) if power > 0 else SILENCE_DB


class Vad:
    """An energy voice activity detector for one stream; not thread-safe (one stream, one user)."""

    def __init__(self, config: VadConfig | None = None) -> None:
        self.config = config or VadConfig()
        c = self.config
        self._start_frames = c.frames(c.start_ms)
        self._end_frames = c.frames(c.end_ms)
        self._max_frames = c.frames(c.max_ms)
        self._preroll_frames = c.frames(c.preroll_ms)
        self._tail_frames = c.frames(c.tail_ms)
        self._speech_rise = c.speech_floor_rise_db * FRAME_MS / 1000
        self.floor_db = c.initial_floor_db
        self._pending = b""  # bytes short of a whole frame
        self._frame_index = 0  # frames seen so far
        self._history: deque[bytes] = deque(maxlen=self._preroll_frames + self._start_frames)
        self._history_first = 0  # frame index of the history's first frame
        self._earliest = 0  # frame index an utterance may start at (after the previous one)
        self._voiced_run = 0
        self._in_speech = False
        self._frames: list[bytes] = []  # the open utterance's frames
        self._utterance_first = 0  # its first frame index
        self._last_voiced = 0  # frame index of its last voiced frame
        self._unvoiced_run = 0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def position(self) -> int:
        """Samples seen so far (whole frames)."""
        return self._frame_index * FRAME_SAMPLES

    def threshold_db(self) -> float:
        return max(self.floor_db + self.config.margin_db, self.config.min_threshold_db)

    def feed(self, pcm: bytes) -> list[Utterance]:
        """Look at more audio; the utterances that ended within it, in order."""
        data = self._pending + pcm
        whole = len(data) - len(data) % FRAME_BYTES
        self._pending = data[whole:]
        done: list[Utterance] = []
        for offset in range(0, whole, FRAME_BYTES):
            utterance = self._frame(data[offset : offset + FRAME_BYTES])
            if utterance is not None:
                done.append(utterance)
        return done

    def flush(self) -> list[Utterance]:
        """The stream ended: the open utterance, if speech had started (a partial frame is dropped)."""
        self._pending = b""
        if not self._in_speech:
            return []
        end = min(self._last_voiced + 1 + self._tail_frames, self._frame_index)
        return [self._close(end, cut=False)]

    def _frame(self, frame: bytes) -> Utterance | None:
        index = self._frame_index
        self._frame_index += 1
        level = frame_level(frame)
        voiced = level >= self.threshold_db()
        self._track_floor(level, voiced)
        if not self._in_speech:
            if len(self._history) == self._history.maxlen:
                self._history_first += 1
            self._history.append(frame)
            self._voiced_run = self._voiced_run + 1 if voiced else 0
            if self._voiced_run >= self._start_frames:
                self._open(first_voiced=index - self._start_frames + 1)
            return None
        self._frames.append(frame)
        if voiced:
            self._last_voiced = index
            self._unvoiced_run = 0
        else:
            self._unvoiced_run += 1
        if self._unvoiced_run >= self._end_frames:
            return self._close(self._last_voiced + 1 + self._tail_frames, cut=False)
        if len(self._frames) >= self._max_frames:
            utterance = self._close(self._frame_index, cut=True)
            if self._unvoiced_run == 0:  # still speaking: the next utterance starts here
                self._open(first_voiced=self._frame_index, preroll=False)
            return utterance
        return None

    def _track_floor(self, level: float, voiced: bool) -> None:
        if voiced:
            self.floor_db += self._speech_rise
        elif level < self.floor_db:
            self.floor_db = level
        else:
            self.floor_db += (level - self.floor_db) * self.config.floor_rise

    def _open(self, first_voiced: int, preroll: bool = True) -> None:
        if preroll:
            first = max(first_voiced - self._preroll_frames, self._earliest, self._history_first)
            self._frames = list(self._history)[first - self._history_first :]
        else:
            first, self._frames = first_voiced, []
        self._utterance_first = first
        self._in_speech = True
        self._last_voiced = self._frame_index - 1
        self._unvoiced_run = 0
        self._history.clear()
        self._voiced_run = 0

    def _close(self, end: int, cut: bool) -> Utterance:
        """The open utterance up to frame ``end`` (exclusive); frames after it go back to history."""
        keep = end - self._utterance_first
        frames, rest = self._frames[:keep], self._frames[keep:]
        utterance = Utterance(
            start_sample=self._utterance_first * FRAME_SAMPLES,
            end_sample=end * FRAME_SAMPLES,
            pcm=b"".join(frames),
            cut=cut,
        )
        self._in_speech = False
        self._frames = []
        self._earliest = end
        self._history.clear()
        for frame in rest[-(self._history.maxlen or 1) :]:
            self._history.append(frame)
        self._history_first = self._frame_index - len(self._history)
        self._voiced_run = 0
        self._unvoiced_run = 0
        return utterance
