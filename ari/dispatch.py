"""Ordered, per-key event dispatch.

Each dispatch key (``Event.dispatch_key``: one channel, one bridge, or the global key) has a
*lane*: a bounded FIFO drained by one worker task, so events of one channel reach the handlers
in order and one at a time, while different channels run concurrently. A handler that raises is
logged with the event and the lane moves on; a handler that is slow holds up only its own lane
(and is logged, while still running, after ``slow_handler_warning`` seconds).

Workers come and go with traffic: a lane whose queue runs dry parks its worker for ``linger``
seconds (so a busy call does not pay for a new task per burst of events), after which the
housekeeping task retires it and forgets the key. Keys of finished calls therefore cost
nothing after ``linger`` (no task leak). Without :meth:`Dispatcher.start` there is no
housekeeping and workers end as soon as their lane is empty.

Back-pressure: a lane holds at most ``max_queue`` events. When a lane is full, :meth:`submit`
waits until its worker takes one, which stalls the WebSocket reader (TCP then pushes back on
Asterisk). Memory is therefore bounded by ``max_queue`` per live key. The price is that a lane
stuck for ``max_queue`` events delays every other key too; ``max_queue`` is large enough that
only a handler stuck for good gets there, and the watchdog logs that well before.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

import structlog

from .events import GLOBAL_KEY, Event

log = structlog.get_logger(__name__)

Handler = Callable[[Event], Awaitable[None]]


class _Barrier:
    """An event whose submitter waits until every handler has run for it."""

    __slots__ = ("done", "event")

    def __init__(self, event: Event, done: asyncio.Future[None]) -> None:
        self.event = event
        self.done = done


class _Lane:
    __slots__ = ("current", "idle_since", "items", "key", "space", "started", "task", "wake", "warned")

    def __init__(self, key: str) -> None:
        self.key = key
        self.items: deque[Event | _Barrier] = deque()
        self.task: asyncio.Task[None] | None = None
        self.space: asyncio.Future[None] | None = None
        # Set while the worker is parked on an empty lane; resolved True to retire it.
        self.wake: asyncio.Future[bool] | None = None
        self.idle_since = 0.0
        self.current: Event | None = None
        self.started = 0.0
        self.warned = False


def _handler_name(handler: Handler) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)


class Dispatcher:
    """Runs ``handlers`` for each submitted event, ordered per dispatch key."""

    def __init__(
        self,
        handlers: list[Handler],
        *,
        max_queue: int = 1000,
        slow_handler_warning: float = 5.0,
        linger: float = 1.0,
    ) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self._handlers = handlers  # shared with the client so later registrations apply
        self._max = max_queue
        self._slow = slow_handler_warning
        self._linger = linger
        self._lanes: dict[str, _Lane] = {}
        self._active = 0  # lanes with queued events or a handler running
        self._idle = asyncio.Event()
        self._idle.set()
        self._no_lanes = asyncio.Event()
        self._no_lanes.set()
        self._housekeeper: asyncio.Task[None] | None = None
        self._closing = False

    # -- feeding -----------------------------------------------------------------------------

    def _activate(self) -> None:
        self._active += 1
        self._idle.clear()

    def _deactivate(self) -> None:
        self._active -= 1
        if self._active == 0:
            self._idle.set()

    def _enqueue(self, key: str, item: Event | _Barrier) -> _Lane:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(key)
            lane.items.append(item)
            self._no_lanes.clear()
            self._activate()
            lane.task = asyncio.get_running_loop().create_task(self._drain(lane), name=f"ari-lane:{key}")
            return lane
        lane.items.append(item)
        wake = lane.wake
        if wake is not None:
            lane.wake = None
            self._activate()
            wake.set_result(False)
        return lane

    def offer(self, event: Event) -> asyncio.Future[None] | None:
        """Queue ``event`` without waiting; return a future to await if its lane is now full."""
        lane = self._enqueue(event.dispatch_key, event)
        if len(lane.items) < self._max:
            return None
        if lane.space is None:
            lane.space = asyncio.get_running_loop().create_future()
        return lane.space

    async def submit(self, event: Event) -> None:
        """Queue ``event``; wait only while its lane is full (bounded memory)."""
        waiter = self.offer(event)
        if waiter is not None:
            await asyncio.shield(waiter)

    async def deliver(self, event: Event, key: str = GLOBAL_KEY) -> None:
        """Queue ``event`` on lane ``key`` and wait until every handler has run for it."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._enqueue(key, _Barrier(event, done))
        await asyncio.shield(done)

    # -- draining ----------------------------------------------------------------------------

    async def _drain(self, lane: _Lane) -> None:
        items = lane.items
        loop = asyncio.get_running_loop()
        parked = False
        try:
            while True:
                while items:
                    item = items.popleft()
                    if lane.space is not None and len(items) < self._max:
                        lane.space.set_result(None)
                        lane.space = None
                    if type(item) is _Barrier:
                        await self._run_handlers(lane, item.event, loop)
                        if not item.done.done():
                            item.done.set_result(None)
                    else:
                        await self._run_handlers(lane, item, loop)  # type: ignore[arg-type]
                # No await between the emptiness check above and parking or leaving here, so
                # no event can slip in unseen.
                if self._housekeeper is None or self._closing:
                    return
                lane.idle_since = loop.time()
                wake = lane.wake = loop.create_future()
                parked = True
                self._deactivate()
                if await wake:
                    return  # retired by housekeeping, which already forgot the key
                parked = False  # _enqueue counted us active again
        finally:
            if self._lanes.get(lane.key) is lane:
                del self._lanes[lane.key]
            if not self._lanes:
                self._no_lanes.set()
            if not parked:
                self._deactivate()
            if lane.space is not None and not lane.space.done():
                lane.space.set_result(None)
            for left in items:
                if type(left) is _Barrier and not left.done.done():
                    left.done.cancel()
            if items:
                log.warning("ari.events_discarded", key=lane.key, count=len(items))

    async def _run_handlers(self, lane: _Lane, event: Event, loop: asyncio.AbstractEventLoop) -> None:
        lane.current = event
        lane.warned = False
        started = lane.started = loop.time()
        for handler in self._handlers:
            try:
                await handler(event)
            except Exception:
                log.exception(
                    "ari.handler_failed",
                    handler=_handler_name(handler),
                    event_type=event.type,
                    key=lane.key,
                    ari_event=event.raw,
                )
        lane.current = None
        elapsed = loop.time() - started
        if self._slow > 0 and elapsed >= self._slow:
            log.warning(
                "ari.handler_slow",
                event_type=event.type,
                key=lane.key,
                seconds=round(elapsed, 3),
                ari_event=event.raw,
            )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start housekeeping: retire lanes idle for ``linger``, report handlers stuck for long."""
        if self._housekeeper is None:
            self._housekeeper = asyncio.get_running_loop().create_task(
                self._housekeeping(), name="ari-dispatch-housekeeping"
            )

    async def _housekeeping(self) -> None:
        loop = asyncio.get_running_loop()
        periods = [p / 2 for p in (self._slow, self._linger) if p > 0]
        period = min(periods) if periods else 1.0
        while True:
            await asyncio.sleep(period)
            now = loop.time()
            for lane in list(self._lanes.values()):
                wake = lane.wake
                if wake is not None:
                    if now - lane.idle_since >= self._linger:
                        del self._lanes[lane.key]
                        lane.wake = None
                        wake.set_result(True)
                    continue
                ev = lane.current
                if self._slow > 0 and ev is not None and not lane.warned and now - lane.started >= self._slow:
                    lane.warned = True
                    log.warning(
                        "ari.handler_stuck",
                        event_type=ev.type,
                        key=lane.key,
                        seconds=round(now - lane.started, 3),
                        ari_event=ev.raw,
                    )

    @property
    def lane_count(self) -> int:
        """Lanes that exist now, busy or parked."""
        return len(self._lanes)

    async def wait_idle(self) -> None:
        """Wait until every queued event has been handled."""
        await self._idle.wait()

    async def wait_no_lanes(self) -> None:
        """Wait until every worker has been retired (idle for ``linger``, or drained without housekeeping)."""
        await self._no_lanes.wait()

    async def aclose(self, timeout: float) -> None:
        """Let queued events finish for up to ``timeout`` seconds, then cancel what is left.

        Safe to call from inside a handler (e.g. one that shuts the application down): that
        handler's own lane is neither waited for nor cancelled.
        """
        self._closing = True
        for lane in list(self._lanes.values()):
            wake = lane.wake
            if wake is not None:
                del self._lanes[lane.key]
                lane.wake = None
                wake.set_result(True)
        current = asyncio.current_task()
        tasks = [
            lane.task for lane in self._lanes.values() if lane.task is not None and lane.task is not current
        ]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                log.warning("ari.dispatch_close_timeout", lanes=len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending)
        if self._housekeeper is not None:
            self._housekeeper.cancel()
            await asyncio.wait({self._housekeeper})
            self._housekeeper = None
