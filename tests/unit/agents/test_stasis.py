"""The queue flow on the fake ARI server and a SQLite store: how Asterisk's answers and events
interleave, which a real Asterisk only shows now and then."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agents.config import load_queues
from agents.stasis import AgentSeat, QueueFlow
from ari import AriClient
from ari.testing import FakeAri
from hotline import db
from hotline.calls import CallLog
from hotline.models import CallEvent

QUEUES = load_queues(Path("config/queues.toml"))


@dataclass
class Desk:
    fake: FakeAri
    calls: CallLog
    flow: QueueFlow
    timeline: list[CallEvent]
    changed: asyncio.Event

    async def queued_caller(self, queue: str = "emergency") -> str:
        """A caller the IVR hands to ``queue``; returns the call id."""
        channel = self.fake.make_channel(caller="05321234567")
        call, _ = await self.calls.open(channel["id"], caller_number="05321234567")
        await self.flow.enqueue(call.id, channel["id"], queue, "tr", True, ("", "05321234567"))
        return call.id

    async def until(self, kind: str) -> CallEvent:
        async with asyncio.timeout(5):
            while not (found := [e for e in self.timeline if e.kind == kind]):
                self.changed.clear()
                await self.changed.wait()
        return found[0]


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    url = f"sqlite:///{tmp_path / 'queues.db'}"
    await db.upgrade_async(url)
    store = db.Store(url)
    async with FakeAri(username="hotline", password="pw") as fake:
        fake.endpoints = [
            {"technology": "PJSIP", "resource": "agent-a1", "state": "online", "channel_ids": []}
        ]
        client = AriClient(fake.base_url, "hotline", "pw", "hotline", backoff_base=0.01, backoff_max=0.05)
        calls = CallLog(store)
        timeline: list[CallEvent] = []
        changed = asyncio.Event()

        def seen(event: CallEvent) -> None:
            timeline.append(event)
            changed.set()

        calls.subscribe(seen)
        seat = AgentSeat("a1", "Ayşe", frozenset(), frozenset({"tr"}), {})
        flow = QueueFlow(client, calls, store, QUEUES, [seat])
        async with client:
            client.on_event(flow.handle)
            runner = asyncio.create_task(client.run())
            await client.wait_connected(5)
            await flow.start()
            yield Desk(fake, calls, flow, timeline, changed)
            await flow.close()
        await runner
    await store.close()


async def test_an_agent_channel_entering_the_app_before_create_answers_is_still_dialled(desk: Desk) -> None:
    # Asterisk may send the new channel's StasisStart before the reply to channels/create.
    desk.fake.create_reply_delay = 0.2
    call_id = await desk.queued_caller()
    await desk.until("agent_connected")
    dials = [r for r in desk.fake.requests if r.method == "POST" and r.path.endswith("/dial")]
    assert len(dials) == 1
    [mixing] = [b for b in desk.fake.bridges.values() if b["bridge_type"] == "mixing"]
    assert len(mixing["channels"]) == 2
    assert desk.flow.router.agents["a1"].presence == "on_call"
    assert call_id not in desk.flow.router.waiting


async def test_an_agent_channel_entering_the_app_after_create_answers_is_dialled(desk: Desk) -> None:
    await desk.queued_caller()
    connected = await desk.until("agent_connected")
    assert connected.data == {"agent": "a1"}
