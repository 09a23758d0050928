"""REST over the event WebSocket: what differs from HTTP (waiting for the socket, losing it)."""

from __future__ import annotations

import asyncio

import pytest

from ari import AriConnectionError
from ari import events as ev
from ari.testing import FakeAri

from .conftest import RunClient


async def test_resync_and_connected_handlers_use_the_socket(fake: FakeAri, run_client: RunClient) -> None:
    running = await run_client(rest_transport="websocket")
    client = running.client
    seen: list[list[str]] = []

    async def readopt(event: ev.Event) -> None:
        if isinstance(event, ev.Connected) and event.generation == 2:
            # A REST call from a Connected handler: its answer comes on the very socket whose
            # events are being held back until this handler is done.
            seen.append([c.id for c in await client.channels.list()])

    client.on_event(readopt)
    await fake.start_call("c1")
    await running.rec.wait_type(ev.StasisStart)
    fake.requests.clear()
    await fake.drop()
    await running.rec.wait_type(ev.Connected, 2)
    connected = await client.wait_connected(timeout=5)  # set once the Connected handlers are done
    assert connected.generation == 2
    assert [c.id for c in connected.channels] == ["c1"]
    assert seen == [["c1"]]
    listing = [r for r in fake.requests if r.path in ("/ari/channels", "/ari/bridges")]
    assert [(r.path, r.transport) for r in listing] == [
        ("/ari/channels", "websocket"),
        ("/ari/bridges", "websocket"),
        ("/ari/channels", "websocket"),
    ]
    assert not [r for r in fake.requests if r.transport == "http" and r.path != "/ari/events"]


async def test_request_waits_for_the_socket(fake: FakeAri, run_client: RunClient) -> None:
    running = await run_client(rest_transport="websocket")
    fake.reject_websockets = 503
    await fake.drop()
    await running.rec.wait_type(ev.Disconnected)
    attempts = fake.ws_attempts
    ping = asyncio.create_task(running.client.asterisk.ping())
    await fake.wait_for(lambda: fake.ws_attempts > attempts)  # still refused: the request waits
    assert not ping.done()
    fake.reject_websockets = None
    assert (await asyncio.wait_for(ping, 5)).ping == "pong"
    assert fake.requests[-1].transport == "websocket"


async def test_pending_request_fails_when_the_socket_drops(fake: FakeAri, run_client: RunClient) -> None:
    running = await run_client(rest_transport="websocket")
    gate = fake.block("POST", "/channels/c1/answer")
    fake.make_channel("c1")
    answer = asyncio.create_task(running.client.channels.answer("c1"))
    await fake.wait_for(lambda: any(r.path == "/ari/channels/c1/answer" for r in fake.requests))
    await fake.drop()
    with pytest.raises(AriConnectionError, match="socket lost"):
        await asyncio.wait_for(answer, 5)
    gate.set()
    await running.rec.wait_type(ev.Connected, 2)
    await running.client.channels.answer("c1")  # and the next one goes through


async def test_unanswered_request_times_out(fake: FakeAri, run_client: RunClient) -> None:
    running = await run_client(rest_transport="websocket", request_timeout=0.1)
    fake.rest_over_websocket = False  # an Asterisk older than 22.4 ignores RESTRequest
    with pytest.raises(AriConnectionError, match="timed out"):
        await running.client.asterisk.ping()


async def test_unknown_transport_rejected() -> None:
    from ari import AriClient

    with pytest.raises(ValueError):
        AriClient("http://127.0.0.1:8088", "u", "p", "hotline", rest_transport="carrier-pigeon")  # type: ignore[arg-type]
