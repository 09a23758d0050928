"""Recordings kept in Asterisk's store: transcribed after the call when the live engines had no
room, and deleted once their retention ends.

The work list is the ``recording`` table, not memory: a recording still ``pending`` when the
process dies is transcribed by the next run. One recording is transcribed at a time, so that
after-call work never takes the decoding threads from live streams.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import Executor

import sqlalchemy as sa
import structlog
from sqlmodel import col, select

from ari import AriClient, AriError, NotFound
from hotline.calls import CallLog
from hotline.clock import SYSTEM, Clock
from hotline.db import Store
from hotline.models import Call, CallEventKind
from transcripts.engine import Engine
from transcripts.models import Recording, Speaker
from transcripts.service import Speaking, Transcriber

log = structlog.get_logger(__name__)

SWEEP_SECONDS = 300.0  # also woken at every call's end and every resync


class Recordings:
    def __init__(
        self,
        ari: AriClient,
        store: Store,
        calls: CallLog,
        transcriber: Transcriber,
        *,
        engines: dict[str, Engine],
        after_call_engine: Callable[[str], str],  # language -> engine name
        pool: Executor,
        retention_days: int,
        keep: bool,  # recordings are configured (kept until they expire), not only a stopgap
        clock: Clock = SYSTEM,
    ) -> None:
        self.ari = ari
        self.store = store
        self.calls = calls
        self.transcriber = transcriber
        self.engines = engines
        self.after_call_engine = after_call_engine
        self.pool = pool
        self.retention_days = retention_days
        self.keep = keep
        self.clock = clock
        self.recording: set[str] = set()  # being recorded now, by this run
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.done = asyncio.Condition()  # notified after each recording is dealt with (tests, bench)

    async def add(self, row: Recording) -> None:
        async with self.store.session() as session:
            session.add(row)
            await session.commit()
        self.recording.add(row.name)

    async def forget(self, name: str) -> None:
        self.recording.discard(name)
        async with self.store.session() as session:
            await session.exec(sa.delete(Recording).where(col(Recording.name) == name))
            await session.commit()

    def finished(self, name: str) -> None:
        if name in self.recording:
            self.recording.discard(name)
            self.wake()

    def call_ended(self, call_id: str) -> None:
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="recordings")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def pending(self) -> list[Recording]:
        """Recordings to transcribe now: their call has ended and the file is complete."""
        await self.calls.flush()
        async with self.store.session() as session:
            rows = await session.exec(
                select(Recording)
                .join(Call, col(Call.id) == col(Recording.call_id))
                .where(col(Recording.pending).is_(True), col(Call.ended_at).is_not(None))
                .order_by(col(Recording.started_at))
            )
            return [r for r in rows.all() if r.name not in self.recording]

    async def _run(self) -> None:
        while True:
            # asyncio.timeout rather than wait_for: on 3.11 wait_for can swallow the cancellation
            # that stops this loop when the wake-up comes at the same moment.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SWEEP_SECONDS):
                    await self._wake.wait()
            self._wake.clear()
            try:
                for row in await self.pending():
                    await self.transcribe(row)
                await self.purge()
            except Exception:  # the store or Asterisk is away: the next sweep tries again
                log.exception("recordings_sweep_failed")

    async def transcribe(self, row: Recording) -> None:
        """Transcribe one finished recording, then mark it done (deleting it if it was kept only
        for this)."""
        count, error = 0, ""
        try:
            pcm = await self.ari.recordings.download(row.name)
            engine = self.engines[self.after_call_engine(row.language)]
            side = Speaker(row.side) if row.side in Speaker.__members__ else Speaker.caller
            who = Speaking(row.call_id, side, row.agent_id)
            count = await self.transcriber.after_call(
                who, engine, self.pool, pcm, row.language, row.started_at
            )
        except NotFound:
            error = "recording missing"
        except AriError as exc:
            log.warning("recording_not_fetched", name=row.name, error=str(exc))
            return  # Asterisk is away: try again on the next sweep
        await self._mark(row.name, pending=False)
        await self.calls.record(
            row.call_id,
            CallEventKind.transcribed_after_call,
            side=row.side,
            segments=count,
            error=error or None,
        )
        if not self.keep and not error:
            await self._delete(row.name)
        async with self.done:
            self.done.notify_all()

    async def purge(self) -> int:
        """Delete the recordings whose retention has ended; returns how many."""
        async with self.store.session() as session:
            rows = await session.exec(
                select(Recording).where(
                    col(Recording.deleted).is_(False),
                    col(Recording.pending).is_(False),
                    col(Recording.expires_at) <= self.clock.utcnow(),
                )
            )
            expired = [r.name for r in rows.all()]
        for name in expired:
            await self._delete(name)
        return len(expired)

    async def _delete(self, name: str) -> None:
        with contextlib.suppress(NotFound):
            await self.ari.recordings.delete_stored(name)
        await self._mark(name, deleted=True)

    async def _mark(self, name: str, **values: bool) -> None:
        async with self.store.session() as session:
            await session.exec(sa.update(Recording).where(col(Recording.name) == name).values(**values))
            await session.commit()
