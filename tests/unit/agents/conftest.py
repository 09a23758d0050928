"""The ``desk`` fixture: one hotline process's queue flow on the fake ARI server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ari.testing import FakeAri
from hotline import db
from hotline.calls import CallLog
from hotline.models import CallEvent
from tests.harness.clock import ManualSleep
from tests.unit.agents.harness import Desk, running_flow


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    url = f"sqlite:///{tmp_path / 'queues.db'}"
    await db.upgrade_async(url)
    store = db.Store(url)
    async with FakeAri(username="hotline", password="pw") as fake:
        fake.endpoints = [
            {"technology": "PJSIP", "resource": "agent-a1", "state": "online", "channel_ids": []}
        ]
        calls = CallLog(store)
        timeline: list[CallEvent] = []
        changed = asyncio.Event()

        def seen(event: CallEvent) -> None:
            timeline.append(event)
            changed.set()

        calls.subscribe(seen)
        timers = ManualSleep()
        async with running_flow(fake, store, calls, timers) as (client, flow):
            yield Desk(fake, calls, flow, timeline, changed, timers, client, store)
    await store.close()
