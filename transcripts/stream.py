"""One speaker's live stream: audio in as it arrives, results out, decoded off the event loop.

Audio is appended to a buffer by the RTP receiver; once ``batch_ms`` of it is there (100 ms:
decoding each 20 ms packet as its own job costs more CPU and keeps the second core idle, and
partials a tenth of a second later are still live), one worker task per stream hands everything
buffered to the shared thread pool as one job, so a stream never has more than one job queued
(the pool's queue is bounded by the number of streams) and a stream that falls behind catches up
in bigger jobs rather than in more of them. Inside a job the audio is fed in slices of
``slice_ms`` so an engine with partials still produces them at a steady pace.

``lag`` is, per job, the time from the arrival of its oldest audio to its results being ready (the
batching wait included): the most any word in it waited beyond the speaker's own pace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import datetime, timedelta

import structlog

from transcripts.engine import FRAME_BYTES, Engine, Recognizer, Result

log = structlog.get_logger(__name__)

Sink = Callable[["LiveStream", Result, float], None]  # (stream, result, lag in seconds)


class LiveStream:
    def __init__(
        self,
        engine: Engine,
        language: str,
        pool: Executor,
        sink: Sink,
        *,
        slice_ms: int = 200,
        batch_ms: int = 100,
        now: Callable[[], datetime],
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.engine = engine
        self.language = language
        self.started_at: datetime | None = None  # the first audio's arrival: time zero of results
        self.failed = False
        self._on_failure = on_failure
        self._pool = pool
        self._sink = sink
        self._slice = FRAME_BYTES * slice_ms // 20
        self._batch = FRAME_BYTES * batch_ms // 20
        self._now = now
        self._buffer = bytearray()
        self._arrived = 0.0
        self._wake = asyncio.Event()
        self._closing = False
        self._recognizer: Recognizer | None = None
        self._task = asyncio.create_task(self._run(), name="transcript-stream")

    def audio(self, pcm: bytes) -> None:
        """New audio (16 kHz s16le); cheap, called per RTP packet."""
        if self._closing or self.failed:
            return
        if self.started_at is None:
            self.started_at = self._now()
        if not self._buffer:
            self._arrived = time.monotonic()  # the oldest audio not yet decoded
        self._buffer += pcm
        if len(self._buffer) >= self._batch:
            self._wake.set()

    def at(self, offset: float) -> datetime:
        """The wall time of a point ``offset`` seconds into the stream."""
        return (self.started_at or self._now()) + timedelta(seconds=offset)

    async def close(self) -> None:
        """Decode what is buffered, finish the open utterance, and give the recognizer back."""
        self._closing = True
        self._wake.set()
        await asyncio.shield(self._task)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._recognizer = await loop.run_in_executor(self._pool, self.engine.recognizer, self.language)
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._buffer:
                    data, arrived = bytes(self._buffer), self._arrived
                    self._buffer.clear()
                    results = await loop.run_in_executor(self._pool, self._decode, data)
                    self._deliver(results, time.monotonic() - arrived)
                if self._closing and not self._buffer:
                    break
            results = await loop.run_in_executor(self._pool, self._recognizer.finish)
            self._deliver(results, 0.0)
        except Exception as exc:  # an engine failure ends this stream only; the call is never touched
            self.failed = True
            log.exception("transcript_stream_failed", engine=self.engine.name, language=self.language)
            if self._on_failure is not None:
                self._on_failure(exc)
        finally:
            if self._recognizer is not None and not self.failed:
                self.engine.release(self._recognizer)

    def _decode(self, data: bytes) -> list[Result]:
        assert self._recognizer is not None
        results: list[Result] = []
        for start in range(0, len(data), self._slice):
            results += self._recognizer.feed(data[start : start + self._slice])
        return results

    def _deliver(self, results: list[Result], lag: float) -> None:
        for result in results:
            self._sink(self, result, lag)
