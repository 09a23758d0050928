"""Pages as signed JSON POSTs to a target's URL (a police or emergency system), one try per send.

Signature, for the receiving system (the scheme of Stripe and Svix)::

    X-Alo-Signature: t=1767225600,v1=5f0c...e1

``t`` is the sending time in Unix seconds; ``v1`` is the lowercase hex HMAC-SHA256, keyed with the
secret shared with that target, of the bytes ``f"{t}."`` followed by the raw request body, exactly
as received (do not re-serialise the JSON). While a secret is being rotated the header carries one
``v1=`` per active secret; accept the request if any of them matches. To verify:

1. split the header on ``,`` into ``key=value`` pairs; take ``t`` and every ``v1``;
2. reject if ``t`` is more than 5 minutes away from your clock (replayed or delayed requests);
3. compute the HMAC above and compare it with each ``v1`` in constant time
   (``hmac.compare_digest`` in Python, ``crypto.timingSafeEqual`` in Node.js);
4. deduplicate on ``Idempotency-Key``: every try of one page carries the same key (and a fresh
   ``t``), so act on a key once and answer 2xx to its repeats.

``verify()`` below is a reference implementation of steps 1 to 3.

Other headers: ``X-Alo-Attempt`` (1 for the first page of this level to this target, higher when
paged again) and ``Content-Type: application/json``. The body is::

    {"id": page id, "key": idempotency key, "attempt": n, "incident": {...}, "text": summary,
     "language": "tr", "ack": {"url": link that acknowledges the page, "code": short code}}

Answer 2xx when the page is taken. 5xx, 408 and 429 are tried again later; any other status is
taken as a permanent refusal. Redirects are not followed: the signed page goes to one URL only.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence

import aiohttp
import orjson
import structlog

from escalation.channels import Delivery, PageMessage
from hotline.clock import SYSTEM, Clock

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Alo-Signature"
# One secret, or several while rotating (the new one first).
Secret = bytes | Sequence[bytes]
SecretFor = Callable[[PageMessage], Secret]
RETRIED_STATUSES = frozenset({408, 429})


def _secrets(secret: Secret) -> tuple[bytes, ...]:
    return (secret,) if isinstance(secret, bytes | bytearray) else tuple(secret)


def _digest(body: bytes, secret: bytes, timestamp: int) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: Secret, timestamp: int) -> str:
    """The ``X-Alo-Signature`` value: ``t=<timestamp>,v1=<hex>`` with one ``v1`` per secret."""
    keys = _secrets(secret)
    if not keys:
        raise ValueError("no secret to sign with")
    return ",".join([f"t={timestamp}", *(f"v1={_digest(body, key, timestamp)}" for key in keys)])


def verify(body: bytes, header: str, secret: bytes, now: int, tolerance: int = 300) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` at a time within ``tolerance`` s of ``now``."""
    timestamps: list[str] = []
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            candidates.append(value)
    if len(timestamps) != 1 or not (timestamps[0].isascii() and timestamps[0].isdigit()) or not candidates:
        return False
    timestamp = int(timestamps[0])
    if abs(now - timestamp) > tolerance:
        return False
    expected = _digest(body, secret, timestamp).encode()
    # Compare with every candidate, so the time taken does not tell which one matched.
    matches = [hmac.compare_digest(expected, c.encode("ascii", "replace")) for c in candidates]
    return any(matches)


def page_body(message: PageMessage) -> bytes:
    """The JSON the target receives (see the module docstring)."""
    return orjson.dumps(
        {
            "id": message.page_id,
            "key": message.key,
            "attempt": message.attempt,
            "incident": message.incident,
            "text": message.text,
            "language": message.language,
            "ack": {"url": message.ack_url, "code": message.ack_code},
        }
    )


def delivery_for_status(status: int) -> Delivery:
    """2xx taken; 5xx, 408 and 429 worth another try; anything else refused for good."""
    if 200 <= status < 300:
        return Delivery(ok=True, detail=f"HTTP {status}")
    retry = status >= 500 or status in RETRIED_STATUSES
    return Delivery(ok=False, retry=retry, detail=f"HTTP {status}")


async def post_once(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
) -> Delivery:
    """One POST, classified. Details name the status or the error's kind only: never the URL
    (it may hold a token), the headers or the body."""
    try:
        async with session.post(
            url,
            data=body,
            headers=dict(headers),
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as response:
            return delivery_for_status(response.status)
    except TimeoutError:
        return Delivery(ok=False, retry=True, detail=f"no answer within {timeout:g} s")
    except aiohttp.InvalidURL:
        return Delivery(ok=False, retry=False, detail="invalid URL")
    except (aiohttp.ClientError, OSError) as error:
        return Delivery(ok=False, retry=True, detail=f"connection failed ({type(error).__name__})")


class WebhookSender:
    """Sends a page as a signed JSON POST to ``message.address``.

    ``secret_for`` gives the secret shared with the page's target (or several while rotating);
    a callable rather than a table so the app can key secrets by target, by URL or by a vault
    lookup, e.g. ``WebhookSender(session, lambda m: secrets[m.address])``. A target without a
    secret (``KeyError`` or an empty list) is a configuration fault: refused, not retried.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        secret_for: SecretFor,
        timeout: float = 5.0,
        clock: Clock = SYSTEM,
    ) -> None:
        self._session = session
        self._secret_for = secret_for
        self._timeout = timeout
        self._clock = clock

    async def send(self, message: PageMessage) -> Delivery:
        try:
            keys = _secrets(self._secret_for(message))
        except KeyError:
            keys = ()
        if not keys:
            return self._done(message, Delivery(ok=False, detail="no signing secret for this target"))
        try:
            body = page_body(message)
        except TypeError:  # orjson.JSONEncodeError: the incident holds a value JSON cannot carry
            return self._done(message, Delivery(ok=False, detail="incident is not JSON-serialisable"))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.key,
            "X-Alo-Attempt": str(message.attempt),
            SIGNATURE_HEADER: sign(body, keys, int(self._clock.utcnow().timestamp())),
        }
        delivery = await post_once(self._session, message.address, body, headers, self._timeout)
        return self._done(message, delivery)

    def _done(self, message: PageMessage, delivery: Delivery) -> Delivery:
        event = "webhook.delivered" if delivery.ok else "webhook.failed"
        (log.info if delivery.ok else log.warning)(
            event,
            page_id=message.page_id,
            attempt=message.attempt,
            retry=delivery.retry,
            detail=delivery.detail,
        )
        return delivery
