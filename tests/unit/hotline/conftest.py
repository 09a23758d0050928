"""Fixtures for the web shell: a SQLite store, a clock that moves only when told, cheap scrypt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hotline import auth, db
from hotline.settings import Settings
from tests.conftest import make_settings

WEB_SETTINGS = """
[web]
session_idle = 600.0
session_lifetime = 3600.0
login_attempts = 3
login_window = 60.0
[[agents]]
id = "1001"
name = "Ayşe Yılmaz"
[[agents]]
id = "1002"
name = "Mehmet Demir"
"""


class Clock:
    """Stands still until a test moves it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real parameters cost 0.1 s a hash; tests that count on them set them back."""
    monkeypatch.setattr(auth, "SCRYPT_N", 2**10)


@pytest.fixture
def web_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, WEB_SETTINGS)


@pytest.fixture
async def web_store(web_settings: Settings) -> AsyncIterator[db.Store]:
    await db.upgrade_async(web_settings.database_url)
    store = db.Store(web_settings.database_url)
    yield store
    await store.close()
