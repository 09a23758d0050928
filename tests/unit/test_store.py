"""The call store on SQLite and on PostgreSQL: migrations, the call log, timestamps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from hotline import db
from hotline.calls import CallLog
from hotline.clock import Clock
from hotline.models import CallEvent, CallEventKind, CallOutcome


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


async def test_schema_is_at_head_after_upgrade(store: db.Store) -> None:
    assert await store.check_schema() == "0011"


async def test_not_upgraded_database_is_refused(database_url: str) -> None:
    store = db.Store(database_url)
    try:
        with pytest.raises(db.DatabaseError, match="run 'hotline db upgrade'"):
            await store.check_schema()
    finally:
        await store.close()


async def test_call_lifecycle_and_timeline(store: db.Store) -> None:
    clock = FakeClock()
    calls = CallLog(store, Clock(wall=clock))
    call, created = await calls.open("chan-1", caller_number="05321234567", extension="183", language="tr")
    assert created
    again, created_again = await calls.open("chan-1", caller_number="ignored")
    assert not created_again and again.id == call.id

    await calls.answered(call.id)
    await calls.record(call.id, "playback_finished", playback="p1")
    await calls.close(call.id, CallOutcome.completed, hangup_cause=16)
    await calls.close(call.id, CallOutcome.abandoned)  # a late second close changes nothing

    stored = await calls.get(call.id)
    assert stored is not None
    assert stored.caller_number == "05321234567"
    assert stored.outcome == "completed" and stored.hangup_cause == 16
    assert stored.started_at == datetime(2026, 11, 22, 3, 0, 1, tzinfo=UTC)
    assert stored.answered_at is not None and stored.answered_at.tzinfo is not None
    assert stored.started_at < stored.answered_at < stored.ended_at  # type: ignore[operator]
    kinds = [e.kind for e in await calls.events(call.id)]
    assert kinds == ["stasis_start", "answered", "playback_finished", "ended"]
    assert (await calls.events(call.id))[2].data == {"playback": "p1"}
    assert await calls.open_calls() == []


async def test_open_calls_lists_only_unfinished(store: db.Store) -> None:
    calls = CallLog(store)
    first, _ = await calls.open("a")
    second, _ = await calls.open("b")
    await calls.close(first.id, CallOutcome.abandoned)
    assert [c.id for c in await calls.open_calls()] == [second.id]


async def test_events_need_an_existing_call_and_a_bad_one_holds_back_no_other(store: db.Store) -> None:
    calls = CallLog(store)
    call, _ = await calls.open("chan-9")
    await calls.record("no-such-call", CallEventKind.dtmf, digit="1")
    await calls.record(call.id, CallEventKind.dtmf, digit="2")
    await calls.flush()
    assert store.behind.waiting == 0
    assert [(e.kind, e.data) for e in await calls.events(call.id)][-1] == ("dtmf", {"digit": "2"})
    async with store.session() as session:
        orphans = (await session.exec(select(CallEvent).where(CallEvent.call_id == "no-such-call"))).all()
    assert orphans == []


async def test_downgrade_removes_the_tables(database_url: str) -> None:
    await db.upgrade_async(database_url)
    await db.upgrade_async(database_url)  # idempotent
    await asyncio.to_thread(db.downgrade, database_url, "base")
    store = db.Store(database_url)
    try:
        async with store.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        assert "call" not in tables and "call_event" not in tables
    finally:
        await store.close()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    async def mode() -> str:
        store = db.Store(f"sqlite:///{tmp_path / 'x.db'}")
        try:
            async with store.engine.connect() as conn:
                return str((await conn.exec_driver_sql("PRAGMA journal_mode")).scalar())
        finally:
            await store.close()

    assert asyncio.run(mode()) == "wal"


def test_urls_map_to_async_drivers() -> None:
    assert db.async_url("sqlite:////var/x.db") == "sqlite+aiosqlite:////var/x.db"
    assert db.async_url("postgresql://u:p@h/d") == "postgresql+asyncpg://u:p@h/d"
    with pytest.raises(db.DatabaseError):
        db.async_url("mysql://h/d")


async def test_upgrading_a_database_that_holds_calls_keeps_them(database_url: str) -> None:
    await db.upgrade_async(database_url, "0001")
    store = db.Store(database_url)
    try:
        async with store.engine.begin() as conn:
            at = "2026-01-01 00:00:00+00:00"
            await conn.exec_driver_sql(
                "INSERT INTO call (id, channel_id, caller_number, caller_name, extension, language,"
                f" started_at) VALUES ('c1', 'ch1', '0555', '', '183', 'tr', '{at}')"
            )
            await conn.exec_driver_sql(
                f"INSERT INTO call_event (call_id, at, kind, data) VALUES ('c1', '{at}', 'x', '{{}}')"
            )
        await db.upgrade_async(database_url)
        calls = CallLog(store)
        call = await calls.get("c1")
        assert call is not None and call.caller_number == "0555" and call.urgent is False
        assert [e.kind for e in await calls.events("c1")] == ["x"]
    finally:
        await store.close()


async def test_migrations_match_the_models(store: db.Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    import agents.models  # noqa: F401  (its tables are part of the schema)
    import escalation.models  # noqa: F401
    import tickets.models  # noqa: F401
    import transcripts.models  # noqa: F401
    from tickets.search import UNMODELLED  # search objects and list indexes kept outside the models

    opts = {"compare_type": True, "include_name": lambda name, *_: name not in UNMODELLED}
    async with store.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync, opts=opts), SQLModel.metadata)
        )
    assert diff == []


async def test_an_over_long_caller_id_is_cut_to_fit_and_the_call_is_kept(store: db.Store) -> None:
    calls = CallLog(store)
    number, name = "9" * 200, "Ş" * 300  # Asterisk passes up to 79 characters on; a carrier may send more
    call, created = await calls.open("chan-long", caller_number=number, caller_name=name, extension="183")
    assert created
    stored = await calls.get(call.id)
    assert stored is not None and (stored.caller_number, stored.caller_name) == (number[:64], name[:128])


async def test_the_sqlite_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "hotline.db"
    await db.upgrade_async(f"sqlite:///{path}")
    store = db.Store(f"sqlite:///{path}")
    try:
        await CallLog(store).open("chan-private", caller_number="05321234567")
    finally:
        await store.close()
    assert path.stat().st_mode & 0o077 == 0
