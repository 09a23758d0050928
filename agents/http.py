"""The agent and supervisor API: thin routes over the queue flow and the metrics.

Agents act on themselves (``/api/agent/...``, the agent is the signed-in user's ``agent_id``);
supervisors act on anyone (``/api/agents/{id}/...``), see every queue and call, and read metrics.
Live notices stream as Server-Sent Events: a ``state`` snapshot first, then each notice. A stream
lasts as long as the session it was opened with: it ends within ``session_check`` seconds of a
sign-out, the user being disabled or given a new password, or the session running out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from aiohttp import web

from agents import metrics
from agents.errors import CommandError
from agents.notifier import Notice
from agents.stasis import QueueFlow
from hotline.db import Store
from hotline.web import ApiError, current_user, json_object, requires, still_signed_in

log = structlog.get_logger(__name__)

FLOW = web.AppKey("queue_flow", QueueFlow)
SESSION_CHECK = web.AppKey("session_check", float)
KEEPALIVE = 15.0  # seconds between SSE comments, so proxies keep an idle stream open
# Seconds between checks that a stream's session is still valid: how long a stream can outlive it.
CHECK_SESSION_EVERY = 2.0
MAX_WINDOW = timedelta(days=31)  # the longest since..until the metrics routes serve
# The times the metrics routes accept: far enough inside datetime's range to compute with.
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)


def _flow(request: web.Request) -> QueueFlow:
    return request.app[FLOW]


def _own_agent(request: web.Request) -> str:
    user = current_user(request)
    if not user.agent_id:
        raise ApiError(403, "not_an_agent", "this user is not linked to an agent")
    if user.agent_id not in _flow(request).ctx.router.agents:
        raise ApiError(
            403, "unknown_agent", f"this user's agent {user.agent_id!r} is not in the configuration"
        )
    return user.agent_id


def _text(data: dict[str, Any], key: str, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ApiError(400, "bad_request", f"{key}: a non-empty string is required")
    return value


async def _run(command: Awaitable[Any]) -> Any:
    try:
        return await command
    except CommandError as exc:
        raise ApiError(exc.status, type(exc).__name__.lower(), str(exc)) from None


def _ok(**extra: Any) -> web.Response:
    return web.json_response({"ok": True, **extra})


# -- the signed-in agent ------------------------------------------------------------------------


@requires("agent")
async def my_state(request: web.Request) -> web.Response:
    return web.json_response(_flow(request).desk.agent_state(_own_agent(request)))


def _presence_command(name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``login``, ``logout``, ``resume`` or ``end_wrap_up`` on the signed-in agent or, for a
    supervisor, on the agent in the path."""

    async def handler(request: web.Request) -> web.Response:
        agent_id = request.match_info.get("agent_id") or _own_agent(request)
        if request.match_info.get("agent_id"):
            _require_supervisor(request)
        command = getattr(_flow(request).desk, name)
        if name == "end_wrap_up":
            await _run(command(agent_id))
        else:  # a presence change is attributed to the supervisor who made it
            await _run(command(agent_id, by=_by(request, agent_id)))
        return web.json_response(_flow(request).desk.agent_state(agent_id))

    return requires("agent")(handler)


def _by(request: web.Request, agent_id: str) -> str:
    """Who made a change to ``agent_id``'s presence, when it was not that agent themself."""
    user = current_user(request)
    return "" if user.agent_id == agent_id else user.username


def _require_supervisor(request: web.Request) -> None:
    if not current_user(request).has("supervisor"):
        raise ApiError(403, "forbidden", "supervisors only")


@requires("agent")
async def pause(request: web.Request) -> web.Response:
    agent_id = request.match_info.get("agent_id") or _own_agent(request)
    if request.match_info.get("agent_id"):
        _require_supervisor(request)
    reason = _text(await json_object(request), "reason")
    assert reason is not None
    await _run(_flow(request).desk.pause(agent_id, reason, by=_by(request, agent_id)))
    return web.json_response(_flow(request).desk.agent_state(agent_id))


@requires("agent")
async def transfer(request: web.Request) -> web.Response:
    data = await json_object(request)
    queue, to_agent = _text(data, "queue", required=False), _text(data, "agent", required=False)
    if (queue is None) == (to_agent is None):
        raise ApiError(400, "bad_request", "give either queue or agent")
    call_id = await _run(_flow(request).desk.transfer(_own_agent(request), queue=queue, to_agent=to_agent))
    return _ok(call_id=call_id)


@requires("agent")
async def my_events(request: web.Request) -> web.StreamResponse:
    agent_id = _own_agent(request)
    flow = _flow(request)
    return await _stream(request, agent_id, lambda: {"type": "state", **flow.desk.agent_state(agent_id)})


# -- supervisors --------------------------------------------------------------------------------


@requires("supervisor")
async def live(request: web.Request) -> web.Response:
    return web.json_response(_flow(request).desk.snapshot())


@requires("supervisor")
async def all_events(request: web.Request) -> web.StreamResponse:
    flow = _flow(request)
    return await _stream(request, None, lambda: {"type": "state", **flow.desk.snapshot()})


@requires("supervisor")
async def reprioritise(request: web.Request) -> web.Response:
    boost = (await json_object(request)).get("boost")
    if not isinstance(boost, int) or isinstance(boost, bool) or not -100 <= boost <= 100:
        raise ApiError(400, "bad_request", "boost: an integer from -100 to 100 is required")
    by = current_user(request).username
    await _run(_flow(request).desk.reprioritise(request.match_info["call_id"], boost, by=by))
    return _ok()


@requires("supervisor")
async def spy(request: web.Request) -> web.Response:
    """Ring the supervisor's phone (``phone``: an agent id, by default the supervisor's own) to
    ``listen``, ``whisper`` (to the agent) or ``barge`` on the call."""
    data = await json_object(request)
    mode = _text(data, "mode")
    phone = _text(data, "phone", required=False) or current_user(request).agent_id
    if phone is None:
        raise ApiError(400, "bad_request", "phone: give the agent id whose phone should ring")
    assert mode is not None
    by = current_user(request).username
    leg = await _run(_flow(request).desk.spy(request.match_info["call_id"], mode, phone, by=by))
    return _ok(channel=leg)


def _time(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ApiError(400, "bad_request", f"{name}: not an ISO 8601 time ({exc})") from None
    if value.tzinfo is None:
        raise ApiError(400, "bad_request", f"{name}: needs a time zone (e.g. +03:00 or Z)")
    try:
        in_range = EARLIEST <= value.astimezone(UTC) < LATEST
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in UTC
        in_range = False
    if not in_range:
        raise ApiError(
            400, "bad_request", f"{name}: out of range (years {EARLIEST.year} to {LATEST.year - 1})"
        )
    return value


def _window(request: web.Request) -> tuple[datetime, datetime, timedelta]:
    """``since``/``until`` (ISO 8601, default the last 24 hours) and ``bucket`` seconds (default
    3600), refused unless the figures are cheap to compute: at most ``MAX_WINDOW`` long and
    ``metrics.MAX_INTERVALS`` buckets."""
    until = _time(request, "until") or datetime.now(UTC)
    since = _time(request, "since") or until - timedelta(days=1)
    try:
        seconds = float(request.query.get("bucket", "3600"))
    except ValueError:
        seconds = math.nan
    if not since < until:
        raise ApiError(400, "bad_request", "since must be before until")
    if until - since > MAX_WINDOW:
        raise ApiError(400, "bad_request", f"since and until can be at most {MAX_WINDOW.days} days apart")
    if not 60 <= seconds <= MAX_WINDOW.total_seconds():  # also refuses nan
        raise ApiError(400, "bad_request", f"bucket: a number of seconds from 60 to {MAX_WINDOW.days} days")
    bucket = timedelta(seconds=seconds)
    count = math.ceil((until - since) / bucket)
    if count > metrics.MAX_INTERVALS:
        raise ApiError(
            400,
            "bad_request",
            f"{count} buckets asked for, at most {metrics.MAX_INTERVALS}: make bucket longer or"
            " the window shorter",
        )
    return since, until, bucket


@requires("supervisor")
async def queue_figures(request: web.Request) -> web.Response:
    since, until, bucket = _window(request)
    config = _flow(request).config
    history = await metrics.load(request.app[STORE], since, until)
    thresholds = {queue_id: q.service_level for queue_id, q in config.queues.items()}
    rows = metrics.queue_metrics(
        history, since, until, thresholds=thresholds, bucket=bucket, now=datetime.now(UTC)
    )
    return web.json_response([_row(r) for r in rows], dumps=_dumps)


@requires("supervisor")
async def agent_figures(request: web.Request) -> web.Response:
    since, until, bucket = _window(request)
    history = await metrics.load(request.app[STORE], since, until)
    rows = metrics.agent_metrics(history, since, until, bucket=bucket, now=datetime.now(UTC))
    return web.json_response([_row(r) for r in rows], dumps=_dumps)


def _row(row: object) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__dataclass_fields__}  # type: ignore[attr-defined]


def _dumps(value: object) -> str:
    return json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime) else dict(v))


# -- Server-Sent Events -------------------------------------------------------------------------


async def _stream(
    request: web.Request, agent_id: str | None, snapshot: Callable[[], Notice]
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    every = request.config_dict[SESSION_CHECK]
    clock = asyncio.get_running_loop().time
    async with _flow(request).notices.subscribe(agent_id) as sub:
        first = snapshot()  # before the answer starts, so a failure still answers as JSON
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
            await _send(response, first)
            next_check, next_keepalive = clock() + every, clock() + KEEPALIVE
            while True:
                # Checked on time even while notices keep coming.
                if clock() >= next_check:
                    if not await _signed_in(request):
                        break
                    next_check = clock() + every
                if clock() >= next_keepalive:
                    await response.write(b": keepalive\n\n")
                    next_keepalive = clock() + KEEPALIVE
                try:
                    notice = await asyncio.wait_for(sub.get(), min(next_check, next_keepalive) - clock())
                except TimeoutError:
                    continue
                if notice is None or notice["type"] == "closing":
                    break
                await _send(response, notice)
                next_keepalive = clock() + KEEPALIVE
    return response


async def _signed_in(request: web.Request) -> bool:
    """Whether the session the request came with is still open, for the same user with the same
    role and agent. Checking does not count as activity: an open stream does not keep its
    session from going idle. A check that fails ends the stream too."""
    try:
        return await still_signed_in(request)
    except Exception:
        log.exception("web_stream_session_check_failed", path=request.path)
        return False


async def _send(response: web.StreamResponse, notice: Notice) -> None:
    await response.write(f"event: {notice['type']}\ndata: {_dumps(notice)}\n\n".encode())


STORE = web.AppKey("metrics_store", Store)


def routes(
    flow: QueueFlow, store: Store, session_check: float = CHECK_SESSION_EVERY
) -> Callable[[web.Application], None]:
    """The installer ``hotline.web.build_web`` calls with its application. ``session_check``:
    seconds between checks that a live stream's session is still valid."""

    def install(webapp: web.Application) -> None:
        webapp[FLOW], webapp[STORE], webapp[SESSION_CHECK] = flow, store, session_check
        webapp.on_shutdown.append(_close_streams)
        add = webapp.router
        add.add_get("/api/agent", my_state)
        add.add_get("/api/agent/events", my_events)
        for name in ("login", "logout", "resume"):
            add.add_post(f"/api/agent/{name}", _presence_command(name))
            add.add_post(f"/api/agents/{{agent_id}}/{name}", _presence_command(name))
        add.add_post("/api/agent/wrap-up/end", _presence_command("end_wrap_up"))
        add.add_post("/api/agent/pause", pause)
        add.add_post("/api/agents/{agent_id}/pause", pause)
        add.add_post("/api/agent/transfer", transfer)
        add.add_get("/api/live", live)
        add.add_get("/api/live/events", all_events)
        add.add_post("/api/calls/{call_id}/priority", reprioritise)
        add.add_post("/api/calls/{call_id}/spy", spy)
        add.add_get("/api/metrics/queues", queue_figures)
        add.add_get("/api/metrics/agents", agent_figures)

    return install


async def _close_streams(webapp: web.Application) -> None:
    webapp[FLOW].notices.close()
