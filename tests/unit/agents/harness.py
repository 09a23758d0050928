"""The queue flow's test harness: the fake ARI server, a SQLite store and a hand-driven clock.
The ``desk`` fixture (conftest.py) is one hotline process's queue flow on them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from agents.config import QueuesConfig, load_queues
from agents.live import AgentSeat
from agents.notifier import Notice, Subscription
from agents.service import Presence
from agents.stasis import QueueFlow
from ari import AriClient
from ari.testing import FakeAri
from hotline import db
from hotline.callflow import Fallback, Guard
from hotline.calls import CallLog
from hotline.clock import Clock
from hotline.models import CallEvent
from tests.harness.clock import ManualSleep

QUEUES = load_queues(Path("config/queues.toml"))


async def presence(stream: Subscription, agent_id: str, wanted: Presence) -> Notice:
    """The next notice that ``agent_id`` has become ``wanted``."""
    async with asyncio.timeout(5):
        while True:
            notice = await stream.get()
            assert notice is not None, "the notifier closed"
            if notice["type"] == "presence" and notice["agent"] == agent_id and notice["presence"] == wanted:
                return notice


@dataclass
class Desk:
    fake: FakeAri
    calls: CallLog
    flow: QueueFlow
    timeline: list[CallEvent]
    changed: asyncio.Event
    timers: ManualSleep
    client: AriClient
    store: db.Store

    async def queued_caller(self, queue: str = "emergency", urgent: bool = True) -> str:
        """A caller the IVR hands to ``queue``; returns the call id."""
        channel = self.fake.make_channel(caller="05321234567")
        call, _ = await self.calls.open(channel["id"], caller_number="05321234567", queue=queue)
        await self.flow.enqueue(call.id, channel["id"], queue, "tr", urgent, ("", "05321234567"))
        return call.id

    async def until(self, kind: str) -> CallEvent:
        async with asyncio.timeout(5):
            while not (found := [e for e in self.timeline if e.kind == kind]):
                self.changed.clear()
                await self.changed.wait()
        return found[0]

    async def until_for(self, call_id: str, kind: str) -> CallEvent:
        """The first ``kind`` entry of one call's timeline, once it is there."""
        async with asyncio.timeout(5):
            while not (found := [e for e in self.timeline if e.kind == kind and e.call_id == call_id]):
                self.changed.clear()
                await self.changed.wait()
        return found[0]

    async def count(self, kind: str, n: int) -> None:
        async with asyncio.timeout(5):
            while sum(1 for e in self.timeline if e.kind == kind) < n:
                self.changed.clear()
                await self.changed.wait()

    def agent_channel(self) -> str:
        return next(c for c in self.fake.channels if c.startswith("hotline-agent-"))


SEAT = AgentSeat("a1", "Ayşe", frozenset(), frozenset({"tr"}), {})


@contextlib.asynccontextmanager
async def running_flow(
    fake: FakeAri,
    store: db.Store,
    calls: CallLog,
    timers: ManualSleep,
    queues: QueuesConfig = QUEUES,
    seats: tuple[AgentSeat, ...] = (SEAT,),
) -> AsyncIterator[tuple[AriClient, QueueFlow]]:
    """One hotline process's queue flow, connected to the fake Asterisk."""
    client = client_for(fake)
    flow = QueueFlow(client, calls, store, queues, seats, guard_for(client, calls), clock=Clock(sleep=timers))
    async with client:
        await flow.start()  # as the app does: presence first, then the events (and the resync)
        client.on_event(flow.handle)
        runner = asyncio.create_task(client.run())
        await client.wait_connected(5)
        async with asyncio.timeout(5):
            await flow.synced()
        yield client, flow
        await flow.close(tidy=False)
    await runner


def guard_for(client: AriClient, calls: CallLog) -> Guard:
    """The guard as the app builds it: failures go to the dialplan's fallback label of 183."""
    return Guard(calls, Fallback(client, context="from-caller", extension="183", label="fallback"))


def client_for(fake: FakeAri) -> AriClient:
    return AriClient(fake.base_url, "hotline", "pw", "hotline", backoff_base=0.01, backoff_max=0.05)


def new_flow(
    desk: Desk,
    client: AriClient | None = None,
    queues: QueuesConfig = QUEUES,
    seats: tuple[AgentSeat, ...] = (SEAT,),
) -> QueueFlow:
    """Another process's queue flow on the same Asterisk and database (not started)."""
    client = client or desk.client
    clock = Clock(sleep=desk.timers)
    return QueueFlow(
        client, desk.calls, desk.store, queues, seats, guard_for(client, desk.calls), clock=clock
    )


async def answer(fake: FakeAri, channel_id: str) -> None:
    """The agent's phone, left ringing (``auto_dial_answer = False``), is picked up."""
    channel = fake.channels[channel_id]
    channel["state"] = "Up"
    await fake.emit({"type": "Dial", "peer": channel, "dialstatus": "ANSWER", "dialstring": ""})
