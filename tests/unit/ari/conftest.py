"""Fixtures for the ARI client tests: a fake Asterisk and clients tuned to reconnect fast."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import structlog

from ari import AriClient
from ari import events as ev
from ari.testing import FakeAri

USER = "hotline"
PASSWORD = "s3cr3t-Pa55w0rd"
APP = "hotline"

FAST: dict[str, Any] = {
    "backoff_base": 0.002,
    "backoff_max": 0.01,
    "heartbeat": 2.0,
    "request_timeout": 5.0,
    "close_timeout": 2.0,
    "idle_worker_timeout": 0.02,
}


class Recorder:
    """An event handler that keeps what it saw and lets a test await a condition on it."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self._cond = asyncio.Condition()

    async def __call__(self, event: ev.Event) -> None:
        async with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of(self, kind: type[ev.Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout), self._cond:
            await self._cond.wait_for(predicate)

    async def wait_type(self, kind: type[ev.Event], count: int = 1, timeout: float = 5.0) -> list[Any]:
        await self.wait_for(lambda: len(self.of(kind)) >= count, timeout)
        return self.of(kind)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    async with FakeAri(username=USER, password=PASSWORD) as server:
        yield server


ClientFactory = Callable[..., AriClient]


@pytest.fixture
def make_client(fake: FakeAri) -> ClientFactory:
    def factory(**overrides: Any) -> AriClient:
        options = {**FAST, **overrides}
        password = options.pop("password", PASSWORD)
        base_url = options.pop("base_url", fake.base_url)
        return AriClient(base_url, USER, password, APP, **options)

    return factory


class Running:
    """A client whose run() task is going, with a Recorder registered before it connected."""

    def __init__(self, client: AriClient, recorder: Recorder, task: asyncio.Task[None]) -> None:
        self.client = client
        self.rec = recorder
        self.task = task


RunClient = Callable[..., Awaitable[Running]]


@pytest.fixture
async def run_client(make_client: ClientFactory) -> AsyncIterator[RunClient]:
    started: list[Running] = []

    async def start(**overrides: Any) -> Running:
        client = make_client(**overrides)
        await client.open()
        recorder = Recorder()
        client.on_event(recorder)
        task = asyncio.create_task(client.run())
        running = Running(client, recorder, task)
        started.append(running)
        await client.wait_connected(timeout=5)
        return running

    yield start
    for running in started:
        await running.client.close()
        await asyncio.wait_for(running.task, 5)


@pytest.fixture
async def running(run_client: RunClient) -> Running:
    return await run_client()


class LogWatch:
    """Captured structlog entries, with a way to await one by name instead of polling."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self._waiters: list[tuple[str, asyncio.Event]] = []

    def __call__(self, _logger: Any, _method: str, event_dict: Any) -> Any:
        for name, flag in self._waiters:
            if event_dict.get("event") == name:
                flag.set()
        return event_dict

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.entries if e.get("event") == name]

    async def wait(self, name: str, timeout: float = 5.0) -> dict[str, Any]:
        if not self.named(name):
            flag = asyncio.Event()
            self._waiters.append((name, flag))
            await asyncio.wait_for(flag.wait(), timeout)
        return self.named(name)[0]


@pytest.fixture
def logs() -> Iterator[LogWatch]:
    watch = LogWatch()
    with structlog.testing.capture_logs(processors=[watch]) as entries:
        watch.entries = entries
        yield watch
