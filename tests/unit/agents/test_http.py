"""The agent and supervisor API over HTTP, on the fake ARI server: roles, commands, the live
event stream and metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import col, select

from agents import http
from agents.models import AgentEvent
from hotline import auth
from hotline.auth import Role, Users
from hotline.models import utcnow
from hotline.web import build_web
from tests.conftest import make_settings
from tests.unit.agents.harness import Desk

PASSWORD = "doğru-parola"
Client = TestClient[web.Request, web.Application]
SESSION_CHECK = 0.05  # seconds between a stream's session checks: short, so tests end fast


class HandClock:
    """The web shell's clock (sessions, sign-in throttle): still, unless a test moves it."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> HandClock:
    return HandClock()


@pytest.fixture
async def client(
    desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: HandClock
) -> AsyncIterator[Client]:
    monkeypatch.setattr(auth, "SCRYPT_N", 2**10)  # cheap hashes: these tests are not about them
    users = Users(desk.store)
    await users.add("ayse", Role.agent, PASSWORD, "Ayşe Yılmaz", "a1")
    await users.add("ali", Role.agent, PASSWORD, "Ali Kaya")  # a user who is not an agent
    await users.add("sema", Role.supervisor, PASSWORD, "Sema Kaya")
    await users.add("eski", Role.agent, PASSWORD, "Eski Çalışan", "a9")  # a9: no longer configured
    settings = make_settings(tmp_path, "")
    routes = http.routes(desk.flow, desk.store, session_check=SESSION_CHECK)
    client = TestClient(TestServer(build_web(settings, desk.store, [routes], clock=clock)))
    await client.start_server()
    yield client
    await client.close()


async def bearer(client: Client, username: str) -> dict[str, str]:
    body = {"username": username, "password": PASSWORD, "bearer": True}
    async with client.post("/api/login", json=body) as r:
        assert r.status == 200, await r.text()
        return {"Authorization": f"Bearer {(await r.json())['token']}"}


async def call(client: Client, method: str, path: str, who: dict[str, str], **body: Any) -> tuple[int, Any]:
    async with client.request(method, path, headers=who, json=body or None) as r:
        return r.status, await r.json()


async def test_an_agent_pauses_with_a_configured_reason_and_resumes(client: Client) -> None:
    ayse = await bearer(client, "ayse")
    status, state = await call(client, "GET", "/api/agent", ayse)
    assert status == 200 and (state["agent"], state["presence"]) == ("a1", "available")
    status, error = await call(client, "POST", "/api/agent/pause", ayse, reason="nap")
    assert status == 400 and "nap" in error["message"]
    status, state = await call(client, "POST", "/api/agent/pause", ayse, reason="meal")
    assert status == 200 and (state["presence"], state["reason"]) == ("paused", "meal")
    status, state = await call(client, "POST", "/api/agent/resume", ayse)
    assert status == 200 and state["presence"] == "available"
    status, error = await call(client, "POST", "/api/agent/resume", ayse)
    assert status == 409 and "not paused" in error["message"]
    status, error = await call(client, "POST", "/api/agent/transfer", ayse, queue="operator")
    assert status == 409 and "no call" in error["message"]


async def test_agents_act_only_on_themselves_and_supervisors_on_anyone(client: Client) -> None:
    ayse, ali, sema = [await bearer(client, name) for name in ("ayse", "ali", "sema")]
    assert (await call(client, "GET", "/api/live", ayse))[0] == 403
    assert (await call(client, "POST", "/api/agents/a1/pause", ayse, reason="meal"))[0] == 403
    assert (await call(client, "GET", "/api/agent", ali))[0] == 403  # not linked to an agent
    status, state = await call(client, "POST", "/api/agents/a1/pause", sema, reason="meeting")
    assert status == 200 and state["reason"] == "meeting"
    status, live = await call(client, "GET", "/api/live", sema)
    assert status == 200 and [a["presence"] for a in live["agents"]] == ["paused"]
    assert {q["queue"] for q in live["queues"]} >= {"emergency", "operator"}
    assert (await call(client, "POST", "/api/agents/zz/logout", sema))[0] == 404
    assert (await call(client, "POST", "/api/calls/nope/priority", sema, boost=3))[0] == 404
    assert (await call(client, "POST", "/api/calls/nope/priority", sema, boost="high"))[0] == 400
    assert (await call(client, "POST", "/api/calls/nope/spy", ayse, mode="listen", phone="a1"))[0] == 403
    status, error = await call(client, "POST", "/api/calls/nope/spy", sema, mode="listen")
    assert status == 400 and "phone" in error["message"]  # Sema has no phone of her own
    status, error = await call(client, "POST", "/api/calls/nope/spy", sema, mode="shout", phone="a1")
    assert status == 400 and "mode" in error["message"]


async def test_a_presence_change_a_supervisor_makes_is_attributed_to_them(client: Client, desk: Desk) -> None:
    ayse, sema = await bearer(client, "ayse"), await bearer(client, "sema")
    assert (await call(client, "POST", "/api/agent/pause", ayse, reason="meal"))[0] == 200
    assert (await call(client, "POST", "/api/agent/resume", ayse))[0] == 200
    assert (await call(client, "POST", "/api/agents/a1/pause", sema, reason="meeting"))[0] == 200
    assert (await call(client, "POST", "/api/agents/a1/logout", sema))[0] == 200
    await desk.store.behind.flush()
    async with desk.store.session() as session:
        rows = (await session.exec(select(AgentEvent).order_by(col(AgentEvent.id)))).all()
    assert [(r.reason, r.by) for r in rows][-4:] == [
        ("meal", ""),  # the agent's own
        ("resume", ""),
        ("meeting", "sema"),
        ("logout", "sema"),
    ]


async def read_events(response: Any, count: int) -> list[tuple[str, dict[str, Any]]]:
    events, name = [], ""
    while len(events) < count:
        line = (await response.content.readline()).decode().rstrip("\n")
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((name, json.loads(line.removeprefix("data: "))))
    return events


async def test_the_agent_event_stream_starts_with_the_state_then_follows_the_calls(
    client: Client, desk: Desk
) -> None:
    ayse = await bearer(client, "ayse")
    async with client.get("/api/agent/events", headers=ayse) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        [(kind, state)] = await read_events(stream, 1)
        assert (kind, state["presence"]) == ("state", "available")
        call_id = await desk.queued_caller()
        seen = await read_events(stream, 4)
    assert [k for k, _ in seen if k != "presence"] == ["offer", "connected"]
    assert [n["presence"] for k, n in seen if k == "presence"] == ["reserved", "on_call"]
    offer = dict(seen)["offer"]
    assert offer["call_id"] == call_id and offer["caller_number"] == "05321234567" and offer["urgent"]


async def test_supervisors_read_queue_and_agent_figures(client: Client, desk: Desk) -> None:
    sema = await bearer(client, "sema")
    await desk.queued_caller()
    await desk.until("agent_connected")
    status, rows = await call(client, "GET", "/api/metrics/queues?bucket=3600", sema)
    assert status == 200
    assert sum(r["offered"] for r in rows if r["queue"] == "emergency") == 1
    assert sum(r["answered"] for r in rows if r["queue"] == "emergency") == 1
    status, rows = await call(client, "GET", "/api/metrics/agents?bucket=3600", sema)
    assert status == 200 and sum(r["answered"] for r in rows if r["agent"] == "a1") == 1
    status, error = await call(client, "GET", "/api/metrics/queues?since=2026-11-22T10:00:00", sema)
    assert status == 400 and "time zone" in error["message"]


# -- streams end with their session -------------------------------------------------------------


async def until_closed(stream: Any) -> None:
    """Read the stream to its end; fails when it is still open after a few seconds."""
    async with asyncio.timeout(5):
        while await stream.content.readany():
            pass


async def end_session(how: str, client: Client, who: dict[str, str], username: str, clock: HandClock) -> None:
    users = Users(client.server.app[http.STORE])
    match how:
        case "sign-out":
            async with client.post("/api/logout", headers=who) as r:
                assert r.status == 200
        case "disabled":
            await users.set_disabled(username)
        case "new password":
            await users.set_password(username, "yeni-parola-123")
        case "lifetime over":
            clock.advance(12 * 3600 + 1)  # web.session_lifetime's default


@pytest.mark.parametrize("how", ["sign-out", "disabled", "new password", "lifetime over"])
@pytest.mark.parametrize(("username", "path"), [("sema", "/api/live/events"), ("ayse", "/api/agent/events")])
async def test_a_live_stream_ends_soon_after_its_session(
    client: Client, clock: HandClock, how: str, username: str, path: str
) -> None:
    who = await bearer(client, username)
    async with client.get(path, headers=who) as stream:
        [(kind, _)] = await read_events(stream, 1)
        assert kind == "state"
        await end_session(how, client, who, username, clock)
        await until_closed(stream)
    async with client.get(path, headers=who) as again:
        assert again.status == 401


async def test_a_stream_neither_keeps_its_session_from_going_idle_nor_ends_while_it_is_valid(
    client: Client, clock: HandClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = asyncio.Event()
    check = http._signed_in

    async def counted(request: web.Request) -> bool:
        try:
            return await check(request)
        finally:
            checked.set()

    monkeypatch.setattr(http, "_signed_in", counted)
    ayse, sema = await bearer(client, "ayse"), await bearer(client, "sema")
    async with client.get("/api/agent/events", headers=ayse) as stream:
        await read_events(stream, 1)
        clock.advance(5000)  # of web.session_idle's 7200: past the 60 s a session is touched after
        checked.clear()
        async with asyncio.timeout(5):
            await checked.wait()
        assert (await call(client, "POST", "/api/agents/a1/pause", sema, reason="meal"))[0] == 200
        [(kind, notice)] = await read_events(stream, 1)
        assert (kind, notice["presence"]) == ("presence", "paused")  # still open after the checks
        clock.advance(2201)  # 7201 s since Ayşe's last request: the stream is no request
        await until_closed(stream)


# -- bad requests are refused, never a 500 ------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/metrics/queues", "/api/metrics/agents"])
@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("bucket=inf", "bucket"),
        ("bucket=nan", "bucket"),
        ("bucket=1e20", "bucket"),
        ("bucket=-3600", "bucket"),
        ("bucket=0", "bucket"),
        ("bucket=59", "bucket"),
        ("bucket=abc", "bucket"),
        ("since=0001-01-01T00:00:00Z&bucket=60", "range"),
        ("since=2000-01-01T00:00:00Z&bucket=60", "31 days"),
        ("since=2026-10-01T00:00:00Z&until=2026-11-02T00:00:00Z", "31 days"),
        ("since=2026-10-01T00:00:00Z&until=2026-10-31T00:00:00Z&bucket=60", "2000"),
        ("until=0001-01-01T00:30:00%2B01:00", "range"),
        ("until=9999-12-31T23:59:59Z", "range"),
        ("since=2026-11-22T10:00:00Z&until=2026-11-22T09:00:00Z", "before"),
        ("since=yesterday", "since"),
    ],
)
async def test_metrics_refuse_windows_and_buckets_they_cannot_serve(
    client: Client, path: str, query: str, words: str
) -> None:
    sema = await bearer(client, "sema")
    async with asyncio.timeout(5):
        status, error = await call(client, "GET", f"{path}?{query}", sema)
    assert status == 400 and error["error"] == "bad_request" and words in error["message"], error


async def test_the_longest_window_and_the_most_buckets_are_served(client: Client) -> None:
    sema = await bearer(client, "sema")
    until = utcnow() + timedelta(minutes=1)
    since = until - timedelta(days=31)
    window = f"since={since:%Y-%m-%dT%H:%M:%S.%fZ}&until={until:%Y-%m-%dT%H:%M:%S.%fZ}"
    for path, who in (("/api/metrics/queues", "queue"), ("/api/metrics/agents", "agent")):
        status, rows = await call(client, "GET", f"{path}?{window}&bucket=1339.2", sema)  # 2000
        assert status == 200 and rows
        assert len([r for r in rows if r[who] == rows[0][who]]) == 2000


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"reason": "meal\xff"}'),  # not UTF-8
        ("application/json; charset=klingon", b'{"reason": "meal"}'),
        ("application/json; charset=base64", b'{"reason": "meal"}'),  # a codec, not a charset
        ("application/json", b"[" * 100_000),  # nested too deep to parse
        ("application/json", b'["meal"]'),
        ("application/json", b"meal"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_a_bad_request(
    client: Client, content_type: str, body: bytes
) -> None:
    ayse = await bearer(client, "ayse")
    headers = {**ayse, "Content-Type": content_type}
    async with client.post("/api/agent/pause", headers=headers, data=body) as r:
        assert r.status == 400 and (await r.json())["error"] == "bad_json"


async def test_a_user_whose_agent_is_no_longer_configured_is_refused_clearly(client: Client) -> None:
    eski = await bearer(client, "eski")
    for method, path in [
        ("GET", "/api/agent"),
        ("GET", "/api/agent/events"),
        ("POST", "/api/agent/login"),
        ("POST", "/api/agent/pause"),
        ("POST", "/api/agent/transfer"),
        ("POST", "/api/agent/wrap-up/end"),
    ]:
        async with client.request(method, path, headers=eski, json={"reason": "meal", "queue": "x"}) as r:
            assert r.status == 403, (path, await r.text())
            error = await r.json()
            assert error["error"] == "unknown_agent" and "a9" in error["message"]
