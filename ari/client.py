"""``AriClient``: REST resources plus the supervised event WebSocket.

The supervisor (:meth:`AriClient.run`) keeps one ``/ari/events`` WebSocket open:

* connect; on failure wait with exponential backoff and jitter, then retry;
* resync: list channels and bridges and deliver :class:`~ari.events.Connected` carrying the ones
  that belong to our application, and wait until its handlers have run, so the application can
  re-adopt calls before any event of the new connection reaches it;
* read events and hand them to the ordered dispatcher (``ari.dispatch``);
* a clean close, an error, or a stall (nothing received, not even the pong to our heartbeat ping,
  within 1.5 x ``heartbeat`` seconds) ends the connection: deliver
  :class:`~ari.events.Disconnected` and go round again;
* ``ApplicationReplaced`` (another process registered our application name) stops the loop for
  good with a critical log line: two instances fighting over one app would each lose calls.

What belongs to our application after a reconnect: ``GET /channels`` lists every channel on
the system, so we keep those running ``Stasis(<app>, ...)`` (``Channel.in_app``). ``GET
/bridges`` has no owning application, so we keep bridges that hold one of those channels, plus
empty bridges made over ARI (``creator == "Stasis"``; a holding bridge waiting for callers, most
likely ours, though another ARI application's would look the same).

Handlers must treat Connected idempotently: events already queued on the new socket (e.g. a
StasisStart for a channel also listed) follow it.

Credentials are sent only in the ``Authorization`` header, for REST and the WebSocket alike.
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal, Self

import aiohttp
import orjson
import structlog
from yarl import URL

from . import events as ev
from .dispatch import Dispatcher, Handler
from .errors import AriConnectionError, AriError
from .models import Bridge, Channel
from .resources import (
    Applications,
    AsteriskApi,
    Bridges,
    Channels,
    DeviceStates,
    Endpoints,
    Playbacks,
    Recordings,
)
from .rest import RestTransport, WebSocketRestTransport

log = structlog.get_logger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class AriClient:
    """Typed asyncio client for one Asterisk and one Stasis application.

    Use as ``async with AriClient(...) as client`` (opens the HTTP session; on exit stops
    :meth:`run` and closes everything), register handlers with :meth:`on_event`, and run
    :meth:`run` as a task.

    Tunables (keyword-only):

    * ``request_timeout``: seconds for one REST request, including reading the body.
    * ``connect_timeout``: seconds to open a TCP connection (REST and WebSocket).
    * ``heartbeat``: the WebSocket is pinged after this many idle seconds; no frame or pong
      within half of it more counts as a stall and a disconnect.
    * ``backoff_base`` / ``backoff_max``: the reconnect delay doubles from base up to max;
      each wait is drawn uniformly from [delay/2, delay] so many clients do not reconnect in step.
      The delay starts again from base once a connection has stayed up for ``backoff_max``.
    * ``max_queue``: events buffered per dispatch key before the reader waits (bounded memory).
    * ``slow_handler_warning``: a handler running longer than this is logged with its event.
    * ``idle_worker_timeout``: a channel's worker task ends after this long without events.
    * ``close_timeout``: on close, how long queued events may still run before being cancelled.
    * ``subscribe_all``: passed to ``/ari/events`` (the hotline wants only its own objects).
    * ``rest_transport``: ``"http"`` (default) or ``"websocket"`` to send REST requests over the
      event socket (Asterisk 22.4+; see :class:`~ari.rest.WebSocketRestTransport`).
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        app: str,
        *,
        request_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        heartbeat: float = 10.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_queue: int = 1000,
        slow_handler_warning: float = 5.0,
        idle_worker_timeout: float = 1.0,
        close_timeout: float = 5.0,
        subscribe_all: bool = False,
        rest_transport: Literal["http", "websocket"] = "http",
    ) -> None:
        url = URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("base_url must be an http(s) URL such as http://127.0.0.1:8088")
        if url.user or url.password:
            raise ValueError("base_url must not contain credentials; pass username and password")
        if not app or "," in app:
            raise ValueError("app must be one non-empty application name")
        if heartbeat <= 0 or backoff_base <= 0 or backoff_max < backoff_base:
            raise ValueError("heartbeat and backoff_base must be > 0 and backoff_max >= backoff_base")
        self.base_url = base_url.rstrip("/")
        self.app = app
        self.username = username
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._auth_header = "Basic " + token
        self._connect_timeout = connect_timeout
        self._heartbeat = heartbeat
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._close_timeout = close_timeout
        ws_scheme = "wss" if url.scheme == "https" else "ws"
        self._ws_url = (
            URL(self.base_url + "/ari/events")
            .with_scheme(ws_scheme)
            .with_query(app=app, subscribeAll="true" if subscribe_all else "false")
        )

        self._ws_rest: WebSocketRestTransport | None = None
        if rest_transport == "websocket":
            self._ws_rest = WebSocketRestTransport(self.base_url, request_timeout)
            self._transport: RestTransport = self._ws_rest
        elif rest_transport == "http":
            self._transport = RestTransport(self.base_url, request_timeout)
        else:
            raise ValueError("rest_transport must be 'http' or 'websocket'")
        self._max_queue = max_queue
        self.channels = Channels(self._transport, app)
        self.bridges = Bridges(self._transport, app)
        self.playbacks = Playbacks(self._transport, app)
        self.recordings = Recordings(self._transport, app)
        self.endpoints = Endpoints(self._transport, app)
        self.device_states = DeviceStates(self._transport, app)
        self.applications = Applications(self._transport, app)
        self.asterisk = AsteriskApi(self._transport, app)

        self._handlers: list[Handler] = []
        self._dispatcher = Dispatcher(
            self._handlers,
            max_queue=max_queue,
            slow_handler_warning=slow_handler_warning,
            linger=idle_worker_timeout,
        )
        self._session: aiohttp.ClientSession | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._connected: ev.Connected | None = None
        self._state_changed = asyncio.Event()
        self._live_generation = 0
        self._generation = 0
        self._stopped = False  # run() will not (re)connect any more: closed or replaced
        self._closed = False

    def __repr__(self) -> str:
        return f"AriClient(base_url={self.base_url!r}, username={self.username!r}, app={self.app!r})"

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the HTTP session (``async with`` does this)."""
        if self._closed:
            raise RuntimeError("AriClient cannot be reopened after close()")
        if self._session is not None:
            return
        self._session = aiohttp.ClientSession(
            headers={"Authorization": self._auth_header},
            timeout=aiohttp.ClientTimeout(total=None, connect=self._connect_timeout),
            raise_for_status=False,
        )
        self._transport.session = self._session
        self._dispatcher.start()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop :meth:`run`, let queued events finish (up to ``close_timeout``), close the session."""
        if self._closed:
            return
        self._closed = True
        self._stopped = True
        self._notify()
        task = self._supervisor
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})
        if self._live_generation:
            self._dispatcher.offer(self._disconnected(self._live_generation, "client closed"))
            self._live_generation = 0
        await self._dispatcher.aclose(self._close_timeout)
        if self._session is not None:
            await self._session.close()
        log.info("ari.closed", app=self.app)

    # -- handlers ----------------------------------------------------------------------------

    def on_event(self, handler: Handler) -> Callable[[], None]:
        """Register ``async handler(event)``; returns a function that unregisters it.

        Handlers run in registration order, per dispatch key in event order (see ``ari.dispatch``).
        """
        self._handlers.append(handler)

        def remove() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)

        return remove

    # -- connection state --------------------------------------------------------------------

    @property
    def connected(self) -> ev.Connected | None:
        """The current connection's Connected event, or ``None`` while disconnected."""
        return self._connected

    @property
    def generation(self) -> int:
        """How many connections have completed their resync so far."""
        return self._generation

    def _notify(self) -> None:
        self._state_changed.set()
        self._state_changed = asyncio.Event()

    async def wait_connected(self, timeout: float | None = None) -> ev.Connected:
        """Return the current connection once it is up and resynced (wait for the next if down).

        Raises ``TimeoutError`` after ``timeout`` seconds and :class:`AriConnectionError` if the
        client stops for good (closed, or the application was taken over) while waiting.
        """
        async with asyncio.timeout(timeout):
            while True:
                if self._connected is not None:
                    return self._connected
                if self._stopped:
                    raise AriConnectionError("client stopped", "GET", "/events")
                await self._state_changed.wait()

    async def run(self) -> None:
        """Connect, dispatch, reconnect and resync until :meth:`close` or ``ApplicationReplaced``."""
        if self._session is None:
            raise RuntimeError("open the client first (async with AriClient(...))")
        if self._supervisor is not None:
            raise RuntimeError("run() is already running")
        if self._stopped:
            return
        task = asyncio.get_running_loop().create_task(self._supervise(), name="ari-supervisor")
        self._supervisor = task
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.wait({task})
            raise
        if not task.cancelled():
            task.result()

    # -- supervisor --------------------------------------------------------------------------

    def _backoff_delay(self, attempt: int) -> float:
        delay = min(self._backoff_max, self._backoff_base * (2 ** min(attempt, 30)))
        return random.uniform(delay / 2, delay)

    async def _supervise(self) -> None:
        attempt = 0
        loop = asyncio.get_running_loop()
        while not self._stopped:
            up_since: float | None = None
            try:
                reason, up_since = await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug must not end supervision: log it and reconnect.
                log.exception("ari.supervisor_error", app=self.app)
                reason = "internal error"
            if self._stopped:
                return
            if up_since is not None and loop.time() - up_since >= self._backoff_max:
                attempt = 0
            delay = self._backoff_delay(attempt)
            attempt += 1
            log.info(
                "ari.reconnect_wait", app=self.app, seconds=round(delay, 3), attempt=attempt, after=reason
            )
            await asyncio.sleep(delay)

    async def _connect_once(self) -> tuple[str, float | None]:
        """One connection's life; returns why it ended and when it came up (None if it never did)."""
        assert self._session is not None
        try:
            ws = await self._session.ws_connect(
                self._ws_url,
                heartbeat=self._heartbeat,
                autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_close=min(self._heartbeat, 2.0)),
            )
        except aiohttp.WSServerHandshakeError as exc:
            log.error("ari.connect_rejected", app=self.app, status=exc.status, message=exc.message)
            return f"handshake rejected ({exc.status})", None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("ari.connect_failed", app=self.app, error=f"{type(exc).__name__}: {exc}")
            return "connect failed", None
        self._ws = ws
        # The reader runs from the start so that REST responses over the socket flow during
        # the resync and the Connected handlers; events it reads meanwhile are held back and
        # dispatched after Connected, in order.
        held: deque[ev.Event] = deque()
        gate = asyncio.Event()
        reader = asyncio.get_running_loop().create_task(self._read(ws, held, gate), name="ari-reader")
        if self._ws_rest is not None:
            self._ws_rest.attach(ws)
        generation = 0
        try:
            try:
                channels, bridges = await self._resync()
            except AriError as exc:
                log.warning("ari.resync_failed", app=self.app, error=str(exc))
                return "resync failed", None
            up_since = asyncio.get_running_loop().time()
            self._generation += 1
            generation = self._live_generation = self._generation
            connected = ev.Connected(
                type="Connected",
                application=self.app,
                timestamp=_now(),
                generation=generation,
                channels=channels,
                bridges=bridges,
                raw={"type": "Connected", "generation": generation},
            )
            log.info(
                "ari.connected",
                app=self.app,
                generation=generation,
                channels=len(channels),
                bridges=len(bridges),
            )
            await self._dispatcher.deliver(connected)
            while held:
                await self._dispatcher.submit(held.popleft())
            gate.set()  # no await since the loop above saw `held` empty: nothing is stranded
            self._connected = connected
            self._notify()
            reason = await reader
        finally:
            if not reader.done():
                reader.cancel()
                await asyncio.wait({reader})
            if self._ws_rest is not None:
                self._ws_rest.detach("connection ended")
            self._ws = None
            self._connected = None
            if not ws.closed:
                await ws.close()
        # Reached only when the connection had come up; Disconnected pairs with its Connected.
        self._live_generation = 0
        level = log.info if self._stopped else log.warning
        level("ari.disconnected", app=self.app, generation=generation, reason=reason)
        self._notify()
        await self._dispatcher.submit(self._disconnected(generation, reason))
        return reason, up_since

    def _disconnected(self, generation: int, reason: str) -> ev.Disconnected:
        return ev.Disconnected(
            type="Disconnected",
            application=self.app,
            timestamp=_now(),
            generation=generation,
            reason=reason,
            raw={"type": "Disconnected", "generation": generation, "reason": reason},
        )

    async def _resync(self) -> tuple[list[Channel], list[Bridge]]:
        channels = [c for c in await self.channels.list() if c.in_app(self.app)]
        ours = {c.id for c in channels}
        bridges = [
            b
            for b in await self.bridges.list()
            if ours.intersection(b.channels) or (not b.channels and b.creator == "Stasis")
        ]
        return channels, bridges

    async def _read(
        self, ws: aiohttp.ClientWebSocketResponse, held: deque[ev.Event], gate: asyncio.Event
    ) -> str:
        """Feed events to the dispatcher until the socket ends; return why it ended.

        Until ``gate`` opens (Connected has been handled) events go to ``held`` instead, at most
        ``max_queue`` of them; past that the reader waits, like a full lane.
        """
        dispatcher = self._dispatcher
        ws_rest = self._ws_rest
        parse = ev.parse_event
        loads = orjson.loads
        text = aiohttp.WSMsgType.TEXT
        while True:
            msg = await ws.receive()
            if msg.type is text:
                try:
                    data = loads(msg.data)
                    if ws_rest is not None and type(data) is dict and data.get("type") == "RESTResponse":
                        ws_rest.feed(data)
                        continue
                    event = parse(data)
                except (ValueError, ev.MalformedEvent):
                    log.warning("ari.bad_frame", app=self.app, frame=str(msg.data)[:200])
                    continue
                if type(event) is ev.UnknownEvent and event.type in ev.MODELLED_TYPES:
                    log.warning(
                        "ari.event_unparsed", app=self.app, event_type=event.type, ari_event=event.raw
                    )
                if not gate.is_set() and len(held) < self._max_queue:
                    held.append(event)
                else:
                    if not gate.is_set():
                        await gate.wait()
                    waiter = dispatcher.offer(event)
                    if waiter is not None:
                        await asyncio.shield(waiter)
                if type(event) is ev.ApplicationReplaced:
                    self._stopped = True
                    log.critical(
                        "ari.application_replaced",
                        app=self.app,
                        action="stopped reconnecting; another process now owns this application",
                    )
                    return "application replaced"
            elif msg.type is aiohttp.WSMsgType.ERROR:
                err = ws.exception()
                if isinstance(err, aiohttp.ServerTimeoutError):
                    return "stalled"
                return f"error: {type(err).__name__}: {err}"
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                code = ws.close_code
                if code is None or code == aiohttp.WSCloseCode.ABNORMAL_CLOSURE:
                    return "connection lost"
                return f"closed by server ({code})"
            else:
                log.warning("ari.unexpected_frame", app=self.app, frame_type=msg.type.name)
