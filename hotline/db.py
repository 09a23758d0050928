"""Database engine, sessions and migrations (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

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
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(full, echo=echo, pool_pre_ping=not full.startswith("sqlite"))
    if full.startswith("sqlite"):
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas(foreign_keys))
    return engine


class Store:
    """Owns the engine; hands out short-lived sessions."""

    def __init__(self, url: str, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo)
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

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
