"""The REST half of ARI's transport: requests over HTTP, or over the event WebSocket (Asterisk
22.4+), with per-request timeouts and typed errors. The typed operations on top of it are in
:mod:`ari.resources`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from yarl import URL

from .errors import AriConnectionError, AriError, error_for_status
from .models import (
    JsonDict,
)

Params = Mapping[str, Any]


def _encode_params(params: Params | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if not params:
        return out
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            out[key] = ",".join(str(v) for v in value)
        else:
            out[key] = str(value)
    return out


class RestTransport:
    """Sends ARI REST requests on the client's one ``ClientSession``.

    Credentials travel only in the ``Authorization`` header that the session adds to every
    request; URLs carry the path and ARI parameters and nothing else.
    """

    def __init__(self, base_url: str, request_timeout: float) -> None:
        self._prefix = base_url.rstrip("/") + "/ari"
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self.session: aiohttp.ClientSession | None = None

    def url(self, path: str) -> URL:
        return URL(self._prefix + path, encoded=True)

    async def _send(
        self,
        method: str,
        path: str,
        params: Params | None,
        body: JsonDict | None,
        timeout: float | None,
    ) -> tuple[int, bytes, str]:
        session = self.session
        if session is None or session.closed:
            raise AriConnectionError("client is not open", method, path)
        kwargs: dict[str, Any] = {
            "params": _encode_params(params),
            "timeout": self._timeout if timeout is None else aiohttp.ClientTimeout(total=timeout),
        }
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["headers"] = {"Content-Type": "application/json"}
        try:
            async with session.request(method, self.url(path), **kwargs) as resp:
                data = await resp.read()
                return resp.status, data, resp.content_type
        except TimeoutError as exc:
            raise AriConnectionError("request timed out", method, path) from exc
        except aiohttp.ClientError as exc:
            # ClientError text never contains our credentials: they are not in the URL.
            raise AriConnectionError(f"{type(exc).__name__}: {exc}", method, path) from exc

    async def request(
        self,
        method: str,
        path: str,
        params: Params | None = None,
        body: JsonDict | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Send a request; return the decoded JSON body (``None`` when empty), raise AriError on >= 400."""
        status, data, content_type = await self._send(method, path, params, body, timeout)
        if status >= 400:
            raise error_for_status(status, _error_message(data, status), method, path)
        if not data:
            return None
        try:
            return orjson.loads(data)
        except ValueError as exc:
            raise AriError(status, f"invalid JSON in response ({content_type})", method, path) from exc

    async def request_bytes(self, method: str, path: str, params: Params | None = None) -> bytes:
        status, data, _ = await self._send(method, path, params, None, None)
        if status >= 400:
            raise error_for_status(status, _error_message(data, status), method, path)
        return data


class WebSocketRestTransport(RestTransport):
    """REST over the event WebSocket (Asterisk 22.4+, 21.9+, 20.14+), same interface as HTTP.

    Requests are ``RESTRequest`` messages on the socket the supervisor keeps open; the reader
    hands each ``RESTResponse`` back here by ``request_id``. A request made while the socket
    is down waits for the next connection (within the request timeout). A request still
    waiting when the socket drops fails with :class:`AriConnectionError`: it may or may not
    have been carried out, exactly as with an HTTP connection reset. Downloads of stored
    recordings stay on HTTP because Asterisk does not send files over the socket.
    """

    def __init__(self, base_url: str, request_timeout: float) -> None:
        super().__init__(base_url, request_timeout)
        self._request_timeout = request_timeout
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ready = asyncio.Event()
        self._pending: dict[str, tuple[asyncio.Future[JsonDict], str, str]] = {}
        self._ids = itertools.count(1)

    def attach(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """The supervisor has a new socket (its reader is running): requests may flow."""
        self._ws = ws
        self._ready.set()

    def detach(self, reason: str) -> None:
        """The socket is gone: fail what is still waiting for an answer."""
        self._ws = None
        self._ready.clear()
        pending, self._pending = self._pending, {}
        for future, method, path in pending.values():
            if not future.done():
                future.set_exception(
                    AriConnectionError(f"socket lost before the response ({reason})", method, path)
                )

    def feed(self, message: JsonDict) -> None:
        """A ``RESTResponse`` from the reader."""
        entry = self._pending.pop(str(message.get("request_id") or ""), None)
        if entry is not None and not entry[0].done():
            entry[0].set_result(message)

    async def request(
        self,
        method: str,
        path: str,
        params: Params | None = None,
        body: JsonDict | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        query = _encode_params(params)
        frame: JsonDict = {
            "type": "RESTRequest",
            "method": method,
            "uri": path.lstrip("/") + ("?" + urlencode(query) if query else ""),
        }
        if body is not None:
            frame["content_type"] = "application/json"
            frame["message_body"] = json.dumps(body)
        request_id = f"r{next(self._ids)}"
        frame["request_id"] = request_id
        future: asyncio.Future[JsonDict] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self._request_timeout if timeout is None else timeout):
                await self._ready.wait()
                ws = self._ws
                assert ws is not None
                self._pending[request_id] = (future, method, path)
                try:
                    await ws.send_str(json.dumps(frame))
                except (ConnectionError, aiohttp.ClientError) as exc:
                    raise AriConnectionError(f"{type(exc).__name__}: {exc}", method, path) from exc
                response = await future
        except TimeoutError as exc:
            raise AriConnectionError("request timed out", method, path) from exc
        finally:
            self._pending.pop(request_id, None)
        status = int(response.get("status_code") or 0)
        text = response.get("message_body") or ""
        if status >= 400:
            raise error_for_status(status, _error_message(str(text).encode(), status), method, path)
        if not text:
            return None
        try:
            return orjson.loads(text)
        except ValueError as exc:
            raise AriError(status, "invalid JSON in response", method, path) from exc


def _error_message(data: bytes, status: int) -> str:
    try:
        decoded = orjson.loads(data)
    except ValueError:
        text = data.decode("utf-8", "replace").strip()
        return text[:200] or f"HTTP {status}"
    if isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
        return str(decoded["message"])
    return f"HTTP {status}"


__all__ = ["Params", "RestTransport", "WebSocketRestTransport"]
