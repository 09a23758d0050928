"""Queue and agent figures computed from the stored timeline (Call, CallEvent, AgentEvent).

Loading (``load``) is kept apart from computing (``queue_metrics``, ``agent_metrics``), so the
rules below are tested on hand-built rows without a database. Conventions:

* Intervals: consecutive buckets of ``bucket`` from ``since``; the last one stops at ``until``.
  Pass a ``since`` on the quarter or the hour for clock-aligned intervals.
* A *leg* is one caller's stay in one queue. Queue figures are bucketed by the time the caller
  joined that queue; what became of the caller, even after ``until``, counts in that bucket.
* Overflow: every queue a caller passes through sees its own leg, starting when the caller
  joined it (``queued``, or the ``overflow`` event). The first queue counts the call as offered
  and overflowed out; the queue where it was answered or abandoned counts it as offered and
  answered or abandoned. Waits (ASA, service level, longest wait) are per leg, as app_queue
  measures each queue a caller enters, so one queue's slowness is not charged to the next.
* Short abandons: callers who hung up within ``short_abandon`` seconds (wait <= 5 s by default)
  count as offered and abandoned, but are left out of the service level altogether: they hung up
  before anyone could have answered (misdials, second thoughts).
* Service level, in percent: legs answered within the queue's threshold (wait <= threshold, as
  app_queue) / (legs offered - short abandons - legs still undecided). Undecided: still waiting
  and not yet past the threshold. Every other way out (a later abandon, overflow, the fallback,
  a failure) is a miss.
* ASA: mean wait of the answered legs (joined -> ``agent_connected``).
* AHT: talk (``agent_connected`` -> the call's end) plus the wrap-up the agent then did for that
  call (the AgentEvent into wrap_up carrying the call id, until the agent's next change). Calls
  still in talk or wrap-up are left out until they are done.
* Agent time: presence segments from AgentEvent, clipped to [since, min(until, now)); the state
  at ``since`` is the one the latest earlier event set (none: offline, nothing counted).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import and_, col, or_, select

from agents.models import AgentEvent
from agents.service import Presence
from hotline.db import Store
from hotline.models import Call, CallEvent

QUARTER = timedelta(minutes=15)
# The most intervals one computation builds: each costs every queue (or agent) a row.
MAX_INTERVALS = 2000
DEFAULT_SERVICE_LEVEL = 20.0  # seconds, as QueueConfig.service_level
SHORT_ABANDON = 5.0  # seconds
# The longest wrap-up the queue config allows: how far past a call's end its wrap-up can run.
WRAP_UP_LIMIT = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class History:
    """The stored rows the figures are computed from, in any order."""

    calls: Sequence[Call]
    events: Sequence[CallEvent]
    agent_events: Sequence[AgentEvent]


class Exit(StrEnum):
    answered = "answered"
    abandoned = "abandoned"
    overflowed = "overflowed"
    other = "other"  # handed to the fallback, failed, or ended by a restart while waiting
    waiting = "waiting"  # still in the queue


@dataclass(frozen=True, slots=True)
class Leg:
    """One caller's stay in one queue."""

    call_id: str
    queue: str
    joined: datetime
    left: datetime | None  # None while still waiting
    exit: Exit
    agent: str | None = None  # who answered

    def wait(self, now: datetime | None = None) -> float | None:
        """Seconds in the queue; for a caller still waiting, so far (None without ``now``)."""
        end = self.left if self.left is not None else now
        return None if end is None else max(0.0, (end - self.joined).total_seconds())


@dataclass(frozen=True, slots=True)
class QueueInterval:
    queue: str
    start: datetime
    end: datetime
    offered: int  # legs that joined the queue in the interval
    answered: int
    abandoned: int  # short abandons included
    short_abandoned: int
    overflowed_out: int
    waiting: int  # still waiting (at ``now``, or when the rows were read)
    answered_in_time: int  # within the queue's service-level threshold
    service_level: float | None  # percent; None when no call counts
    asa: float | None  # seconds
    aht: float | None  # seconds, talk + wrap-up
    longest_wait: float  # seconds; 0 when nobody waited


@dataclass(frozen=True, slots=True)
class AgentInterval:
    agent: str
    start: datetime
    end: datetime
    answered: int
    missed: int  # offers that rang the agent's phone and were not taken
    talk: float  # seconds on_call
    wrap_up: float
    ringing: float  # reserved: an offer ringing
    available: float
    paused: Mapping[str, float]  # reason -> seconds
    logged_in: float  # every state but offline


# -- loading -----------------------------------------------------------------------------------


async def load(store: Store, since: datetime, until: datetime) -> History:
    """The rows behind the figures for [since, until): calls that started before ``until`` and had
    not ended by ``since`` (all their events, even later ones: a caller counts where they joined),
    and agent events from ``since`` on, with each agent's latest earlier one (their state at
    ``since``) and those up to the end of the wrap-ups that followed the calls."""
    _check_window(since, until, QUARTER)
    await store.behind.flush()  # the newest timeline and presence rows are written behind
    in_window = and_(
        col(Call.started_at) < until, or_(col(Call.ended_at).is_(None), col(Call.ended_at) >= since)
    )
    async with store.session() as session:
        rows = (
            await session.exec(
                select(Call, CallEvent)
                .join(CallEvent, col(CallEvent.call_id) == col(Call.id))
                .where(in_window)
                .order_by(col(CallEvent.at), col(CallEvent.id))
            )
        ).all()
        calls = list({call.id: call for call, _ in rows}.values())
        horizon = max([until, *(c.ended_at for c in calls if c.ended_at is not None)]) + WRAP_UP_LIMIT
        # Each agent's latest change before ``since``: the state they were in at ``since``.
        state_at_since = (
            select(col(AgentEvent.agent_id), sa.func.max(AgentEvent.at))
            .where(col(AgentEvent.at) < since)
            .group_by(col(AgentEvent.agent_id))
        )
        agent_events = (
            await session.exec(
                select(AgentEvent)
                .where(
                    or_(
                        and_(col(AgentEvent.at) >= since, col(AgentEvent.at) < horizon),
                        sa.tuple_(col(AgentEvent.agent_id), col(AgentEvent.at)).in_(state_at_since),
                    )
                )
                .order_by(col(AgentEvent.at), col(AgentEvent.id))
            )
        ).all()
    return History(calls, [event for _, event in rows], list(agent_events))


# -- intervals ---------------------------------------------------------------------------------


def _check_window(since: datetime, until: datetime, bucket: timedelta) -> None:
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware")
    if until <= since:
        raise ValueError("until must be after since")
    if bucket <= timedelta(0):
        raise ValueError("bucket must be positive")


def intervals(
    since: datetime, until: datetime, bucket: timedelta = QUARTER
) -> list[tuple[datetime, datetime]]:
    """[start, end) spans of ``bucket`` from ``since``; the last is cut at ``until``. At most
    ``MAX_INTERVALS`` of them, so a window far longer than its bucket is refused, not built."""
    _check_window(since, until, bucket)
    if (until - since) / bucket > MAX_INTERVALS:
        raise ValueError(f"more than {MAX_INTERVALS} intervals of {bucket} from {since} to {until}")
    spans = []
    start = since
    while start < until:
        spans.append((start, min(start + bucket, until)))
        start += bucket
    return spans


def _spread(
    start: datetime, end: datetime, spans: Sequence[tuple[datetime, datetime]], bucket: timedelta
) -> Iterator[tuple[int, float]]:
    """(interval index, seconds) of [start, end) falling in each interval."""
    if not spans or end <= start:
        return
    first = max(0, (start - spans[0][0]) // bucket)
    for index in range(first, len(spans)):
        lo, hi = spans[index]
        if lo >= end:
            break
        overlap = (min(end, hi) - max(start, lo)).total_seconds()
        if overlap > 0:
            yield index, overlap


def _index(at: datetime, spans: Sequence[tuple[datetime, datetime]], bucket: timedelta) -> int | None:
    if not spans or not spans[0][0] <= at < spans[-1][1]:
        return None
    return (at - spans[0][0]) // bucket


def _order(row: CallEvent | AgentEvent) -> tuple[datetime, int]:
    # Rows written by one process share a timestamp at times; their ids keep the order.
    return row.at, row.id or 0


# -- queues ------------------------------------------------------------------------------------


def queue_legs(calls: Iterable[Call], events: Iterable[CallEvent]) -> list[Leg]:
    """Every caller's stay in every queue, from the call timelines, earliest first."""
    ended = {call.id: call.ended_at for call in calls}
    timelines: dict[str, list[CallEvent]] = defaultdict(list)
    for event in events:
        timelines[event.call_id].append(event)
    legs = []
    for call_id, timeline in timelines.items():
        legs.extend(_legs_of(call_id, sorted(timeline, key=_order), ended.get(call_id)))
    return sorted(legs, key=lambda leg: (leg.joined, leg.call_id))


def _legs_of(call_id: str, timeline: Sequence[CallEvent], ended_at: datetime | None) -> list[Leg]:
    legs: list[Leg] = []
    queue, joined = "", None  # the queue the caller is in now, and since when

    for event in timeline:
        target = event.data.get("queue")
        match event.kind:
            case "queued" if isinstance(target, str):
                if joined is not None and target == queue:
                    continue  # handed over again after a restart: the same stay
                if joined is not None:
                    legs.append(Leg(call_id, queue, joined, event.at, Exit.other))
                queue, joined = target, event.at
            case "overflow" if joined is not None and isinstance(target, str):
                legs.append(Leg(call_id, queue, joined, event.at, Exit.overflowed))
                queue, joined = target, event.at
            case "agent_connected" if joined is not None:
                agent = event.data.get("agent")
                legs.append(
                    Leg(call_id, queue, joined, event.at, Exit.answered, str(agent) if agent else None)
                )
                joined = None
            case "abandoned_in_queue" if joined is not None:
                legs.append(Leg(call_id, queue, joined, event.at, Exit.abandoned))
                joined = None
            case "handed_to_fallback" | "ended" if joined is not None:
                legs.append(Leg(call_id, queue, joined, event.at, Exit.other))
                joined = None
    if joined is not None:
        # Still waiting, or the call was closed without a queue event (a restart): not served.
        how = Exit.waiting if ended_at is None else Exit.other
        legs.append(Leg(call_id, queue, joined, ended_at, how))
    return legs


def _call_ends(history: History) -> dict[str, datetime]:
    ends = {event.call_id: event.at for event in history.events if event.kind == "ended"}
    ends.update({call.id: call.ended_at for call in history.calls if call.ended_at is not None})
    return ends


def _wrap_ups(agent_events: Iterable[AgentEvent]) -> dict[tuple[str, str], float | None]:
    """(agent, call) -> seconds of the wrap-up after that call; None while it goes on."""
    wraps: dict[tuple[str, str], float | None] = {}
    for timeline in _by_agent(agent_events).values():
        for event, following in zip(timeline, [*timeline[1:], None], strict=True):
            if event.after == Presence.wrap_up and event.call_id:
                seconds = None if following is None else (following.at - event.at).total_seconds()
                wraps[(event.agent_id, event.call_id)] = seconds
    return wraps


def _handle_times(
    legs: Iterable[Leg], ends: Mapping[str, datetime], wraps: Mapping[tuple[str, str], float | None]
) -> list[float]:
    handled = []
    for leg in legs:
        end = ends.get(leg.call_id)
        key = (leg.agent or "", leg.call_id)
        if leg.left is None or end is None or (key in wraps and wraps[key] is None):
            continue  # still talking or wrapping up
        handled.append((end - leg.left).total_seconds() + (wraps.get(key) or 0.0))
    return handled


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _queue_interval(
    queue: str,
    span: tuple[datetime, datetime],
    legs: Sequence[Leg],
    threshold: float,
    short_abandon: float,
    now: datetime | None,
    handle_times: Sequence[float],
) -> QueueInterval:
    answered = [leg for leg in legs if leg.exit is Exit.answered]
    abandoned = [leg for leg in legs if leg.exit is Exit.abandoned]
    short = [leg for leg in abandoned if (leg.wait() or 0.0) <= short_abandon]
    waits = [leg.wait() or 0.0 for leg in answered]
    in_time = sum(1 for wait in waits if wait <= threshold)
    waiting = [leg for leg in legs if leg.exit is Exit.waiting]
    undecided = sum(1 for leg in waiting if (leg.wait(now) or 0.0) <= threshold)
    counted = len(legs) - len(short) - undecided
    return QueueInterval(
        queue=queue,
        start=span[0],
        end=span[1],
        offered=len(legs),
        answered=len(answered),
        abandoned=len(abandoned),
        short_abandoned=len(short),
        overflowed_out=sum(1 for leg in legs if leg.exit is Exit.overflowed),
        waiting=len(waiting),
        answered_in_time=in_time,
        service_level=100.0 * in_time / counted if counted else None,
        asa=_mean(waits),
        aht=_mean(handle_times),
        longest_wait=max((w for leg in legs if (w := leg.wait(now)) is not None), default=0.0),
    )


def queue_metrics(
    history: History,
    since: datetime,
    until: datetime,
    *,
    thresholds: Mapping[str, float],
    bucket: timedelta = QUARTER,
    now: datetime | None = None,
    short_abandon: float = SHORT_ABANDON,
) -> list[QueueInterval]:
    """Figures per queue and interval, by queue then time; every queue in ``thresholds`` (queue ->
    service-level seconds; others default to 20) or seen in the rows gets every interval."""
    spans = intervals(since, until, bucket)
    grouped: dict[tuple[str, int], list[Leg]] = defaultdict(list)
    for leg in queue_legs(history.calls, history.events):
        index = _index(leg.joined, spans, bucket)
        if index is not None:
            grouped[(leg.queue, index)].append(leg)
    ends, wraps = _call_ends(history), _wrap_ups(history.agent_events)
    queues = sorted(set(thresholds) | {queue for queue, _ in grouped})
    figures = []
    for queue in queues:
        threshold = thresholds.get(queue, DEFAULT_SERVICE_LEVEL)
        for index, span in enumerate(spans):
            legs = grouped.get((queue, index), [])
            handled = _handle_times((leg for leg in legs if leg.exit is Exit.answered), ends, wraps)
            figures.append(_queue_interval(queue, span, legs, threshold, short_abandon, now, handled))
    return figures


# -- agents ------------------------------------------------------------------------------------


def _by_agent(agent_events: Iterable[AgentEvent]) -> dict[str, list[AgentEvent]]:
    timelines: dict[str, list[AgentEvent]] = defaultdict(list)
    for event in agent_events:
        timelines[event.agent_id].append(event)
    return {agent: sorted(timeline, key=_order) for agent, timeline in timelines.items()}


def presence_segments(
    timeline: Sequence[AgentEvent], since: datetime, stop: datetime
) -> list[tuple[str, str, datetime, datetime]]:
    """(state, reason, start, end) of one agent's sorted events, clipped to [since, stop): each
    state lasts until the next change, the last one until ``stop``."""
    segments = []
    for event, following in zip(timeline, [*timeline[1:], None], strict=True):
        start = max(event.at, since)
        end = min(following.at if following is not None else stop, stop)
        if start < end:
            segments.append((event.after, event.reason, start, end))
    return segments


def agent_metrics(
    history: History,
    since: datetime,
    until: datetime,
    *,
    bucket: timedelta = QUARTER,
    now: datetime | None = None,
) -> list[AgentInterval]:
    """Figures per agent and interval, by agent then time. Answers and missed offers count when
    they happened (``agent_connected``, ``agent_no_answer``); time counts up to ``now`` at most."""
    spans = intervals(since, until, bucket)
    stop = min(until, now) if now is not None else until
    seconds: dict[tuple[str, int], dict[tuple[str, str], float]] = defaultdict(lambda: defaultdict(float))
    timelines = _by_agent(history.agent_events)
    for agent, timeline in timelines.items():
        for state, reason, start, end in presence_segments(timeline, since, stop):
            for index, part in _spread(start, end, spans, bucket):
                seconds[(agent, index)][(state, reason if state == Presence.paused else "")] += part
    counts: dict[tuple[str, int, str], int] = defaultdict(int)
    for event in history.events:
        who, at = event.data.get("agent"), _index(event.at, spans, bucket)
        if event.kind in ("agent_connected", "agent_no_answer") and isinstance(who, str) and at is not None:
            counts[(who, at, event.kind)] += 1
    agents = sorted(set(timelines) | {who for who, _, _ in counts})
    return [
        _agent_interval(
            agent,
            span,
            seconds.get((agent, index), {}),
            counts[(agent, index, "agent_connected")],
            counts[(agent, index, "agent_no_answer")],
        )
        for agent in agents
        for index, span in enumerate(spans)
    ]


def _agent_interval(
    agent: str,
    span: tuple[datetime, datetime],
    spent: Mapping[tuple[str, str], float],
    answered: int,
    missed: int,
) -> AgentInterval:
    def of(state: Presence) -> float:
        return sum(value for (s, _), value in spent.items() if s == state)

    return AgentInterval(
        agent=agent,
        start=span[0],
        end=span[1],
        answered=answered,
        missed=missed,
        talk=of(Presence.on_call),
        wrap_up=of(Presence.wrap_up),
        ringing=of(Presence.reserved),
        available=of(Presence.available),
        paused={reason: value for (s, reason), value in sorted(spent.items()) if s == Presence.paused},
        logged_in=sum(value for (s, _), value in spent.items() if s != Presence.offline),
    )
