"""The webhook sender against a real local HTTP receiver that verifies, deduplicates and counts."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from escalation.channels import Delivery, PageMessage
from escalation.webhook import SIGNATURE_HEADER, WebhookSender, sign, verify
from hotline.clock import Clock

SECRET = b"police-desk-shared-secret"
ACK_URL = "https://hotline.example/ack/one-page-token-XYZ"


def page(address: str, **changes: Any) -> PageMessage:
    message = PageMessage(
        page_id="pg-1",
        key="inc-7:level-1:loop-1:target-3",
        attempt=1,
        incident={"id": "2026-000123", "category": "violence", "province": "Ankara"},
        text="Ankara Çankaya: ev içi şiddet ihbarı, arayan tehlikede.",
        language="tr",
        address=address,
        ack_url=ACK_URL,
        ack_code="4821",
    )
    return replace(message, **changes)


@dataclass
class Receiver:
    """A police system's endpoint: verifies, acts once per Idempotency-Key, answers ``status``."""

    status: int = 200
    secret: bytes = SECRET
    requests: list[dict[str, str]] = field(default_factory=list)  # headers of every request
    verified: list[bool] = field(default_factory=list)
    acted: list[dict[str, Any]] = field(default_factory=list)  # bodies, once per key

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(dict(request.headers))
        ok = verify(body, request.headers.get(SIGNATURE_HEADER, ""), self.secret, now=int(time.time()))
        self.verified.append(ok)
        if not ok:
            return web.Response(status=401)
        key = request.headers["Idempotency-Key"]
        if all(seen["key"] != key for seen in self.acted):
            self.acted.append(orjson.loads(body))
        return web.Response(status=self.status)


async def moved(request: web.Request) -> web.Response:
    raise web.HTTPFound("/hook")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    state = Receiver()
    app = web.Application()
    app.router.add_post("/hook", state.handle)
    app.router.add_post("/moved", moved)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield state, str(server.make_url("/hook"))
    await server.close()


@pytest.fixture
async def silent_url() -> AsyncIterator[str]:
    """A server that accepts the connection and never answers."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read()  # until the client gives up

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/hook"
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    yield port


def assert_clean(delivery: Delivery) -> None:
    for secret in (SECRET.decode(), ACK_URL, "one-page-token", "şiddet"):
        assert secret not in delivery.detail


# -- the signature, byte for byte --------------------------------------------------------------


def test_sign_matches_a_fixed_vector() -> None:
    # printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
    assert sign(b'{"a":1}', b"s3cret", 1700000000) == (
        "t=1700000000,v1=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
    )


def test_verify_rejects_tampering_wrong_secret_and_stale_or_future_times() -> None:
    body, now = b'{"id":"pg-1"}', 1_767_225_600
    header = sign(body, SECRET, now)
    assert verify(body, header, SECRET, now=now)
    assert verify(body, header, SECRET, now=now + 300)
    assert not verify(b'{"id":"pg-2"}', header, SECRET, now=now)
    assert not verify(body, header, b"another-secret", now=now)
    assert not verify(body, header, SECRET, now=now + 301)
    assert not verify(body, header, SECRET, now=now - 301)
    assert not verify(body, header, SECRET, now=now + 60, tolerance=30)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "v1=abc",
        "t=1767225600",
        "t=abc,v1=00",
        "t=1767225600,t=1767225600,v1=00",
        "t=-5,v1=00",
        "t=²,v1=00",
        "t=1767225600,v1=ü",
    ],
)
def test_verify_rejects_malformed_headers(header: str) -> None:
    assert not verify(b"{}", header, SECRET, now=1_767_225_600)


def test_a_header_signed_with_two_secrets_verifies_with_either() -> None:
    body, now, old = b"{}", 1_767_225_600, b"old-secret"
    header = sign(body, [SECRET, old], now)
    assert header.count("v1=") == 2
    assert verify(body, header, SECRET, now=now)
    assert verify(body, header, old, now=now)
    assert not verify(body, header, b"third", now=now)
    with pytest.raises(ValueError):
        sign(body, [], now)


# -- the sender against a live receiver --------------------------------------------------------


async def test_a_good_delivery_is_signed_and_carries_the_page(
    session: aiohttp.ClientSession, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    message = page(url)
    delivery = await WebhookSender(session, lambda m: {url: SECRET}[m.address]).send(message)
    assert delivery == Delivery(ok=True, detail="HTTP 200")
    assert state.verified == [True]
    headers = state.requests[0]
    assert headers["Idempotency-Key"] == message.key
    assert headers["X-Alo-Attempt"] == "1"
    assert headers["Content-Type"] == "application/json"
    assert state.acted == [
        {
            "id": "pg-1",
            "key": message.key,
            "attempt": 1,
            "incident": message.incident,
            "text": message.text,
            "language": "tr",
            "ack": {"url": ACK_URL, "code": "4821"},
        }
    ]


async def test_the_wrong_secret_is_refused_by_the_receiver_for_good(
    session: aiohttp.ClientSession, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    delivery = await WebhookSender(session, lambda _: b"not-the-shared-one").send(page(url))
    assert (delivery.ok, delivery.retry, state.verified) == (False, False, [False])


@pytest.mark.parametrize(
    ("status", "retry"),
    [(500, True), (503, True), (429, True), (408, True), (404, False), (400, False), (401, False)],
)
async def test_statuses_are_classified(
    session: aiohttp.ClientSession, receiver: tuple[Receiver, str], status: int, retry: bool
) -> None:
    state, url = receiver
    state.status = status
    delivery = await WebhookSender(session, lambda _: SECRET).send(page(url))
    assert delivery == Delivery(ok=False, retry=retry, detail=f"HTTP {status}")


async def test_a_redirect_is_not_followed(
    session: aiohttp.ClientSession, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    delivery = await WebhookSender(session, lambda _: SECRET).send(page(url.replace("/hook", "/moved")))
    assert (delivery.ok, delivery.retry, state.requests) == (False, False, [])


async def test_a_receiver_that_never_answers_is_retried_after_the_timeout(
    session: aiohttp.ClientSession, silent_url: str
) -> None:
    async with asyncio.timeout(10):  # a sender that ignored its own timeout would hang here
        delivery = await WebhookSender(session, lambda _: SECRET, timeout=0.2).send(page(silent_url))
    assert (delivery.ok, delivery.retry) == (False, True)
    assert_clean(delivery)


async def test_a_refused_connection_is_retried(session: aiohttp.ClientSession, closed_port: int) -> None:
    delivery = await WebhookSender(session, lambda _: SECRET).send(page(f"http://127.0.0.1:{closed_port}/h"))
    assert (delivery.ok, delivery.retry) == (False, True)
    assert delivery.detail.startswith("connection failed")


async def test_a_target_without_a_secret_or_with_a_bad_url_is_not_retried(
    session: aiohttp.ClientSession, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    secrets: dict[str, bytes] = {}
    no_secret = await WebhookSender(session, lambda m: secrets[m.address]).send(page(url))
    bad_url = await WebhookSender(session, lambda _: SECRET).send(page("not a url"))
    assert (no_secret.ok, no_secret.retry, bad_url.ok, bad_url.retry) == (False, False, False, False)
    assert state.requests == []


async def test_tries_of_one_page_share_the_key_and_are_acted_on_once(
    session: aiohttp.ClientSession, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    start = datetime.now(UTC)
    times = iter([start, start + timedelta(seconds=30)])
    sender = WebhookSender(session, lambda _: SECRET, clock=Clock(wall=lambda: next(times)))
    state.status = 503
    first = await sender.send(page(url))
    state.status = 200
    second = await sender.send(page(url))
    assert (first.retry, second.ok) == (True, True)
    keys = [headers["Idempotency-Key"] for headers in state.requests]
    signatures = [headers[SIGNATURE_HEADER] for headers in state.requests]
    assert keys == [page(url).key] * 2
    assert signatures[0] != signatures[1]  # a fresh timestamp on every try
    assert state.verified == [True, True]
    assert len(state.acted) == 1


async def test_details_and_logs_hold_no_secret_link_or_text(
    session: aiohttp.ClientSession, receiver: tuple[Receiver, str], silent_url: str
) -> None:
    state, url = receiver
    sender = WebhookSender(session, lambda _: SECRET, timeout=0.2)
    with capture_logs() as logs:
        deliveries = [await sender.send(page(url))]
        state.status = 500
        deliveries.append(await sender.send(page(url)))
        deliveries.append(await sender.send(page(silent_url)))
    for delivery in deliveries:
        assert_clean(delivery)
    assert [entry["event"] for entry in logs] == ["webhook.delivered", "webhook.failed", "webhook.failed"]
    logged = repr(logs)
    for secret in (SECRET.decode(), ACK_URL, "şiddet", url):
        assert secret not in logged
