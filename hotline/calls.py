"""The call log: one ``Call`` row per call from StasisStart to hang-up, and its event timeline.

A call's existence, outcome and routing are committed before the call moves on. The timeline
entries between them are written behind (``Store.behind``: one transaction per batch, at most
50 ms later), so a kill -9 loses at most that last moment of the timeline, never the call. Reads
flush what waits first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from hotline.clock import SYSTEM, Clock
from hotline.db import Store, row_values
from hotline.models import Call, CallEvent, CallEventKind, CallOutcome

Listener = Callable[[CallEvent], None]


class CallLog:
    def __init__(self, store: Store, clock: Clock = SYSTEM) -> None:
        self._store = store
        self._clock = clock
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every timeline event once it is committed; returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _published(self, *events: CallEvent) -> None:
        for event in events:
            for listener in list(self._listeners):
                listener(event)

    async def open(self, channel_id: str, *, answered: bool = False, **fields: Any) -> tuple[Call, bool]:
        """Return the open call on this channel, creating it if new. The flag is True when created.
        ``answered``: Asterisk answered it already (in the dialplan), noted in the same transaction."""
        calls, events_table = Call.__table__, CallEvent.__table__  # type: ignore[attr-defined]
        async with self._store.session() as session:
            connection = await session.connection()
            known = await connection.scalar(sa.select(calls.c.id).where(calls.c.channel_id == channel_id))
            if known is not None:
                found = await session.get(Call, known)
                assert found is not None
                return found, False
            now = self._clock.utcnow()
            fields = _fitted(fields)
            call = Call(
                channel_id=channel_id, started_at=now, answered_at=now if answered else None, **fields
            )
            # The channel is on the entry for listeners that act on the line (transcripts).
            start = {**fields, "channel": channel_id}
            events = [CallEvent(call_id=call.id, at=now, kind=CallEventKind.stasis_start, data=start)]
            if answered:
                events.append(CallEvent(call_id=call.id, at=now, kind=CallEventKind.answered, data={}))
            # Core statements: the ORM's unit of work costs several times more, on every call.
            await connection.execute(sa.insert(calls), [row_values(call)])
            await connection.execute(sa.insert(events_table), [row_values(e) for e in events])
            await session.commit()
        self._published(*events)
        return call, True

    async def record(
        self,
        call_id: str,
        kind: CallEventKind,
        *,
        soon: bool = False,
        on_commit: Callable[[], None] | None = None,
        **data: Any,
    ) -> None:
        """Add a timeline entry, written behind; listeners hear of it once it is committed.
        ``soon``: committed right away rather than within the batch window, for the milestones a
        ticket is built from (who took the call); ``on_commit`` runs after the listeners."""
        event = CallEvent(call_id=call_id, at=self._clock.utcnow(), kind=kind, data=data)

        def committed() -> None:
            self._published(event)
            if on_commit is not None:
                on_commit()

        self._store.behind.add(event, committed, soon=soon)

    async def flush(self) -> None:
        """Commit every timeline entry that is still waiting."""
        await self._store.behind.flush()

    async def answered(self, call_id: str) -> None:
        await self._update(call_id, CallEventKind.answered, {}, answered_at=self._clock.utcnow())

    async def mark_urgent(self, call_id: str, reason: str) -> None:
        """Flag the call urgent (escalation acts on this); recorded the moment it is known."""
        await self._update(call_id, CallEventKind.urgent, {"reason": reason}, urgent=True)

    async def route(
        self, call_id: str, *, queue: str, category: str | None, language: str, path: Any
    ) -> None:
        """Record where the IVR sends the caller and the path that led there."""
        data = {"queue": queue, "category": category, "language": language, "path": path}
        await self._update(
            call_id, CallEventKind.ivr_done, data, queue=queue, category=category, language=language
        )

    async def transferred(
        self, call_id: str, *, queue: str, category: str | None, by_agent: str, to_agent: str | None
    ) -> None:
        """An agent sent the caller on to another queue or agent; the call keeps its history."""
        data = {"agent": by_agent, "queue": queue, "to_agent": to_agent}
        fields: dict[str, Any] = {"queue": queue}
        if category is not None:
            fields["category"] = category
        await self._update(call_id, CallEventKind.transferred, data, **fields)

    async def voicemail(self, call_id: str, recording: str, duration: int | None) -> None:
        await self._update(
            call_id,
            CallEventKind.voicemail,
            {"recording": recording, "duration": duration},
            voicemail=recording,
        )

    async def previous_calls(self, caller_number: str, before: str) -> list[Call]:
        """Earlier calls from the same number, newest first (repeat callers)."""
        if not caller_number:
            return []
        async with self._store.session() as session:
            rows = await session.exec(
                select(Call)
                .where(Call.caller_number == caller_number, Call.id != before)
                .order_by(col(Call.started_at).desc())
                .limit(20)
            )
            return list(rows.all())

    async def close(self, call_id: str, outcome: CallOutcome, hangup_cause: int | None = None) -> None:
        """Mark the call ended (once: a second close keeps the first outcome)."""
        now = self._clock.utcnow()
        ended = {"ended_at": now, "outcome": outcome.value, "hangup_cause": hangup_cause}
        data = {"outcome": outcome.value, "hangup_cause": hangup_cause}
        await self._update(call_id, CallEventKind.ended, data, only_open=True, at=now, **ended)

    async def open_calls(self) -> list[Call]:
        await self.flush()
        async with self._store.session() as session:
            rows = await session.exec(select(Call).where(col(Call.ended_at).is_(None)))
            return list(rows.all())

    async def get(self, call_id: str) -> Call | None:
        await self.flush()
        async with self._store.session() as session:
            return await session.get(Call, call_id)

    async def events(self, call_id: str) -> list[CallEvent]:
        await self.flush()
        async with self._store.session() as session:
            rows = await session.exec(
                select(CallEvent).where(CallEvent.call_id == call_id).order_by(col(CallEvent.id))
            )
            return list(rows.all())

    async def _update(
        self,
        call_id: str,
        kind: CallEventKind,
        data: dict[str, Any],
        *,
        only_open: bool = False,
        at: datetime | None = None,
        **fields: Any,
    ) -> None:
        """Set ``fields`` on the call and add the ``kind`` entry, now, in one transaction (with the
        timeline entries still waiting, which come first). ``only_open``: not if it has ended."""
        calls = Call.__table__  # type: ignore[attr-defined]
        event = CallEvent(call_id=call_id, at=at or self._clock.utcnow(), kind=kind, data=data)
        changed = False
        async with self._store.behind.joined() as session:
            connection = await session.connection()
            where = [calls.c.id == call_id]
            if only_open:
                where.append(calls.c.ended_at.is_(None))
            result = await connection.execute(sa.update(calls).where(*where).values(**fields))
            changed = result.rowcount == 1
            if changed:
                await connection.execute(sa.insert(CallEvent.__table__), [row_values(event)])  # type: ignore[attr-defined]
        if changed:
            self._published(event)


def _fitted(fields: dict[str, Any]) -> dict[str, Any]:
    """Text cut to its column's length: a caller id of any length must never cost the caller their
    call record (PostgreSQL refuses an over-long value; SQLite would keep it whole)."""
    columns = Call.__table__.columns  # type: ignore[attr-defined]
    fitted = dict(fields)
    for name, value in fields.items():
        length = getattr(columns[name].type, "length", None) if name in columns else None
        if isinstance(value, str) and length is not None and len(value) > length:
            fitted[name] = value[:length]
    return fitted
