"""A fake Asterisk ARI server for unit tests of the client and of the call flows above it.

It speaks enough ARI over real HTTP and a real WebSocket on loopback: Basic auth, the
``/ari/events`` socket (with Asterisk's ApplicationReplaced when a second socket takes an app),
and a small in-memory model of channels, bridges, playbacks, recordings and device states that
emits the events Asterisk would. Tests drive it with :meth:`FakeAri.start_call`,
:meth:`FakeAri.emit`, :meth:`FakeAri.caller_hangup`, and break the socket with
:meth:`FakeAri.drop` (abrupt), :meth:`FakeAri.stall` (silent) and :meth:`FakeAri.close_sockets`
(clean). Every REST request is recorded in :attr:`FakeAri.requests`.

    async with FakeAri() as fake, AriClient(fake.base_url, "hotline", "secret", "hotline") as client:
        ...

It is a test double, not an emulator: Asterisk behaviour it does not need is absent.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from aiohttp import WSMsgType, web

from .fake_model import HttpError, JsonDict, Match, Socket, _json, ari_time
from .fake_registry import AsteriskRegistry


@dataclass(slots=True)
class RecordedRequest:
    """One REST request as the fake received it (``path`` is the full path, e.g. ``/ari/channels``)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None
    transport: str = "http"
    """``"http"``, or ``"websocket"`` for a RESTRequest sent on the event socket."""


@dataclass(slots=True)
class _Failure:
    status: int
    message: str
    times: int


Route = Callable[[web.Request | None, Match, dict[str, str], Any], Awaitable[web.Response]]


class FakeAri(AsteriskRegistry):
    """In-process fake ARI server on ``127.0.0.1`` and a free port."""

    def __init__(
        self,
        *,
        username: str = "hotline",
        password: str = "secret",
        asterisk_version: str = "22.5.0",
        host: str = "127.0.0.1",
    ) -> None:
        self.username = username
        self._expected_auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.asterisk_version = asterisk_version
        self.asterisk_id = "00:00:5e:00:53:01"
        self._host = host
        self.port = 0
        self.requests: list[RecordedRequest] = []
        self.channels: dict[str, JsonDict] = {}
        self.bridges: dict[str, JsonDict] = {}
        self.playbacks: dict[str, JsonDict] = {}
        self.live_recordings: dict[str, JsonDict] = {}
        self.stored_recordings: dict[str, JsonDict] = {}
        self.snooping: dict[str, str] = {}
        self.device_states: dict[str, str] = {}
        self.endpoints: list[JsonDict] = [
            {"technology": "PJSIP", "resource": "agent1", "state": "online", "channel_ids": []},
        ]
        self.variables: dict[str, dict[str, str]] = {}
        self.event_filters: dict[str, JsonDict] = {}
        self.subscriptions: dict[str, set[str]] = {}
        self.auto_finish_playbacks = True
        self.auto_dial_answer = True
        """When False, a dialled channel rings ("RINGING") until hung up, as an unattended phone."""
        """When False, playbacks stay "playing" until :meth:`finish_playback` or DELETE."""
        self.reject_websockets: int | None = None
        """HTTP status to refuse ``/ari/events`` upgrades with (e.g. 503), or None to accept."""
        self.ws_connects = 0
        """Accepted ``/ari/events`` upgrades so far."""
        self.rest_over_websocket = True
        """Answer RESTRequest messages on the event socket (Asterisk 22.4+); False ignores them."""
        self.ws_attempts = 0
        """``/ari/events`` requests so far, refused ones included."""
        self.create_reply_delay: float | None = None
        """If set, ``channels/create`` emits StasisStart first and answers this many seconds later
        (Asterisk's reply and event race; this makes the event win by a margin)."""
        self._failures: dict[tuple[str, str], _Failure] = {}
        self._blocks: dict[tuple[str, str], asyncio.Event] = {}
        self._sockets: list[Socket] = []
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.app = web.Application()
        self.app.router.add_get("/ari/events", self._events)
        self.app.router.add_route("*", "/ari/{tail:.*}", self._rest)
        self._routes = self._build_routes()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        for gate in self._blocks.values():
            gate.set()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for sock in list(self._sockets):
            if sock.request.transport is not None:
                sock.request.transport.abort()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeAri:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- test controls: the event socket -----------------------------------------------------

    @property
    def open_sockets(self) -> int:
        """Event sockets currently open."""
        return len(self._sockets)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; re-checked on every request and socket change."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_connects(self, count: int, timeout: float = 5.0) -> None:
        """Wait until ``count`` event sockets have been accepted in total."""
        await self.wait_for(lambda: self.ws_connects >= count, timeout)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def emit(self, event: JsonDict, app: str | None = None) -> int:
        """Send one event to every socket subscribed to ``app`` (all apps if None).

        ``application``, ``timestamp`` and ``asterisk_id`` are filled in when absent.
        Returns how many sockets it was sent to (stalled sockets get nothing).
        """
        sent = 0
        for sock in list(self._sockets):
            if sock.stalled or sock.ws.closed:
                continue
            apps = sock.apps if app is None else sock.apps & {app}
            if not apps:
                continue
            body = dict(event)
            body.setdefault("application", next(iter(apps)))
            body.setdefault("timestamp", ari_time())
            body.setdefault("asterisk_id", self.asterisk_id)
            try:
                await sock.ws.send_str(json.dumps(body))
            except ConnectionError:
                continue
            sock.sent += 1
            sent += 1
        return sent

    async def emit_many(self, events: Iterable[JsonDict], app: str | None = None) -> None:
        """Send many events as fast as possible (encoded once; fields filled as in :meth:`emit`)."""
        stamp = ari_time()
        frames = []
        for event in events:
            body = dict(event)
            body.setdefault("timestamp", stamp)
            body.setdefault("asterisk_id", self.asterisk_id)
            frames.append(body)
        for sock in list(self._sockets):
            apps = sock.apps if app is None else sock.apps & {app}
            if sock.stalled or not apps:
                continue
            name = next(iter(apps))
            texts = [json.dumps({"application": name, **f}) for f in frames]
            for text in texts:
                if sock.ws.closed:
                    break
                await sock.ws.send_str(text)
            sock.sent += len(texts)

    async def drop(self) -> None:
        """Cut every event socket abruptly: no close frame, like a dead network or a crash."""
        for sock in list(self._sockets):
            if sock.request.transport is not None:
                sock.request.transport.abort()

    async def stall(self) -> None:
        """Current event sockets go silent: no events, no answers to pings; the TCP stays open."""
        for sock in self._sockets:
            sock.stalled = True

    async def close_sockets(self, code: int = 1000) -> None:
        """Close every event socket cleanly (close frame with ``code``)."""
        for sock in list(self._sockets):
            await sock.ws.close(code=code)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        self._log_request(request, None)
        self.ws_attempts += 1
        await self._notify()
        if request.headers.get("Authorization") != self._expected_auth:
            return _json({"message": "Authentication required"}, 401)
        if self.reject_websockets is not None:
            return _json({"message": "Unavailable"}, self.reject_websockets)
        apps = {a for a in request.query.get("app", "").split(",") if a}
        if not apps:
            return _json({"message": "app parameter is required"}, 400)
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        # Asterisk lets the newest socket own an application and tells the previous one.
        for other in list(self._sockets):
            taken = other.apps & apps
            if taken:
                for name in taken:
                    await self._send(other, {"type": "ApplicationReplaced", "application": name})
                other.apps -= taken
        sock = Socket(ws=ws, request=request, apps=apps)
        self._sockets.append(sock)
        self.ws_connects += 1
        await self._notify()
        try:
            while True:
                msg = await ws.receive()
                if msg.type is WSMsgType.PING:
                    if not sock.stalled:
                        await ws.pong(msg.data)
                elif msg.type is WSMsgType.TEXT and self.rest_over_websocket and not sock.stalled:
                    try:
                        frame = json.loads(msg.data)
                    except ValueError:
                        continue
                    if isinstance(frame, dict) and frame.get("type") == "RESTRequest":
                        # Concurrently, like Asterisk: a held request must not stop the socket.
                        self._later(self._ws_request(sock, frame))
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
        finally:
            self._sockets.remove(sock)
            await self._notify()
        return ws

    async def _send(self, sock: Socket, event: JsonDict) -> None:
        body = {"timestamp": ari_time(), "asterisk_id": self.asterisk_id, **event}
        try:
            await sock.ws.send_str(json.dumps(body))
        except ConnectionError:
            return
        sock.sent += 1

    # -- test controls: calls ----------------------------------------------------------------

    async def start_call(
        self,
        channel_id: str | None = None,
        *,
        caller: str = "5550100",
        caller_name: str = "",
        exten: str = "183",
        args: Iterable[str] = (),
        app: str = "hotline",
        language: str = "tr",
    ) -> JsonDict:
        """A caller dialled ``exten`` and the dialplan ran ``Stasis(app, *args)``: emits StasisStart."""
        args = list(args)
        channel = self.make_channel(
            channel_id,
            caller=caller,
            caller_name=caller_name,
            exten=exten,
            app=app,
            args=args,
            language=language,
        )
        await self.emit({"type": "StasisStart", "args": args, "channel": channel}, app)
        return channel

    async def send_dtmf(self, channel_id: str, digits: str, duration_ms: int = 100) -> None:
        """The caller pressed ``digits`` (one ChannelDtmfReceived each)."""
        for digit in digits:
            await self.emit(
                {
                    "type": "ChannelDtmfReceived",
                    "digit": digit,
                    "duration_ms": duration_ms,
                    "channel": self.channels[channel_id],
                }
            )

    async def caller_hangup(self, channel_id: str, cause: int = 16) -> None:
        """The remote party hung up: ChannelHangupRequest, StasisEnd, ChannelDestroyed."""
        await self._hangup(channel_id, cause)

    def fail(
        self, method: str, path: str, status: int, message: str = "injected failure", times: int = 1
    ) -> None:
        """Answer the next ``times`` requests ``method path`` (path after ``/ari``) with an error."""
        self._failures[(method.upper(), path)] = _Failure(status, message, times)

    def block(self, method: str, path: str) -> asyncio.Event:
        """Hold every ``method path`` request (path after ``/ari``) until the returned event is set."""
        gate = self._blocks[(method.upper(), path)] = asyncio.Event()
        return gate

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        """Recorded requests for ``method`` and full ``path`` (``/ari/...``)."""
        return [r for r in self.requests if r.method == method and r.path == path]

    # -- REST ----------------------------------------------------------------------------------

    def _log_request(self, request: web.Request, body: Any) -> None:
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=dict(request.headers),
                body=body,
            )
        )

    async def _rest(self, request: web.Request) -> web.Response:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return _json({"message": "Invalid JSON body"}, 400)
        self._log_request(request, body)
        await self._notify()
        if request.headers.get("Authorization") != self._expected_auth:
            return _json({"message": "Authentication required"}, 401)
        # Match on the encoded path so that an id holding "/" (quoted as %2F) stays one segment.
        tail = request.raw_path.split("?", 1)[0][len("/ari") :]
        return await self._invoke(request.method, tail, dict(request.query), body)

    async def _invoke(self, method: str, tail: str, query: dict[str, str], body: Any) -> web.Response:
        """Run one REST operation, whichever transport carried it."""
        gate = self._blocks.get((method, unquote(tail)))
        if gate is not None:
            await gate.wait()
        failure = self._failures.get((method, unquote(tail)))
        if failure is not None:
            failure.times -= 1
            if failure.times <= 0:
                del self._failures[(method, unquote(tail))]
            return _json({"message": failure.message}, failure.status)
        params = dict(query)
        if isinstance(body, dict):
            # ARI accepts parameters in the query string or in a JSON body.
            for key, value in body.items():
                if key != "variables" and isinstance(value, str | int | bool):
                    params.setdefault(key, str(value))
        for route_method, pattern, handler in self._routes:
            if route_method != method:
                continue
            found = pattern.fullmatch(tail)
            if found is not None:
                try:
                    return await handler(None, Match(found), params, body)
                except HttpError as exc:
                    return _json({"message": exc.message}, exc.status)
        return _json({"message": "Resource not found"}, 404)

    async def _ws_request(self, sock: Socket, frame: JsonDict) -> None:
        """Answer a RESTRequest received on an event socket, as Asterisk 22.4+ does."""
        uri = str(frame.get("uri") or "")
        raw_path, _, raw_query = uri.partition("?")
        query = dict(parse_qsl(raw_query))
        for pair in frame.get("query_strings") or ():
            query[str(pair["name"])] = str(pair["value"])
        body: Any = None
        if frame.get("message_body"):
            body = json.loads(frame["message_body"])
        method = str(frame.get("method") or "").upper()
        self.requests.append(
            RecordedRequest(
                method=method,
                path="/ari/" + unquote(raw_path),
                query=query,
                headers={},
                body=body,
                transport="websocket",
            )
        )
        await self._notify()
        response = await self._invoke(method, "/" + raw_path, query, body)
        reply: JsonDict = {
            "type": "RESTResponse",
            "transaction_id": frame.get("transaction_id") or "",
            "request_id": frame.get("request_id") or "",
            "status_code": response.status,
            "reason_phrase": response.reason,
            "uri": uri,
        }
        if response.body is not None:
            if response.content_type == "application/json":
                reply["content_type"] = "application/json"
                reply["message_body"] = response.text
            else:  # Asterisk cannot send files over the socket
                reply["status_code"], reply["reason_phrase"] = 406, "Not Acceptable.  Use HTTP GET"
        await self._send(sock, {"application": next(iter(sock.apps), ""), **reply})

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Route]]:
        seg = r"([^/]+)"
        table: list[tuple[str, str, Route]] = [
            ("GET", "/asterisk/info", self._asterisk_info),
            ("GET", "/asterisk/ping", self._asterisk_ping),
            ("GET", "/channels", self._channels_list),
            ("POST", "/channels", self._channels_originate),
            ("POST", "/channels/create", self._channels_create),
            ("POST", "/channels/externalMedia", self._channels_external_media),
            ("GET", f"/channels/{seg}", self._channel_get),
            ("DELETE", f"/channels/{seg}", self._channel_hangup),
            ("POST", f"/channels/{seg}/answer", self._channel_answer),
            ("POST", f"/channels/{seg}/dial", self._channel_dial),
            ("POST", f"/channels/{seg}/play", self._channel_play),
            ("POST", f"/channels/{seg}/record", self._channel_record),
            ("GET", f"/channels/{seg}/variable", self._channel_var_get),
            ("POST", f"/channels/{seg}/variable", self._channel_var_set),
            ("POST", f"/channels/{seg}/snoop", self._channel_snoop),
            ("POST", f"/channels/{seg}/redirect", self._channel_leave),
            ("POST", f"/channels/{seg}/continue", self._channel_leave),
            ("POST", f"/channels/{seg}/move", self._channel_leave),
            ("GET", "/bridges", self._bridges_list),
            ("POST", "/bridges", self._bridges_create),
            ("GET", f"/bridges/{seg}", self._bridge_get),
            ("DELETE", f"/bridges/{seg}", self._bridge_destroy),
            ("POST", f"/bridges/{seg}/addChannel", self._bridge_add),
            ("POST", f"/bridges/{seg}/removeChannel", self._bridge_remove),
            ("POST", f"/bridges/{seg}/play", self._bridge_play),
            ("POST", f"/bridges/{seg}/record", self._bridge_record),
            ("GET", f"/playbacks/{seg}", self._playback_get),
            ("DELETE", f"/playbacks/{seg}", self._playback_stop),
            ("POST", f"/playbacks/{seg}/control", self._playback_control),
            ("GET", f"/recordings/live/{seg}", self._live_get),
            ("POST", f"/recordings/live/{seg}/stop", self._live_stop),
            ("DELETE", f"/recordings/live/{seg}", self._live_cancel),
            ("GET", "/recordings/stored", self._stored_list),
            ("GET", f"/recordings/stored/{seg}", self._stored_get),
            ("DELETE", f"/recordings/stored/{seg}", self._stored_delete),
            ("POST", f"/recordings/stored/{seg}/copy", self._stored_copy),
            ("GET", f"/recordings/stored/{seg}/file", self._stored_file),
            ("GET", "/endpoints", self._endpoints_list),
            ("GET", f"/endpoints/{seg}", self._endpoints_list),
            ("GET", f"/endpoints/{seg}/{seg}", self._endpoint_get),
            ("GET", "/deviceStates", self._device_states_list),
            ("GET", f"/deviceStates/{seg}", self._device_state_get),
            ("PUT", f"/deviceStates/{seg}", self._device_state_put),
            ("DELETE", f"/deviceStates/{seg}", self._device_state_delete),
            ("GET", "/applications", self._applications_list),
            ("GET", f"/applications/{seg}", self._application_get),
            ("POST", f"/applications/{seg}/subscription", self._application_subscribe),
            ("DELETE", f"/applications/{seg}/subscription", self._application_unsubscribe),
            ("PUT", f"/applications/{seg}/eventFilter", self._application_filter),
        ]
        # Operations that only change state Asterisk-side: accepted when the object exists.
        for method, suffix in [
            ("POST", "ring"),
            ("DELETE", "ring"),
            ("POST", "hold"),
            ("DELETE", "hold"),
            ("POST", "moh"),
            ("DELETE", "moh"),
            ("POST", "mute"),
            ("DELETE", "mute"),
            ("POST", "dtmf"),
        ]:
            table.append((method, f"/channels/{seg}/{suffix}", self._channel_noop))
        for method in ("POST", "DELETE"):
            table.append((method, f"/bridges/{seg}/moh", self._bridge_noop))
            for op in ("pause", "mute"):
                table.append((method, f"/recordings/live/{seg}/{op}", self._live_noop))
        return [(m, re.compile(p), h) for m, p, h in table]
