"""How a page leaves the hotline: one sender per channel (voice, webhook, SMS, e-mail).

A sender makes one delivery attempt and says how it went; it never retries by itself. Retries,
their backoff and the record of every attempt belong to the durable outbox (``escalation.outbox``),
so a crash between two tries loses nothing and repeats nothing: every try of one attempt carries
the same idempotency key, and a receiver that saw the key already ignores the repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class ChannelKind(StrEnum):
    voice = "voice"  # a call through Asterisk that speaks the incident; a key acknowledges it
    webhook = "webhook"  # an HMAC-signed JSON incident POSTed to the target's URL
    sms = "sms"  # through the configured HTTP SMS gateway, with an acknowledgement link and code
    email = "email"  # through the configured SMTP server, with an acknowledgement link and code


@dataclass(frozen=True, slots=True)
class PageMessage:
    """One page to one target on one channel, as every sender needs it."""

    page_id: str
    key: str  # the idempotency key: the same for every try of this attempt
    attempt: int  # 1 for the first page of this level and loop to this target
    incident: dict[str, Any]  # the incident document (EIDO-like, JSON-ready): see escalation.service
    text: str  # the summary for people, in the target's language
    language: str  # the target's language
    address: str  # URL, phone number, e-mail address or Asterisk dial string, by channel
    ack_url: str  # a link that acknowledges this page (holds a one-page token; never logged)
    ack_code: str  # a short code that acknowledges it when typed or read back


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one try went. ``retry``: a temporary failure worth another try later."""

    ok: bool
    retry: bool = False
    detail: str = ""  # for the incident timeline; never holds a secret


class Sender(Protocol):
    async def send(self, message: PageMessage) -> Delivery: ...
