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
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from aiohttp import WSMsgType, web

JsonDict = dict[str, Any]


def ari_time() -> str:
    """Now, in Asterisk's timestamp format (``2024-05-01T10:00:00.123+0000``)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


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


@dataclass(slots=True, eq=False)
class _Socket:
    ws: web.WebSocketResponse
    request: web.Request
    apps: set[str]
    stalled: bool = False
    sent: int = field(default=0)


class _Match:
    """A route match whose groups are the decoded path segments."""

    def __init__(self, found: re.Match[str]) -> None:
        self._groups = [unquote(g) for g in found.groups()]

    @property
    def count(self) -> int:
        return len(self._groups)

    def group(self, index: int) -> str:
        return self._groups[index - 1]


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Route = Callable[[web.Request | None, _Match, dict[str, str], Any], Awaitable[web.Response]]


class FakeAri:
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
        self._sockets: list[_Socket] = []
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
        sock = _Socket(ws=ws, request=request, apps=apps)
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

    async def _send(self, sock: _Socket, event: JsonDict) -> None:
        body = {"timestamp": ari_time(), "asterisk_id": self.asterisk_id, **event}
        try:
            await sock.ws.send_str(json.dumps(body))
        except ConnectionError:
            return
        sock.sent += 1

    # -- test controls: calls ----------------------------------------------------------------

    def new_id(self) -> str:
        return f"{int(time.time())}.{next(self._ids)}"

    def make_channel(
        self,
        channel_id: str | None = None,
        *,
        name: str | None = None,
        caller: str = "5550100",
        caller_name: str = "",
        exten: str = "183",
        context: str = "hotline-in",
        state: str = "Ring",
        app: str | None = "hotline",
        args: Iterable[str] = (),
        language: str = "tr",
    ) -> JsonDict:
        """Add a channel to the model (no event); ``app`` None means not in Stasis."""
        cid = channel_id or self.new_id()
        app_data = ",".join([app, *args]) if app else ""
        channel = {
            "id": cid,
            "name": name or f"PJSIP/caller-{next(self._ids):08x}",
            "state": state,
            "protocol_id": "",
            "caller": {"name": caller_name, "number": caller},
            "connected": {"name": "", "number": ""},
            "accountcode": "",
            "dialplan": {
                "context": context,
                "exten": exten,
                "priority": 1,
                "app_name": "Stasis" if app else "",
                "app_data": app_data,
            },
            "creationtime": ari_time(),
            "language": language,
        }
        self.channels[cid] = channel
        self.variables.setdefault(cid, {})
        return channel

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

    async def finish_playback(self, playback_id: str) -> None:
        playback = self.playbacks.pop(playback_id, None)
        if playback is not None:
            playback["state"] = "done"
            await self.emit({"type": "PlaybackFinished", "playback": playback})

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
                    return await handler(None, _Match(found), params, body)
                except _HttpError as exc:
                    return _json({"message": exc.message}, exc.status)
        return _json({"message": "Resource not found"}, 404)

    async def _ws_request(self, sock: _Socket, frame: JsonDict) -> None:
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

    # helpers

    def _channel(self, match: _Match, status: int = 404) -> JsonDict:
        channel = self.channels.get(match.group(1))
        if channel is None:
            raise _HttpError(status, "Channel not found")
        return channel

    def _bridge(self, match: _Match) -> JsonDict:
        bridge = self.bridges.get(match.group(1))
        if bridge is None:
            raise _HttpError(404, "Bridge not found")
        return bridge

    def _later(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _require(params: Mapping[str, str], name: str) -> str:
        value = params.get(name)
        if not value:
            raise _HttpError(400, f"{name} is required")
        return value

    async def _hangup(self, channel_id: str, cause: int) -> None:
        channel = self.channels.get(channel_id)
        if channel is None:
            return
        for bridge in self.bridges.values():
            if channel_id in bridge["channels"]:
                bridge["channels"].remove(channel_id)
                await self.emit({"type": "ChannelLeftBridge", "bridge": bridge, "channel": channel})
        await self.emit({"type": "ChannelHangupRequest", "cause": cause, "soft": False, "channel": channel})
        if channel["dialplan"]["app_name"] == "Stasis":
            await self.emit({"type": "StasisEnd", "channel": channel})
        del self.channels[channel_id]
        self.variables.pop(channel_id, None)
        await self.emit(
            {"type": "ChannelDestroyed", "cause": cause, "cause_txt": "Normal Clearing", "channel": channel}
        )

    async def _stasis_start_later(self, channel: JsonDict, args: list[str]) -> None:
        await self.emit({"type": "StasisStart", "args": args, "channel": channel})

    # asterisk

    async def _asterisk_info(self, *_: Any) -> web.Response:
        return _json(
            {
                "build": {
                    "os": "Linux",
                    "kernel": "6.1.0",
                    "machine": "x86_64",
                    "options": "",
                    "date": "",
                    "user": "",
                },
                "system": {"version": self.asterisk_version, "entity_id": self.asterisk_id},
                "config": {"name": "fake", "default_language": "en", "setid": {"user": "", "group": ""}},
                "status": {"startup_time": ari_time(), "last_reload_time": ari_time()},
            }
        )

    async def _asterisk_ping(self, *_: Any) -> web.Response:
        return _json({"asterisk_id": self.asterisk_id, "ping": "pong", "timestamp": ari_time()})

    # channels

    async def _channels_list(self, *_: Any) -> web.Response:
        return _json(list(self.channels.values()))

    async def _channels_originate(
        self, _r: web.Request | None, _m: Any, p: dict[str, str], _b: Any
    ) -> web.Response:
        endpoint = self._require(p, "endpoint")
        app = p.get("app")
        args = [a for a in p.get("appArgs", "").split(",") if a]
        channel = self.make_channel(
            p.get("channelId"),
            name=f"{endpoint}-{next(self._ids):08x}",
            caller=p.get("callerId", ""),
            exten=p.get("extension", ""),
            context=p.get("context", ""),
            state="Down",
            app=app,
            args=args,
        )
        if app:
            self._later(self._stasis_start_later(channel, args))
        return _json(channel)

    async def _channels_create(
        self, _r: web.Request | None, _m: Any, p: dict[str, str], _b: Any
    ) -> web.Response:
        endpoint = self._require(p, "endpoint")
        app = self._require(p, "app")
        args = [a for a in p.get("appArgs", "").split(",") if a]
        channel = self.make_channel(
            p.get("channelId"), name=f"{endpoint}-{next(self._ids):08x}", state="Down", app=app, args=args
        )
        if self.create_reply_delay is not None:
            await self._stasis_start_later(channel, args)
            await asyncio.sleep(self.create_reply_delay)
        else:
            self._later(self._stasis_start_later(channel, args))
        return _json(channel)

    async def _channels_external_media(
        self, _r: web.Request | None, _m: Any, p: dict[str, str], _b: Any
    ) -> web.Response:
        host = self._require(p, "external_host")
        self._require(p, "format")
        app = self._require(p, "app")
        channel = self.make_channel(
            p.get("channelId"),
            name=f"UnicastRTP/{host}-{next(self._ids):08x}",
            state="Up",
            app=app,
            caller="",
        )
        channel["channelvars"] = {"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1", "UNICASTRTP_LOCAL_PORT": "40000"}
        self._later(self._stasis_start_later(channel, []))
        return _json(channel)

    async def _channel_get(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        return _json(self._channel(m))

    async def _channel_hangup(
        self, _r: web.Request | None, m: _Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        self._channel(m)
        await self._hangup(m.group(1), 16)
        return web.Response(status=204)

    async def _channel_answer(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        channel = self._channel(m)
        if channel["state"] != "Up":
            channel["state"] = "Up"
            await self.emit({"type": "ChannelStateChange", "channel": channel})
        return web.Response(status=204)

    async def _channel_dial(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        channel = self._channel(m)
        if not self.auto_dial_answer:
            channel["state"] = "Ringing"
            await self.emit({"type": "Dial", "peer": channel, "dialstatus": "RINGING", "dialstring": ""})
            return web.Response(status=204)
        channel["state"] = "Up"
        await self.emit({"type": "Dial", "peer": channel, "dialstatus": "ANSWER", "dialstring": ""})
        await self.emit({"type": "ChannelStateChange", "channel": channel})
        return web.Response(status=204)

    async def _channel_noop(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        self._channel(m)
        return web.Response(status=204)

    async def _channel_leave(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        channel = self._channel(m)
        if channel["dialplan"]["app_name"] != "Stasis":
            raise _HttpError(409, "Channel not in Stasis application")
        channel["dialplan"]["app_name"] = ""
        channel["dialplan"]["app_data"] = ""
        await self.emit({"type": "StasisEnd", "channel": channel})
        return web.Response(status=204)

    async def _play(self, target_uri: str, p: dict[str, str]) -> web.Response:
        media = [x for x in self._require(p, "media").split(",") if x]
        playback_id = p.get("playbackId") or f"pb-{next(self._ids)}"
        playback = {
            "id": playback_id,
            "media_uri": media[0],
            "target_uri": target_uri,
            "language": p.get("lang", "en"),
            "state": "queued",
        }
        self.playbacks[playback_id] = playback
        self._later(self._run_playback(playback, media))
        return _json(playback, 201)

    async def _run_playback(self, playback: JsonDict, media: list[str]) -> None:
        playback["state"] = "playing"
        await self.emit({"type": "PlaybackStarted", "playback": dict(playback)})
        for uri in media[1:]:
            playback["media_uri"] = uri
            await self.emit({"type": "PlaybackContinuing", "playback": dict(playback)})
        if self.auto_finish_playbacks:
            await self.finish_playback(playback["id"])

    async def _channel_play(
        self, _r: web.Request | None, m: _Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        self._channel(m)
        return await self._play(f"channel:{m.group(1)}", p)

    async def _record(self, target_uri: str, p: dict[str, str]) -> web.Response:
        name = self._require(p, "name")
        if name in self.live_recordings:
            raise _HttpError(409, "Recording already in progress")
        recording = {
            "name": name,
            "format": p.get("format", "wav"),
            "target_uri": target_uri,
            "state": "recording",
        }
        self.live_recordings[name] = recording
        await self.emit({"type": "RecordingStarted", "recording": dict(recording)})
        return _json(recording, 201)

    async def _channel_record(
        self, _r: web.Request | None, m: _Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        self._channel(m)
        return await self._record(f"channel:{m.group(1)}", p)

    async def _channel_var_get(
        self, _r: web.Request | None, m: _Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        self._channel(m)
        name = self._require(p, "variable")
        variables = self.variables.setdefault(m.group(1), {})
        if name not in variables:
            raise _HttpError(404, "Provided variable was not found")
        return _json({"value": variables[name]})

    async def _channel_var_set(
        self, _r: web.Request | None, m: _Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        channel = self._channel(m)
        name = self._require(p, "variable")
        value = p.get("value", "")
        self.variables.setdefault(m.group(1), {})[name] = value
        await self.emit({"type": "ChannelVarset", "variable": name, "value": value, "channel": channel})
        return web.Response(status=204)

    async def _channel_snoop(
        self, _r: web.Request | None, m: _Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        self._channel(m)
        app = self._require(p, "app")
        args = [a for a in p.get("appArgs", "").split(",") if a]
        snoop = self.make_channel(
            p.get("snoopId"), name=f"Snoop/{m.group(1)}-{next(self._ids):08x}", state="Up", app=app, args=args
        )
        self._later(self._stasis_start_later(snoop, args))
        return _json(snoop)

    # bridges

    async def _bridges_list(self, *_: Any) -> web.Response:
        return _json(list(self.bridges.values()))

    async def _bridges_create(
        self, _r: web.Request | None, _m: Any, p: dict[str, str], _b: Any
    ) -> web.Response:
        bridge_id = p.get("bridgeId") or f"br-{next(self._ids)}"
        bridge = {
            "id": bridge_id,
            "technology": "simple_bridge",
            "bridge_type": p.get("type", "mixing").split(",")[0],
            "bridge_class": "stasis",
            "creator": "Stasis",
            "name": p.get("name", ""),
            "channels": [],
            "creationtime": ari_time(),
            "video_mode": "none",
        }
        self.bridges[bridge_id] = bridge
        await self.emit({"type": "BridgeCreated", "bridge": bridge})
        return _json(bridge)

    async def _bridge_get(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        return _json(self._bridge(m))

    async def _bridge_destroy(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        bridge = self._bridge(m)
        for cid in list(bridge["channels"]):
            bridge["channels"].remove(cid)
            await self.emit({"type": "ChannelLeftBridge", "bridge": bridge, "channel": self.channels[cid]})
        del self.bridges[m.group(1)]
        await self.emit({"type": "BridgeDestroyed", "bridge": bridge})
        return web.Response(status=204)

    async def _bridge_add(
        self, _r: web.Request | None, m: _Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        bridge = self._bridge(m)
        ids = [c for c in self._require(p, "channel").split(",") if c]
        for cid in ids:
            channel = self.channels.get(cid)
            if channel is None:
                raise _HttpError(400, "Channel not found")
            if channel["dialplan"]["app_name"] != "Stasis":
                raise _HttpError(422, "Channel not in Stasis application")
        for cid in ids:
            if cid not in bridge["channels"]:
                bridge["channels"].append(cid)
                await self.emit(
                    {"type": "ChannelEnteredBridge", "bridge": bridge, "channel": self.channels[cid]}
                )
        return web.Response(status=204)

    async def _bridge_remove(
        self, _r: web.Request | None, m: _Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        bridge = self._bridge(m)
        ids = [c for c in self._require(p, "channel").split(",") if c]
        for cid in ids:
            if cid not in bridge["channels"]:
                raise _HttpError(422, "Channel not in this bridge")
        for cid in ids:
            bridge["channels"].remove(cid)
            await self.emit({"type": "ChannelLeftBridge", "bridge": bridge, "channel": self.channels[cid]})
        return web.Response(status=204)

    async def _bridge_play(
        self, _r: web.Request | None, m: _Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        self._bridge(m)
        return await self._play(f"bridge:{m.group(1)}", p)

    async def _bridge_record(
        self, _r: web.Request | None, m: _Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        self._bridge(m)
        return await self._record(f"bridge:{m.group(1)}", p)

    async def _bridge_noop(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        self._bridge(m)
        return web.Response(status=204)

    # playbacks

    def _playback(self, m: _Match) -> JsonDict:
        playback = self.playbacks.get(m.group(1))
        if playback is None:
            raise _HttpError(404, "Playback not found")
        return playback

    async def _playback_get(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        return _json(self._playback(m))

    async def _playback_stop(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        self._playback(m)
        await self.finish_playback(m.group(1))
        return web.Response(status=204)

    async def _playback_control(
        self, _r: web.Request | None, m: _Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        self._playback(m)
        if p.get("operation") not in ("restart", "pause", "unpause", "reverse", "forward"):
            raise _HttpError(400, "Invalid operation")
        return web.Response(status=204)

    # recordings

    def _live(self, m: _Match) -> JsonDict:
        recording = self.live_recordings.get(m.group(1))
        if recording is None:
            raise _HttpError(404, "Recording not found")
        return recording

    async def _live_get(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        return _json(self._live(m))

    async def _live_stop(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        recording = self.live_recordings.pop(self._live(m)["name"])
        recording["state"] = "done"
        self.stored_recordings[recording["name"]] = {"name": recording["name"], "format": recording["format"]}
        await self.emit({"type": "RecordingFinished", "recording": recording})
        return web.Response(status=204)

    async def _live_cancel(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        recording = self.live_recordings.pop(self._live(m)["name"])
        recording["state"] = "canceled"
        await self.emit({"type": "RecordingFinished", "recording": recording})
        return web.Response(status=204)

    async def _live_noop(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        self._live(m)
        return web.Response(status=204)

    def _stored(self, m: _Match) -> JsonDict:
        recording = self.stored_recordings.get(m.group(1))
        if recording is None:
            raise _HttpError(404, "Recording not found")
        return recording

    async def _stored_list(self, *_: Any) -> web.Response:
        return _json(list(self.stored_recordings.values()))

    async def _stored_get(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        return _json(self._stored(m))

    async def _stored_delete(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        del self.stored_recordings[self._stored(m)["name"]]
        return web.Response(status=204)

    async def _stored_copy(
        self, _r: web.Request | None, m: _Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        source = self._stored(m)
        dest = self._require(p, "destinationRecordingName")
        if dest in self.stored_recordings:
            raise _HttpError(409, "A recording with the same name already exists on the system")
        self.stored_recordings[dest] = {"name": dest, "format": source["format"]}
        return _json(self.stored_recordings[dest])

    async def _stored_file(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        self._stored(m)
        return web.Response(body=b"RIFF\x00\x00\x00\x00WAVEfake", content_type="audio/wav")

    # endpoints, device states, applications

    async def _endpoints_list(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        tech = m.group(1) if m.count else None
        return _json([e for e in self.endpoints if tech is None or e["technology"] == tech])

    async def _endpoint_get(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        for e in self.endpoints:
            if e["technology"] == m.group(1) and e["resource"] == m.group(2):
                return _json(e)
        raise _HttpError(404, "Endpoint not found")

    async def _device_states_list(self, *_: Any) -> web.Response:
        return _json([{"name": n, "state": s} for n, s in self.device_states.items()])

    async def _device_state_get(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        name = m.group(1)
        if name not in self.device_states:
            raise _HttpError(404, "Device state not found")
        return _json({"name": name, "state": self.device_states[name]})

    async def _device_state_put(
        self, _r: web.Request | None, m: _Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        name = m.group(1)
        if not name.startswith("Stasis:"):
            raise _HttpError(409, "Uncontrolled device specified")
        state = self._require(p, "deviceState")
        self.device_states[name] = state
        await self.emit({"type": "DeviceStateChanged", "device_state": {"name": name, "state": state}})
        return web.Response(status=204)

    async def _device_state_delete(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        if self.device_states.pop(m.group(1), None) is None:
            raise _HttpError(404, "Device state not found")
        return web.Response(status=204)

    def _application(self, name: str) -> JsonDict:
        channel_ids = [
            c["id"]
            for c in self.channels.values()
            if c["dialplan"]["app_name"] == "Stasis" and c["dialplan"]["app_data"].split(",")[0] == name
        ]
        sources = self.subscriptions.get(name, set())
        filters = self.event_filters.get(name, {})
        return {
            "name": name,
            "channel_ids": channel_ids,
            "bridge_ids": [s.split(":", 1)[1] for s in sources if s.startswith("bridge:")],
            "endpoint_ids": [s.split(":", 1)[1] for s in sources if s.startswith("endpoint:")],
            "device_names": [s.split(":", 1)[1] for s in sources if s.startswith("deviceState:")],
            "events_allowed": filters.get("allowed", []),
            "events_disallowed": filters.get("disallowed", []),
        }

    def _known_apps(self) -> set[str]:
        return {a for s in self._sockets for a in s.apps}

    def _app_name(self, m: _Match) -> str:
        name = m.group(1)
        if name not in self._known_apps():
            raise _HttpError(404, "Application not found")
        return name

    async def _applications_list(self, *_: Any) -> web.Response:
        return _json([self._application(a) for a in sorted(self._known_apps())])

    async def _application_get(self, _r: web.Request | None, m: _Match, *_: Any) -> web.Response:
        return _json(self._application(self._app_name(m)))

    async def _application_subscribe(
        self, _r: web.Request | None, m: _Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        name = self._app_name(m)
        sources = [s for s in self._require(p, "eventSource").split(",") if s]
        self.subscriptions.setdefault(name, set()).update(sources)
        return _json(self._application(name))

    async def _application_unsubscribe(
        self, _r: web.Request | None, m: _Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        name = self._app_name(m)
        sources = [s for s in self._require(p, "eventSource").split(",") if s]
        current = self.subscriptions.setdefault(name, set())
        if not set(sources) <= current:
            raise _HttpError(409, "Application not subscribed to event source")
        current.difference_update(sources)
        return _json(self._application(name))

    async def _application_filter(
        self, _r: web.Request | None, m: _Match, _p: Any, body: Any
    ) -> web.Response:
        name = self._app_name(m)
        body = body if isinstance(body, dict) else {}
        self.event_filters[name] = {k: body[k] for k in ("allowed", "disallowed") if k in body}
        return _json(self._application(name))


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")
