"""Pages as text for people: an SMS through an HTTP gateway, an e-mail through SMTP. One try per send.

Both carry the acknowledgement code and link, so a reader can acknowledge from the phone or the
inbox. What people read is Turkish first, then English; the summary itself is already written in
the target's language. Neither the gateway token, the SMTP password nor the acknowledgement link
ever reaches a log or a ``Delivery.detail``.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

import aiohttp
import orjson
import structlog

from escalation.channels import Delivery, PageMessage
from escalation.webhook import post_once

log = structlog.get_logger(__name__)

# About two concatenated GSM-7 segments (2 x 153). Turkish letters outside GSM-7 make a gateway
# without the Turkish shift table send more, shorter segments; the gateway splits, we only bound.
SMS_LIMIT = 300
_ACK_LABELS = {"tr": "Onay kodu", "en": "Ack code"}
_ACK_LABEL_BOTH = "Onay kodu/Code"


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def sms_text(message: PageMessage, limit: int = SMS_LIMIT) -> str:
    """The summary, cut at a word to fit ``limit`` characters, then the code and the link.

    The code and link are never cut (a cut link acknowledges nothing), so a very long link may
    take the text past ``limit``. The label follows the target's language; Turkish and English
    together when the language is neither.
    """
    label = _ACK_LABELS.get(message.language.split("-")[0].lower(), _ACK_LABEL_BOTH)
    suffix = f"{label}: {message.ack_code} {message.ack_url}"
    text = _one_line(message.text)
    room = limit - len(suffix) - 1
    if len(text) > room:
        cut = text[: max(room - 1, 0)]
        if " " in cut:
            cut = cut.rsplit(" ", 1)[0]
        text = f"{cut.rstrip(' ,;:.-')}…" if cut else ""
    return f"{text} {suffix}" if text else suffix


def normalise_number(raw: str) -> str | None:
    """E.164 (``+905321234567``) from E.164, ``00``-prefixed or Turkish national input; None if
    it looks like neither. Rough on purpose: the gateway has the last word."""
    number = re.sub(r"[\s\-().]", "", raw)
    if number.startswith("00"):
        number = "+" + number[2:]
    if re.fullmatch(r"\+[1-9][0-9]{7,14}", number):
        return number
    if re.fullmatch(r"0?[2-58][0-9]{9}", number):  # 0532 123 45 67, 532 123 45 67, 0212 ..., 0850 ...
        return "+90" + number[-10:]
    return None


class SmsSender:
    """POSTs ``{to, text, reference}`` as JSON to an HTTP SMS gateway with a bearer token.

    Gateways name the fields differently, hence ``to_field``, ``text_field`` and
    ``reference_field``; the reference is the idempotency key, for gateways that deduplicate.
    The number is sent in E.164. Statuses are read as for the webhook: 2xx sent, 5xx/408/429
    retried, other 4xx refused.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        token: str,
        *,
        to_field: str = "to",
        text_field: str = "text",
        reference_field: str = "reference",
        limit: int = SMS_LIMIT,
        timeout: float = 5.0,
    ) -> None:
        self._session = session
        self._url = url
        self._token = token
        self._fields = (to_field, text_field, reference_field)
        self._limit = limit
        self._timeout = timeout

    async def send(self, message: PageMessage) -> Delivery:
        number = normalise_number(message.address)
        if number is None:
            delivery = Delivery(ok=False, retry=False, detail="invalid phone number")
        else:
            to_field, text_field, reference_field = self._fields
            body = {
                to_field: number,
                text_field: sms_text(message, self._limit),
                reference_field: message.key,
            }
            headers = {
                "Authorization": f"Bearer {self._token}",
                "Content-Type": "application/json",
                "Idempotency-Key": message.key,
            }
            delivery = await post_once(self._session, self._url, orjson.dumps(body), headers, self._timeout)
        (log.info if delivery.ok else log.warning)(
            "sms.sent" if delivery.ok else "sms.failed",
            page_id=message.page_id,
            retry=delivery.retry,
            detail=delivery.detail,
        )
        return delivery


def _valid_address(address: str) -> bool:
    return re.fullmatch(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+", address) is not None


def message_id(key: str, sender: str) -> str:
    """The same ``Message-ID`` for every try of one page, so a repeat is recognisable."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "alo-hotline.invalid"
    return f"<page-{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def _field(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def page_email(message: PageMessage, sender: str) -> EmailMessage:
    """The e-mail of a page: subject, summary, incident fields, then how to acknowledge."""
    incident = message.incident
    incident_id = _one_line(incident.get("id") or message.page_id)
    category = _one_line(incident.get("category") or "olay/incident")
    fields = [f"{name}: {_one_line(_field(value))}" for name, value in incident.items()]
    body = "\n".join(
        [
            message.text,
            "",
            "Olay bilgileri / Incident:",
            *fields,
            "",
            "Onaylamak için bağlantıyı açın ya da kodu bildirin.",
            "To acknowledge, open the link or give the code.",
            f"Bağlantı / Link: {message.ack_url}",
            f"Onay kodu / Code: {message.ack_code}",
            "",
            "Bu bildirim onaylanana kadar tekrarlanır. / This page repeats until it is acknowledged.",
            f"Deneme / Attempt: {message.attempt} · Referans / Reference: {message.key}",
        ]
    )
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.address
    mail["Subject"] = f"[ACİL/URGENT] {category} — {incident_id}"
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = message_id(message.key, sender)
    mail["X-Alo-Idempotency-Key"] = _one_line(message.key)
    mail["X-Alo-Attempt"] = str(message.attempt)
    mail.set_content(body + "\n")
    return mail


def _classify(error: Exception) -> Delivery:
    """SMTP 4xx, lost connections and timeouts are temporary; 5xx and setup faults are not."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        retry = any(not 500 <= code < 600 for code in codes)
        return Delivery(ok=False, retry=retry, detail=f"recipient refused: SMTP {', '.join(map(str, codes))}")
    if isinstance(error, smtplib.SMTPResponseException):
        return Delivery(ok=False, retry=not 500 <= error.smtp_code < 600, detail=f"SMTP {error.smtp_code}")
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return Delivery(ok=False, retry=True, detail="SMTP server closed the connection")
    if isinstance(error, smtplib.SMTPException | ssl.SSLCertVerificationError):
        # STARTTLS or AUTH not offered, no usable login method, a certificate we cannot trust.
        return Delivery(ok=False, retry=False, detail=f"SMTP setup failed ({type(error).__name__})")
    return Delivery(ok=False, retry=True, detail=f"SMTP connection failed ({type(error).__name__})")


class EmailSender:
    """Sends a page by SMTP (optional STARTTLS and login) in a worker thread: ``smtplib`` blocks,
    the event loop must not. ``timeout`` bounds each network step of the thread."""

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        sender: str,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._starttls = starttls
        self._login = (username, password or "") if username else None
        self._timeout = timeout

    async def send(self, message: PageMessage) -> Delivery:
        if not _valid_address(message.address):
            delivery = Delivery(ok=False, retry=False, detail="invalid e-mail address")
        else:
            try:
                await asyncio.to_thread(self._deliver, page_email(message, self._sender))
                delivery = Delivery(ok=True, detail="SMTP accepted")
            except (smtplib.SMTPException, OSError) as error:
                delivery = _classify(error)
        (log.info if delivery.ok else log.warning)(
            "email.sent" if delivery.ok else "email.failed",
            page_id=message.page_id,
            retry=delivery.retry,
            detail=delivery.detail,
        )
        return delivery

    def _deliver(self, mail: EmailMessage) -> None:
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self._login is not None:
                smtp.login(*self._login)
            smtp.send_message(mail)
