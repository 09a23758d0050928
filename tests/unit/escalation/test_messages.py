"""The SMS sender against a real local HTTP gateway, the e-mail sender against a real local SMTP
server (a small one written here with asyncio streams: the venv has no aiosmtpd)."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from escalation.channels import Delivery, PageMessage
from escalation.messages import (
    SMS_LIMIT,
    EmailSender,
    SmsSender,
    message_id,
    normalise_number,
    sms_text,
)

TOKEN = "gateway-bearer-token-123"
PASSWORD = "smtp-password-456"
ACK_URL = "https://hotline.example/a/one-page-token-XYZ"
FROM = "alo-hotline@hotline.example"


def page(address: str, **changes: Any) -> PageMessage:
    message = PageMessage(
        page_id="pg-1",
        key="inc-7:level-1:loop-1:target-3",
        attempt=2,
        incident={"id": "2026-000123", "category": "violence", "province": "Ankara", "risk": ["child"]},
        text="Ankara Çankaya: ev içi şiddet ihbarı, arayan tehlikede.",
        language="tr",
        address=address,
        ack_url=ACK_URL,
        ack_code="4821",
    )
    return replace(message, **changes)


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    yield port


# -- SMS -----------------------------------------------------------------------------------------


def test_a_short_summary_is_kept_whole_with_the_code_and_link() -> None:
    assert sms_text(page("+905321234567")) == (
        f"Ankara Çankaya: ev içi şiddet ihbarı, arayan tehlikede. Onay kodu: 4821 {ACK_URL}"
    )


def test_a_long_summary_is_cut_at_a_word_and_the_link_kept() -> None:
    text = sms_text(page("+905321234567", text="yardım " * 100))
    assert len(text) <= SMS_LIMIT
    assert text.endswith(f"yardım… Onay kodu: 4821 {ACK_URL}")


@pytest.mark.parametrize(
    ("language", "label"),
    [("tr", "Onay kodu"), ("en", "Ack code"), ("en-GB", "Ack code"), ("ar", "Onay kodu/Code")],
)
def test_the_code_label_follows_the_language(language: str, label: str) -> None:
    assert sms_text(page("+905321234567", language=language)).endswith(f" {label}: 4821 {ACK_URL}")


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("+90 532 123 45 67", "+905321234567"),
        ("0532 123 45 67", "+905321234567"),
        ("(0312) 555-12-34", "+903125551234"),
        ("5321234567", "+905321234567"),
        ("0049 30 1234567", "+49301234567"),
        ("+4915112345678", "+4915112345678"),
        ("112", None),
        ("+9053212345\uff167", None),  # a full-width digit
        ("0532 123 45", None),
        ("police@example.org", None),
        ("+0532123456", None),
    ],
)
def test_numbers_are_checked_roughly_and_sent_in_e164(raw: str, number: str | None) -> None:
    assert normalise_number(raw) == number


@dataclass
class Gateway:
    status: int = 202
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (Authorization, JSON)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.headers.get("Authorization", ""), await request.json()))
        return web.json_response({"id": "msg-1"}, status=self.status)


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[Gateway, str, aiohttp.ClientSession]]:
    state = Gateway()
    app = web.Application()
    app.router.add_post("/sms", state.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield state, str(server.make_url("/sms")), session
    await server.close()


async def test_an_sms_goes_to_the_gateway_with_the_token_and_fields(
    gateway: tuple[Gateway, str, aiohttp.ClientSession],
) -> None:
    state, url, session = gateway
    with capture_logs() as logs:
        delivery = await SmsSender(session, url, TOKEN).send(page("0532 123 45 67"))
    assert delivery == Delivery(ok=True, detail="HTTP 202")
    message = page("0532 123 45 67")
    assert state.received == [
        (f"Bearer {TOKEN}", {"to": "+905321234567", "text": sms_text(message), "reference": message.key})
    ]
    assert [entry["event"] for entry in logs] == ["sms.sent"]
    for secret in (TOKEN, ACK_URL, "şiddet"):
        assert secret not in repr(logs)


async def test_the_gateway_field_names_are_configurable(
    gateway: tuple[Gateway, str, aiohttp.ClientSession],
) -> None:
    state, url, session = gateway
    sender = SmsSender(session, url, TOKEN, to_field="msisdn", text_field="message", reference_field="ref")
    await sender.send(page("+905321234567"))
    assert set(state.received[0][1]) == {"msisdn", "message", "ref"}


@pytest.mark.parametrize(
    ("status", "retry"), [(500, True), (502, True), (429, True), (400, False), (401, False)]
)
async def test_gateway_statuses_are_classified(
    gateway: tuple[Gateway, str, aiohttp.ClientSession], status: int, retry: bool
) -> None:
    state, url, session = gateway
    state.status = status
    delivery = await SmsSender(session, url, TOKEN).send(page("+905321234567"))
    assert delivery == Delivery(ok=False, retry=retry, detail=f"HTTP {status}")


async def test_a_bad_number_is_refused_without_asking_the_gateway(
    gateway: tuple[Gateway, str, aiohttp.ClientSession],
) -> None:
    state, url, session = gateway
    delivery = await SmsSender(session, url, TOKEN).send(page("call me"))
    assert delivery == Delivery(ok=False, retry=False, detail="invalid phone number")
    assert state.received == []


async def test_an_unreachable_gateway_is_retried(closed_port: int) -> None:
    async with aiohttp.ClientSession() as session:
        sender = SmsSender(session, f"http://127.0.0.1:{closed_port}/sms", TOKEN)
        delivery = await sender.send(page("+905321234567"))
    assert (delivery.ok, delivery.retry) == (False, True)
    assert TOKEN not in delivery.detail


# -- e-mail --------------------------------------------------------------------------------------


@dataclass
class SmtpServer:
    """Just enough SMTP: EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT; each reply to
    RCPT and to the end of DATA can be set; ``greet=False`` makes a server that never speaks."""

    rcpt_reply: str = "250 OK"
    data_reply: str = "250 OK queued"
    auth: bool = False
    greet: bool = True
    mails: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    logins: list[bytes] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        sender, recipients = "", list[str]()
        try:
            if not self.greet:
                await reader.read()
                return
            await reply("220 test.local ESMTP")
            while line := (await reader.readline()).decode().rstrip("\r\n"):
                verb, _, rest = line.partition(" ")
                match verb.upper():
                    case "EHLO":
                        features = ["test.local", "8BITMIME", *(["AUTH PLAIN"] if self.auth else [])]
                        last = len(features) - 1
                        await reply(
                            "\r\n".join(f"250{'-' if i < last else ' '}{f}" for i, f in enumerate(features))
                        )
                    case "HELO" | "NOOP":
                        await reply("250 OK")
                    case "AUTH" if self.auth:
                        self.logins.append(base64.b64decode(rest.split()[1]))
                        await reply("235 Authenticated")
                    case "MAIL":
                        sender, recipients = rest, list[str]()
                        await reply("250 OK")
                    case "RCPT":
                        await reply(self.rcpt_reply)
                        if self.rcpt_reply.startswith("2"):
                            recipients.append(rest)
                    case "DATA":
                        await reply("354 End with <CR><LF>.<CR><LF>")
                        data = b""
                        while (chunk := await reader.readline()) != b".\r\n":
                            data += chunk[1:] if chunk.startswith(b"..") else chunk
                        if self.data_reply.startswith("2"):
                            self.mails.append((sender, recipients, data))
                        await reply(self.data_reply)
                    case "RSET":
                        await reply("250 OK")
                    case "QUIT":
                        await reply("221 Bye")
                        return
                    case _:
                        await reply("502 Command not implemented")
        finally:
            writer.close()


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    state = SmtpServer()
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    yield state
    server.close()
    await server.wait_closed()


def parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


async def test_an_email_arrives_with_subject_body_code_and_message_id(smtp: SmtpServer) -> None:
    message = page("nobetci@emniyet.example")
    delivery = await EmailSender("127.0.0.1", smtp.port, sender=FROM).send(message)
    assert delivery == Delivery(ok=True, detail="SMTP accepted")
    [(sender, recipients, data)] = smtp.mails
    assert (sender, recipients) == (f"FROM:<{FROM}>", ["TO:<nobetci@emniyet.example>"])
    mail = parse(data)
    assert mail["Subject"] == "[ACİL/URGENT] violence — 2026-000123"
    assert mail["From"] == FROM
    assert mail["To"] == "nobetci@emniyet.example"
    assert mail["Message-ID"] == message_id(message.key, FROM)
    assert mail["Message-ID"].endswith("@hotline.example>")
    body = mail.get_content()
    assert body.startswith(message.text)
    for expected in (
        "province: Ankara",
        'risk: ["child"]',
        f"Bağlantı / Link: {ACK_URL}",
        "Onay kodu / Code: 4821",
        "Deneme / Attempt: 2",
    ):
        assert expected in body


async def test_every_try_of_one_page_has_the_same_message_id(smtp: SmtpServer) -> None:
    sender = EmailSender("127.0.0.1", smtp.port, sender=FROM)
    await sender.send(page("nobetci@emniyet.example"))
    await sender.send(page("nobetci@emniyet.example"))
    await sender.send(page("nobetci@emniyet.example", key="another-attempt"))
    ids = [parse(data)["Message-ID"] for _, _, data in smtp.mails]
    assert ids[0] == ids[1] != ids[2]
    assert message_id("k", f"Alo Hotline <{FROM}>") == message_id("k", FROM)


@pytest.mark.parametrize(
    ("rcpt", "data", "retry"),
    [
        ("451 4.3.0 Try again later", "250 OK", True),
        ("550 5.1.1 No such user", "250 OK", False),
        ("250 OK", "451 4.3.0 Queue full", True),
        ("250 OK", "554 5.7.1 Rejected", False),
    ],
)
async def test_smtp_replies_are_classified(smtp: SmtpServer, rcpt: str, data: str, retry: bool) -> None:
    smtp.rcpt_reply, smtp.data_reply = rcpt, data
    delivery = await EmailSender("127.0.0.1", smtp.port, sender=FROM).send(page("nobetci@emniyet.example"))
    assert (delivery.ok, delivery.retry) == (False, retry)
    assert (rcpt if rcpt[0] != "2" else data)[:3] in delivery.detail
    assert smtp.mails == []


async def test_login_reaches_the_server_and_the_password_stays_out_of_the_record(smtp: SmtpServer) -> None:
    smtp.auth = True
    sender = EmailSender("127.0.0.1", smtp.port, sender=FROM, username="hotline", password=PASSWORD)
    with capture_logs() as logs:
        delivery = await sender.send(page("nobetci@emniyet.example"))
    assert delivery.ok
    assert smtp.logins == [f"\0hotline\0{PASSWORD}".encode()]
    assert [entry["event"] for entry in logs] == ["email.sent"]
    for secret in (PASSWORD, ACK_URL, "şiddet"):
        assert secret not in repr(logs) + delivery.detail


async def test_starttls_asked_of_a_server_without_it_is_a_setup_fault(smtp: SmtpServer) -> None:
    delivery = await EmailSender("127.0.0.1", smtp.port, sender=FROM, starttls=True).send(
        page("nobetci@emniyet.example")
    )
    assert (delivery.ok, delivery.retry) == (False, False)


async def test_a_refused_connection_is_retried(closed_port: int) -> None:
    delivery = await EmailSender("127.0.0.1", closed_port, sender=FROM).send(page("nobetci@emniyet.example"))
    assert (delivery.ok, delivery.retry) == (False, True)


async def test_a_silent_server_times_out_without_blocking_the_event_loop(smtp: SmtpServer) -> None:
    smtp.greet = False
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    ticker = asyncio.create_task(tick())
    async with asyncio.timeout(10):  # a sender that ignored its own timeout would hang here
        delivery = await EmailSender("127.0.0.1", smtp.port, sender=FROM, timeout=0.3).send(
            page("nobetci@emniyet.example")
        )
    ticker.cancel()
    assert (delivery.ok, delivery.retry) == (False, True)
    assert ticks >= 5  # the loop kept running while the thread waited


@pytest.mark.parametrize("address", ["not-an-address", "a@b", "x@y.example\r\nBcc: all@example.org", ""])
async def test_a_bad_address_is_refused_without_connecting(smtp: SmtpServer, address: str) -> None:
    delivery = await EmailSender("127.0.0.1", smtp.port, sender=FROM).send(page(address))
    assert delivery == Delivery(ok=False, retry=False, detail="invalid e-mail address")
