"""The connection supervisor: auth, reconnect on every kind of drop, resync, replacement, clean-up."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from typing import Any

import pytest

from ari import AriClient, AriConnectionError, AriError
from ari import events as ev
from ari.models import Channel
from ari.testing import FakeAri

from .conftest import APP, PASSWORD, USER, ClientFactory, LogWatch, Recorder, RunClient, Running


def events_requests(fake: FakeAri) -> list[Any]:
    return [r for r in fake.requests if r.path == "/ari/events"]


async def test_connects_with_header_auth_and_app_filter(fake: FakeAri, running: Running) -> None:
    (req,) = events_requests(fake)
    assert req.query == {"app": APP, "subscribeAll": "false"}
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    first = running.rec.events[0]
    assert isinstance(first, ev.Connected) and first.generation == 1 and first.application == APP
    assert running.client.connected is first


@pytest.mark.parametrize(
    ("breaker", "reason"),
    [("close_sockets", "closed by server (1000)"), ("drop", "connection lost")],
)
async def test_reconnects_after_close_and_drop(
    fake: FakeAri, running: Running, breaker: str, reason: str
) -> None:
    await getattr(fake, breaker)()
    await running.rec.wait_type(ev.Connected, 2)
    kinds = [(type(e).__name__, getattr(e, "generation", None)) for e in running.rec.events]
    assert kinds == [("Connected", 1), ("Disconnected", 1), ("Connected", 2)]
    (gone,) = running.rec.of(ev.Disconnected)
    assert gone.reason == reason
    # Events flow on the new connection.
    await fake.start_call("c1")
    (start,) = await running.rec.wait_type(ev.StasisStart)
    assert start.channel.id == "c1"


async def test_reconnects_after_stall(fake: FakeAri, run_client: RunClient) -> None:
    running = await run_client(heartbeat=0.3)
    await fake.stall()
    await running.rec.wait_type(ev.Connected, 2)
    (gone,) = running.rec.of(ev.Disconnected)
    assert (gone.generation, gone.reason) == (1, "stalled")
    await fake.wait_for(lambda: fake.open_sockets == 1)  # the stalled socket was closed by the client
    await fake.start_call("c9")
    assert (await running.rec.wait_type(ev.StasisStart))[0].channel.id == "c9"


async def test_resync_delivers_our_channels_and_bridges(fake: FakeAri, running: Running) -> None:
    await fake.start_call("c1")
    await fake.start_call("c2", args=["tr"])
    fake.make_channel("other-app", app="queue-app")
    fake.make_channel("in-dialplan", app=None)
    await running.client.bridges.create(bridge_id="ours")
    await running.client.bridges.add_channel("ours", "c1")
    await running.client.bridges.create(bridge_id="empty")
    fake.bridges["foreign"] = {"id": "foreign", "creator": "Stasis", "channels": ["other-app"]}
    fake.bridges["dialplan"] = {"id": "dialplan", "creator": "BridgeWait", "channels": []}
    await fake.drop()
    connected = (await running.rec.wait_type(ev.Connected, 2))[1]
    assert connected.generation == 2
    assert sorted(c.id for c in connected.channels) == ["c1", "c2"]
    assert sorted(b.id for b in connected.bridges) == ["empty", "ours"]
    assert all(isinstance(c, Channel) for c in connected.channels)
    assert connected.channels[1].dialplan.app_data == "hotline,tr"
    # The resync requests came after the new socket opened.
    paths = [r.path for r in fake.requests]
    second_ws = [i for i, p in enumerate(paths) if p == "/ari/events"][1]
    assert {"/ari/channels", "/ari/bridges"} <= set(paths[second_ws:])


async def test_connected_handlers_run_before_new_events(fake: FakeAri, run_client: RunClient) -> None:
    running = await run_client()
    release = asyncio.Event()
    in_handler = asyncio.Event()

    async def slow_adopt(event: ev.Event) -> None:
        if isinstance(event, ev.Connected) and event.generation == 2:
            in_handler.set()
            await release.wait()

    running.client.on_event(slow_adopt)
    await fake.drop()
    await fake.wait_connects(2)
    await asyncio.wait_for(in_handler.wait(), 5)
    await fake.start_call("c1")  # arrives on the new socket while Connected is still being handled
    await fake.emit({"type": "DeviceStateChanged", "device_state": {"name": "Stasis:a", "state": "INUSE"}})
    assert running.client.connected is None  # not "connected" until Connected was handled
    assert running.rec.of(ev.StasisStart) == []
    release.set()
    await running.rec.wait_type(ev.StasisStart)
    assert running.client.connected is not None and running.client.connected.generation == 2


async def test_retries_with_backoff_until_accepted(
    fake: FakeAri, make_client: ClientFactory, logs: LogWatch
) -> None:
    fake.reject_websockets = 503
    async with make_client() as client:
        rec = Recorder()
        client.on_event(rec)
        task = asyncio.create_task(client.run())
        await fake.wait_for(lambda: fake.ws_attempts >= 3)
        assert client.connected is None and rec.events == []
        fake.reject_websockets = None
        connected = await client.wait_connected(timeout=5)
        assert connected.generation == 1
    await asyncio.wait_for(task, 5)
    rejected = logs.named("ari.connect_rejected")
    assert len(rejected) >= 3 and rejected[0]["status"] == 503
    waits = logs.named("ari.reconnect_wait")
    assert [w["attempt"] for w in waits[:3]] == [1, 2, 3]


def test_backoff_is_exponential_capped_and_jittered() -> None:
    client = AriClient("http://127.0.0.1:1", USER, PASSWORD, APP, backoff_base=1.0, backoff_max=8.0)
    for attempt, full in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 8.0), (50, 8.0)]:
        samples = [client._backoff_delay(attempt) for _ in range(200)]
        assert all(full / 2 <= s <= full for s in samples), attempt
        assert len(set(samples)) > 100  # jittered, not a fixed step


async def test_application_replaced_stops_reconnecting(
    fake: FakeAri, run_client: RunClient, logs: LogWatch
) -> None:
    first = await run_client()
    second = await run_client()  # same app name: Asterisk gives it to the newest socket
    (replaced,) = await first.rec.wait_type(ev.ApplicationReplaced)
    assert replaced.application == APP
    await asyncio.wait_for(first.task, 5)  # run() returned on its own
    assert first.task.result() is None
    alert = logs.named("ari.application_replaced")
    assert len(alert) == 1 and alert[0]["log_level"] == "critical"
    (gone,) = first.rec.of(ev.Disconnected)
    assert gone.reason == "application replaced"
    assert fake.ws_connects == 2  # the first client did not come back to fight for the app
    await fake.wait_for(lambda: fake.open_sockets == 1)
    with pytest.raises(AriConnectionError):
        await first.client.wait_connected(timeout=1)
    assert second.client.connected is not None
    await fake.start_call("c1")
    await second.rec.wait_type(ev.StasisStart)
    assert first.rec.of(ev.StasisStart) == []


async def test_close_stops_run_and_reports_disconnect(fake: FakeAri, running: Running) -> None:
    await running.client.close()
    await asyncio.wait_for(running.task, 5)
    assert running.task.result() is None
    (gone,) = running.rec.of(ev.Disconnected)
    assert (gone.generation, gone.reason) == (1, "client closed")
    await fake.wait_for(lambda: fake.open_sockets == 0)
    with pytest.raises(AriConnectionError):
        await running.client.wait_connected(timeout=1)
    await running.client.close()  # idempotent


async def test_close_while_disconnected_and_backing_off(fake: FakeAri, run_client: RunClient) -> None:
    running = await run_client(backoff_base=30.0, backoff_max=30.0)
    await fake.drop()
    await running.rec.wait_type(ev.Disconnected)
    await asyncio.wait_for(running.client.close(), 5)  # does not wait out the 15-30 s backoff
    await asyncio.wait_for(running.task, 5)
    assert len(running.rec.of(ev.Disconnected)) == 1


async def test_misuse(make_client: ClientFactory) -> None:
    client = make_client()
    with pytest.raises(RuntimeError):
        await client.run()
    async with client:
        with pytest.raises(TimeoutError):
            await client.wait_connected(timeout=0.01)
    with pytest.raises(RuntimeError):
        await client.open()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_no_task_or_socket_leak_after_100_reconnects(fake: FakeAri, running: Running) -> None:
    client = running.client
    await client._dispatcher.wait_no_lanes()
    tasks_before = len(asyncio.all_tasks())
    fds_before = _open_fds()
    for i in range(100):
        await (fake.drop() if i % 2 else fake.close_sockets())
        await running.rec.wait_type(ev.Connected, i + 2)
    assert client.generation == 101
    assert len(running.rec.of(ev.Disconnected)) == 100
    await fake.wait_for(lambda: fake.open_sockets == 1)
    await client._dispatcher.wait_no_lanes()
    # Closing sockets finish asynchronously on both ends; nothing else can be awaited here.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while (len(asyncio.all_tasks()), _open_fds()) != (tasks_before, fds_before) and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    assert len(asyncio.all_tasks()) == tasks_before
    assert _open_fds() == fds_before
    assert client._dispatcher.lane_count == 0


async def test_secrets_never_logged_or_in_urls(
    fake: FakeAri, run_client: RunClient, logs: LogWatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    running = await run_client(heartbeat=0.3, slow_handler_warning=0.01)

    async def bad_handler(event: ev.Event) -> None:
        if isinstance(event, ev.StasisStart):
            await asyncio.sleep(0.02)
            raise RuntimeError("boom")

    running.client.on_event(bad_handler)
    await fake.start_call("c1")
    await logs.wait("ari.handler_failed")
    fake.fail("POST", "/channels/c1/answer", 500, "internal")
    with pytest.raises(AriError):
        await running.client.channels.answer("c1")
    fake.reject_websockets = 401
    await fake.drop()
    await logs.wait("ari.connect_rejected")
    fake.reject_websockets = None
    await running.rec.wait_type(ev.Connected, 2)
    await fake.stall()
    await running.rec.wait_type(ev.Connected, 3)
    assert running.rec.of(ev.Disconnected)[-1].reason == "stalled"
    await running.client.close()
    await asyncio.wait_for(running.task, 5)

    names = {e["event"] for e in logs.entries}
    assert {"ari.connected", "ari.disconnected", "ari.handler_failed", "ari.connect_rejected"} <= names
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    captured = repr(logs.entries) + caplog.text
    assert PASSWORD not in captured and token not in captured
    for req in fake.requests:
        assert PASSWORD not in str(req.query) and "api_key" not in req.query


async def test_handler_may_close_the_client(fake: FakeAri, make_client: ClientFactory) -> None:
    client = make_client()
    await client.open()
    closed = asyncio.Event()

    async def shut_down(event: ev.Event) -> None:
        if isinstance(event, ev.StasisStart):
            await client.close()
            closed.set()

    client.on_event(shut_down)
    task = asyncio.create_task(client.run())
    await client.wait_connected(timeout=5)
    await fake.start_call("c1")
    await asyncio.wait_for(closed.wait(), 5)  # close() completed inside the handler
    await asyncio.wait_for(task, 5)
    assert client._session is not None and client._session.closed
