"""A kill -9 of `hotline run` with a page waiting for its next try and an acknowledgement timer
running: after the restart the page is delivered once (the same key as before the crash) and
the next level is paged when its timer falls due, not later. A webhook receiver in the test
checks every page's HMAC signature and counts deliveries per idempotency key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from escalation.webhook import SIGNATURE_HEADER, verify
from hotline.settings import Settings
from tests.harness import sipp
from tests.integration.service import Service, start_service

SECRET = b"test-webhook-secret"  # as tests/integration/conftest.py writes hook.key
DOWN = 4.0  # seconds the hotline is down: past the page's next try, inside the level's 10 s timer


@dataclass
class Arrival:
    path: str
    key: str
    attempt: str
    at: float  # time.monotonic()
    status: int
    body: dict[str, object]


@dataclass
class Receiver:
    """Verifies each request's signature; answers 500 to the first request of the paths in
    ``fail_once``; accepts each idempotency key once (a repeat is acknowledged, not acted on)."""

    fail_once: set[str]
    arrivals: list[Arrival] = field(default_factory=list)
    acted: dict[str, int] = field(default_factory=dict)  # key -> times acted on
    bad_signatures: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(body, request.headers.get(SIGNATURE_HEADER, ""), SECRET, int(time.time())):
            self.bad_signatures += 1
            return web.Response(status=401)
        key = request.headers["Idempotency-Key"]
        status = 200
        if request.path in self.fail_once:
            self.fail_once.discard(request.path)
            status = 500
        elif key not in self.acted:
            self.acted[key] = 1
        else:
            self.acted[key] += 1  # a receiver that dedups would ignore it; counted to prove none came
        self.arrivals.append(
            Arrival(
                request.path,
                key,
                request.headers["X-Alo-Attempt"],
                time.monotonic(),
                status,
                await request.json(),
            )
        )
        self.changed.set()
        return web.Response(status=status)

    async def first(self, path: str, status: int, timeout: float = 40) -> Arrival:
        async with asyncio.timeout(timeout):
            while True:
                found = [a for a in self.arrivals if a.path == path and a.status == status]
                if found:
                    return found[0]
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def receiver(hook_port: int) -> AsyncIterator[Receiver]:
    found = Receiver(fail_once={"/pages"})
    app = web.Application()
    app.router.add_post("/pages", found.handle)
    app.router.add_post("/backup", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()
    yield found
    await runner.cleanup()


async def sign_in(http: aiohttp.ClientSession, url: str, settings: Settings) -> str:
    password = (settings.state_path / "secrets" / "web-admin-password").read_text().strip()
    async with http.post(f"{url}/api/login", json={"username": "admin", "password": password}) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["csrf_token"])


async def test_a_kill_9_with_a_page_due_again_and_a_timer_running_loses_and_repeats_nothing(
    settings: Settings, receiver: Receiver
) -> None:
    port = sipp.free_port(kind=1)
    url = f"http://127.0.0.1:{port}"
    services: list[Service] = []
    try:
        first = await start_service(settings, HOTLINE_WEB__PORT=str(port))
        services.append(first)
        await first.wait_for("hotline_ready")
        # A caller who stays in the menus (no key) for the whole test: the agent presses the button.
        caller = asyncio.create_task(sipp.call(settings, "183", hold=25))
        started = await first.wait_for("call_started")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            csrf = await sign_in(http, url, settings)
            async with http.post(
                f"{url}/api/calls/{started['call_id']}/urgent",
                json={"category": "violence", "severity": "high", "note": "Eşi bıçakla tehdit ediyor"},
                headers={"X-CSRF-Token": csrf},
            ) as response:
                assert response.status == 201, await response.text()
                incident = await response.json()
        refused = await receiver.first("/pages", 500)  # its next try is due in 5 s; the level's timer runs
        first.process.kill()  # no goodbye
        await first.process.wait()
        await asyncio.sleep(DOWN)  # the scenario itself: the hotline stays down a while
        restarted = time.monotonic()
        second = await start_service(settings, HOTLINE_WEB__PORT=str(port))
        services.append(second)
        retried = await receiver.first("/pages", 200)
        backup = await receiver.first("/backup", 200)
        await caller
    finally:
        for service in services:
            await service.kill()
    assert receiver.bad_signatures == 0
    assert retried.key == refused.key == f"{incident['id']}:1:hook_desk:webhook"  # the same attempt
    assert (refused.attempt, retried.attempt) == ("1", "2")  # two tries of it, counted across the crash
    assert receiver.acted == {retried.key: 1, backup.key: 1}  # each page acted on exactly once
    assert retried.body["incident"]["id"] == incident["id"]  # type: ignore[index]
    # The page overdue while we were down went out on restart; the level's 10 s acknowledgement
    # timer ran on from before the crash (restarted from scratch it would fire 10 s after restart).
    assert retried.at - restarted < 5
    assert backup.at - refused.at >= 10 - 0.5
    assert backup.at - restarted < 10 - DOWN / 2
