"""One client's half of ``bench/ari_events.py``, run as a subprocess so each client has a core.

    python bench/ari_worker.py ours|aioari|ceiling

Reads its settings from the environment (``ARI_BENCH_*``; the password never goes on a command
line), connects to the fake server, prints ``ready``, handles ``ARI_BENCH_EVENTS`` flooded
events, then times ``ARI_BENCH_REQUESTS`` sequential ``GET /channels/{id}`` requests, and
prints one JSON line of results. It imports only the standard library and aiohttp at the top,
because the aioari half runs in a separate virtualenv that has aioari and not this project.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

URL = os.environ.get("ARI_BENCH_URL", "")
USER = os.environ.get("ARI_BENCH_USER", "")
PASSWORD = os.environ.get("ARI_BENCH_PASSWORD", "")
APP = os.environ.get("ARI_BENCH_APP", "bench")
EVENTS = int(os.environ.get("ARI_BENCH_EVENTS", "0"))
REQUESTS = int(os.environ.get("ARI_BENCH_REQUESTS", "0"))
CHANNEL = os.environ.get("ARI_BENCH_CHANNEL", "")
# Seconds each handler awaits per event, standing in for the REST call a real handler makes.
HANDLER_IO = float(os.environ.get("ARI_BENCH_HANDLER_IO", "0"))
WARMUP = 200


class Counter:
    """Counts flooded events; times first to last, in wall-clock and in this process's CPU time."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.cpu_first = 0.0
        self.cpu_last = 0.0
        self.done = asyncio.Event()

    async def hit(self) -> None:
        if HANDLER_IO:
            await asyncio.sleep(HANDLER_IO)
        if self.count == 0:
            self.first = time.perf_counter()
            self.cpu_first = time.process_time()
        self.count += 1
        if self.count == self.total:
            self.last = time.perf_counter()
            self.cpu_last = time.process_time()
            self.done.set()

    def rate(self) -> float:
        # count-1 intervals between the first and the last handled event.
        return (self.total - 1) / (self.last - self.first) if self.last > self.first else 0.0

    def cpu_us(self) -> float:
        """Client CPU per event: unlike the rate, not capped by how fast the server sends."""
        return (self.cpu_last - self.cpu_first) / max(self.total - 1, 1) * 1e6


async def latencies(call: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    for _ in range(WARMUP):
        await call()
    samples = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "p50_ms": statistics.median(samples),
        "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
    }


def auth_header() -> str:
    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


async def raw_aiohttp_latency() -> dict[str, float]:
    """The floor: a bare aiohttp GET of the same resource, JSON decoded, no client library."""
    async with aiohttp.ClientSession(headers={"Authorization": auth_header()}) as session:
        url = f"{URL}/ari/channels/{CHANNEL}"

        async def call() -> None:
            async with session.get(url) as resp:
                await resp.json()

        return await latencies(call)


async def run_ours() -> dict[str, Any]:
    import logging

    import structlog

    from ari import AriClient
    from ari import events as ev

    # Warnings and up, on stderr: stdout carries the protocol with the parent.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )

    counter = Counter(EVENTS)

    async def handler(event: ev.Event) -> None:
        if type(event) is ev.ChannelDtmfReceived:
            await counter.hit()

    async with AriClient(URL, USER, PASSWORD, APP, max_queue=10_000) as client:
        client.on_event(handler)
        runner = asyncio.create_task(client.run())
        await client.wait_connected(timeout=10)
        print("ready", flush=True)
        await asyncio.wait_for(counter.done.wait(), 300)
        rest = await latencies(lambda: client.channels.get(CHANNEL))
    await runner
    async with AriClient(URL, USER, PASSWORD, APP + "-ws", rest_transport="websocket") as client:
        runner = asyncio.create_task(client.run())
        await client.wait_connected(timeout=10)
        over_socket = await latencies(lambda: client.channels.get(CHANNEL))
    await runner
    return {
        "events_per_s": counter.rate(),
        "cpu_us": counter.cpu_us(),
        **rest,
        "raw": await raw_aiohttp_latency(),
        "websocket": over_socket,
    }


async def run_ceiling() -> dict[str, Any]:
    """The ceiling: bare aiohttp reads the frames and does nothing else (no JSON, no handler).

    No client can go faster than this against the same server; a figure close to it means the
    server or the transport, not the client, was the limit.
    """
    counter = Counter(EVENTS)
    ws_url = URL.replace("http", "ws", 1) + f"/ari/events?app={APP}"
    async with aiohttp.ClientSession(headers={"Authorization": auth_header()}) as session:
        async with session.ws_connect(ws_url) as ws:
            print("ready", flush=True)
            while counter.count < counter.total:
                msg = await ws.receive()
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"unexpected frame {msg.type.name}")
                await counter.hit()
    return {
        "events_per_s": counter.rate(),
        "cpu_us": counter.cpu_us(),
        "p50_ms": float("nan"),
        "p99_ms": float("nan"),
    }


def swagger_listing() -> dict[str, Any]:
    """The few ARI operations the aioari half uses, as the Swagger 1.1 listing aioari loads."""
    base = URL + "/ari"

    def declaration(path: str, apis: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "swaggerVersion": "1.1",
            "basePath": base,
            "resourcePath": path,
            "apis": apis,
            "models": {},
        }

    events = declaration(
        "/api-docs/events.{format}",
        [
            {
                "path": "/events",
                "operations": [
                    {
                        "httpMethod": "GET",
                        "upgrade": "websocket",
                        "websocketProtocol": "ari",
                        "nickname": "eventWebsocket",
                        "responseClass": "Message",
                        "parameters": [
                            {"name": "app", "paramType": "query", "required": True, "dataType": "string"}
                        ],
                    }
                ],
            }
        ],
    )
    channels = declaration(
        "/api-docs/channels.{format}",
        [
            {
                "path": "/channels/{channelId}",
                "operations": [
                    {
                        "httpMethod": "GET",
                        "nickname": "get",
                        "responseClass": "Channel",
                        "parameters": [{"name": "channelId", "paramType": "path", "required": True}],
                    }
                ],
            }
        ],
    )
    return {
        "swaggerVersion": "1.1",
        "basePath": base,
        "apiVersion": "9.0.0",
        "apis": [
            {"path": "/api-docs/events.{format}", "description": "events", "api_declaration": events},
            {"path": "/api-docs/channels.{format}", "description": "channels", "api_declaration": channels},
        ],
    }


async def run_aioari() -> dict[str, Any]:
    import aioari  # type: ignore[import-not-found]
    from aioswagger11.http_client import AsynchronousHttpClient  # type: ignore[import-not-found]

    counter = Counter(EVENTS)
    http = AsynchronousHttpClient()
    # aioari's own authenticators put credentials in the URL (api_key, or for WebSockets even
    # the Basic header as a query parameter); give its session the header instead, as we do.
    await http.session.close()
    http.session = aiohttp.ClientSession(headers={"Authorization": auth_header()})
    http.authenticator = None
    client = aioari.Client(URL + "/", http)
    client.swagger.url = swagger_listing()  # served from memory: the fake has no /ari/api-docs
    await client.init()

    async def handler(msg: dict[str, Any]) -> None:
        await counter.hit()

    client.on_event("ChannelDtmfReceived", handler)
    runner = asyncio.create_task(client.run(apps=APP))
    # aioari has no "connected" signal; poll its socket set.
    while not client.websockets:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    await asyncio.wait_for(counter.done.wait(), 300)
    rest = await latencies(lambda: client.channels.get(channelId=CHANNEL))
    await client.close()
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    return {"events_per_s": counter.rate(), "cpu_us": counter.cpu_us(), **rest}


def main() -> None:
    kind = sys.argv[1]
    runs = {"ours": run_ours, "aioari": run_aioari, "ceiling": run_ceiling}
    result = asyncio.run(runs[kind]())
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
