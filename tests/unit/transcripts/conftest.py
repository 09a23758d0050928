"""A fresh, upgraded SQLite store for the transcript flow's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hotline import db


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[db.Store]:
    url = f"sqlite:///{tmp_path / 'transcripts.db'}"
    await db.upgrade_async(url)
    store = db.Store(url)
    yield store
    await store.close()
