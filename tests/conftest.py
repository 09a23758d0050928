"""Shared fixtures: settings in a temporary state folder, and databases on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hotline import db
from hotline.settings import Settings, load_settings

POSTGRES_URL = os.environ.get("HOTLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def write_settings(folder: Path, body: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hotline.toml"
    path.write_text(f'[hotline]\nstate_dir = "{folder / "state"}"\n{body}')
    return path


def make_settings(folder: Path, body: str = "") -> Settings:
    return load_settings(write_settings(folder, body), environ={})


async def _postgres_admin(url: str) -> object:
    import asyncpg  # type: ignore[import-untyped]

    return await asyncio.wait_for(asyncpg.connect(url.replace("postgresql://", "postgres://", 1)), 3)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL URL for a throw-away database, or a skip when no server is reachable."""

    async def create() -> str | None:
        try:
            conn = await _postgres_admin(POSTGRES_URL)
        except Exception as exc:  # refused, timed out, or asyncpg's own errors (auth, no database)
            pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc.__class__.__name__}")
            return None
        name = f"hotline_test_{uuid.uuid4().hex[:10]}"
        await conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
        await conn.close()  # type: ignore[attr-defined]
        return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"

    url = asyncio.run(create())
    assert url
    yield url

    async def drop() -> None:
        conn = await _postgres_admin(POSTGRES_URL)
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')  # type: ignore[attr-defined]
        await conn.close()  # type: ignore[attr-defined]

    asyncio.run(drop())


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind, so store tests run on both."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hotline.db'}"
        return
    url: str = request.getfixturevalue("postgres_server")
    yield url
    db.downgrade(url, "base")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[db.Store]:
    await db.upgrade_async(database_url)
    store = db.Store(database_url)
    yield store
    await store.close()
