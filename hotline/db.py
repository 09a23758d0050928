"""Database engine, sessions and migrations (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


class DatabaseError(Exception):
    """The database is unreachable or not at the schema this code expects."""


def async_url(url: str) -> str:
    """Map a plain database URL to the asyncio driver we ship for it."""
    scheme, _, rest = url.partition("://")
    base = scheme.split("+", 1)[0]
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if base in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    raise DatabaseError(f"unsupported database URL scheme {scheme!r}")


def _sqlite_pragmas(foreign_keys: bool) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # WAL lets the web readers and the call writer work at once; the busy timeout rides out
        # checkpoints. Set at connect time: SQLite ignores foreign_keys inside a transaction.
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


def make_engine(url: str, echo: bool = False, foreign_keys: bool = True) -> AsyncEngine:
    """``foreign_keys=False`` is for migrations: SQLite alters a table by copying and dropping it."""
    full = async_url(url)
    if full.startswith("sqlite"):
        path = full.partition(":///")[2]
        if path and path != ":memory:":
            _private_file(Path(path))
    engine = create_async_engine(full, echo=echo, pool_pre_ping=not full.startswith("sqlite"))
    if full.startswith("sqlite"):
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas(foreign_keys))
    return engine


def _private_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only (callers' numbers, sessions, password
    hashes); SQLite gives its -wal and -shm files the same permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    path.chmod(0o600)


class Store:
    """Owns the engine; hands out short-lived sessions."""

    def __init__(self, url: str, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo)
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self.behind = WriteBehind(self)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    async def check_schema(self) -> str:
        """Return the current revision, or raise DatabaseError if it is not the newest."""
        head = ScriptDirectory.from_config(alembic_config(self.url)).get_current_head()
        try:
            async with self.engine.connect() as conn:
                current = await conn.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_revision()
                )
        except (OSError, sa.exc.DBAPIError) as exc:
            raise DatabaseError(f"cannot reach the database: {exc.__class__.__name__}: {exc}") from None
        if current is None or current != head:
            raise DatabaseError(
                f"database schema is at {current or 'nothing'}, code expects {head}: run 'hotline db upgrade'"
            )
        return current

    async def close(self) -> None:
        try:
            await self.behind.close()
        finally:
            await self.engine.dispose()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # Kept out of the ini parser: a password may contain '%'.
    cfg.attributes["database_url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations. Synchronous (the migration env runs its own event loop)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)


Pending = tuple[SQLModel, bool, Callable[[], None] | None]  # row, merge (upsert), on commit


def row_values(row: SQLModel) -> dict[str, Any]:
    """A row's column values for a Core INSERT (unset ones, such as an autoincrement id, left out)."""
    columns = type(row).__table__.columns  # type: ignore[attr-defined]
    return {c.name: value for c in columns if (value := getattr(row, c.name)) is not None}


def _same_keys(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows grouped by the columns they set (one executemany needs the same keys in every row)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    return list(groups.values())


class WriteBehind:
    """Rows that may trail the moment by a little (a call's timeline, agents' presence history),
    written in groups: one transaction per batch, committed at most ``window`` seconds after its
    first row was added. The call flow never waits for these commits.

    A kill -9 loses at most the rows of the last ``window``; never a call's existence or outcome,
    nor where it was routed: their owners write those at once (``CallLog.open``, ``close`` and
    the routing updates), taking what waits here into the same transaction first so that rows
    reach the disk in the order they happened. A batch whose commit fails is kept, in order, and
    tried again after ``retry`` seconds: nothing is dropped while the database is away.
    """

    def __init__(self, store: Store, window: float = 0.05, retry: float = 1.0) -> None:
        self._store = store
        self.window, self.retry = window, retry
        self._rows: list[Pending] = []
        self._timer: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()  # set: the waiting batch is committed without its window
        self._lock = asyncio.Lock()

    @property
    def waiting(self) -> int:
        return len(self._rows)

    def add(
        self,
        row: SQLModel,
        on_commit: Callable[[], None] | None = None,
        *,
        merge: bool = False,
        soon: bool = False,
    ) -> None:
        """Write ``row`` with the next batch (``merge``: insert or update by primary key);
        ``on_commit`` runs once it is committed. ``soon``: commit the batch now, without waiting
        out its window (still without making the caller wait for the commit)."""
        self._rows.append((row, merge, on_commit))
        if soon:
            self._hurry.set()
        if self._timer is None:
            self._timer = asyncio.ensure_future(self._flush_later(self.window))

    async def _flush_later(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hurry.wait(), delay)
        self._hurry.clear()
        self._timer = None
        try:
            await self.flush()
        except Exception as exc:  # the database is away: keep the rows, try again later
            log.warning("write_behind_failed", rows=len(self._rows), error=f"{exc.__class__.__name__}: {exc}")
            if self._timer is None:
                self._timer = asyncio.ensure_future(self._flush_later(self.retry))

    async def flush(self) -> None:
        """Commit every waiting row now (in one transaction). A row the database refuses for good
        (an integrity error) is logged and dropped so that it cannot hold back the others."""
        async with self._lock:
            batch = self.take()
            if not batch:
                return
            try:
                await self._write(batch)
            except sa.exc.IntegrityError:
                batch = await self._one_by_one(batch)
            except BaseException:
                self.put_back(batch)
                raise
        self.committed(batch)

    async def _write(self, batch: list[Pending]) -> None:
        async with self._store.session() as session:
            await self.fill(session, batch)
            await session.commit()

    async def _one_by_one(self, batch: list[Pending]) -> list[Pending]:
        written: list[Pending] = []
        for n, pending in enumerate(batch):
            try:
                await self._write([pending])
            except sa.exc.IntegrityError as exc:
                log.error("write_behind_row_refused", row=type(pending[0]).__name__, error=str(exc.orig))
            except BaseException:
                self.put_back(batch[n:])
                self.committed(written)
                raise
            else:
                written.append(pending)
        return written

    @asynccontextmanager
    async def joined(self) -> AsyncIterator[AsyncSession]:
        """A transaction of the caller's own that carries every waiting row first, committed when
        the block ends (for what must be written at once, in order after what came before)."""
        async with self._lock:
            batch = self.take()
            try:
                async with self._store.session() as session:
                    await self.fill(session, batch)
                    yield session
                    await session.commit()
            except BaseException:
                self.put_back(batch)
                raise
        self.committed(batch)

    def take(self) -> list[Pending]:
        """The waiting rows, for an owner to write in its own transaction (``fill``); after its
        commit it calls ``committed``, after a failure ``put_back``."""
        batch, self._rows = self._rows, []
        return batch

    async def fill(self, session: AsyncSession, batch: list[Pending]) -> None:
        """Write ``batch`` in ``session`` as one multi-row INSERT per table (and one upsert per
        table for ``merge`` rows): the ORM's unit of work costs several times more per row, and
        these rows are never read back through it."""
        inserts: dict[type[SQLModel], list[dict[str, Any]]] = {}
        upserts: dict[type[SQLModel], dict[Any, dict[str, Any]]] = {}
        for row, merge, _ in batch:
            model = type(row)
            if merge:
                values = {c.name: getattr(row, c.name) for c in model.__table__.columns}  # type: ignore[attr-defined]
                key = tuple(values[c.name] for c in model.__table__.primary_key)  # type: ignore[attr-defined]
                upserts.setdefault(model, {})[key] = values  # the last state of a row wins
            else:
                inserts.setdefault(model, []).append(row_values(row))
        connection = await session.connection()  # Core statements, in the session's transaction
        for model, rows in inserts.items():
            for group in _same_keys(rows):
                await connection.execute(sa.insert(model.__table__), group)  # type: ignore[attr-defined]
        for model, by_key in upserts.items():
            await connection.execute(self._upsert(model), list(by_key.values()))

    def _upsert(self, model: type[SQLModel]) -> Any:
        table = model.__table__  # type: ignore[attr-defined]
        dialect = sqlite_dialect if self._store.engine.dialect.name == "sqlite" else postgresql_dialect
        statement = dialect.insert(table)
        keys = [c.name for c in table.primary_key]
        update = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
        return statement.on_conflict_do_update(index_elements=keys, set_=update)

    def put_back(self, batch: list[Pending]) -> None:
        self._rows[:0] = batch
        if batch and self._timer is None:
            self._timer = asyncio.ensure_future(self._flush_later(self.retry))

    @staticmethod
    def committed(batch: list[Pending]) -> None:
        for _, _, on_commit in batch:
            if on_commit is not None:
                on_commit()

    async def close(self) -> None:
        """Write what waits (the process is stopping)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._rows:
            await self.flush()
