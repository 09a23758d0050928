"""Queue and agent figures from stored rows: the counting rules on hand-built timelines, and the
loader on a SQLite store giving the same figures."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agents.config import QueueConfig, load_queues
from agents.metrics import (
    MAX_INTERVALS,
    AgentInterval,
    History,
    QueueInterval,
    agent_metrics,
    intervals,
    load,
    presence_segments,
    queue_metrics,
)
from agents.models import AgentEvent
from hotline import db
from hotline.models import Call, CallEvent

NINE = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TEN = NINE + timedelta(hours=1)
HOUR = timedelta(hours=1)
THRESHOLDS = {"social_assistance": 20.0, "complaints": 20.0, "operator": 20.0, "emergency": 10.0}


def at(minutes: float, seconds: float = 0) -> datetime:
    return NINE + timedelta(minutes=minutes, seconds=seconds)


class Rows:
    """Builds a stored history the way agents.stasis and hotline.calls write it."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.events: list[CallEvent] = []
        self.agent_events: list[AgentEvent] = []

    def call(self, call_id: str, started: datetime) -> None:
        self.calls.append(Call(id=call_id, channel_id=f"chan-{call_id}", started_at=started))
        self.event(call_id, started, "stasis_start")

    def end(self, call_id: str, when: datetime) -> None:
        """CallLog.close: the last thing written about a call."""
        [call] = [c for c in self.calls if c.id == call_id]
        call.ended_at = when
        self.event(call_id, when, "ended")

    def event(self, call_id: str, when: datetime, kind: str, **data: Any) -> None:
        self.events.append(CallEvent(call_id=call_id, at=when, kind=kind, data=data))

    def answered(
        self, call_id: str, queue: str, joined: datetime, wait: float, talk: float, agent: str
    ) -> None:
        connected = joined + timedelta(seconds=wait)
        self.call(call_id, joined - timedelta(seconds=30))
        self.event(call_id, joined, "queued", queue=queue, position=1, urgent=False)
        self.event(call_id, connected - timedelta(seconds=1), "offered", agent=agent)
        self.event(call_id, connected, "agent_connected", agent=agent)
        self.end(call_id, connected + timedelta(seconds=talk))

    def abandoned(self, call_id: str, queue: str, joined: datetime, wait: float) -> None:
        left = joined + timedelta(seconds=wait)
        self.call(call_id, joined - timedelta(seconds=30))
        self.event(call_id, joined, "queued", queue=queue, position=1, urgent=False)
        self.event(call_id, left, "abandoned_in_queue", queue=queue)
        self.end(call_id, left)

    def waiting(self, call_id: str, queue: str, joined: datetime) -> None:
        self.call(call_id, joined - timedelta(seconds=30))
        self.event(call_id, joined, "queued", queue=queue, position=1, urgent=False)

    def agent(
        self, agent: str, when: datetime, before: str, after: str, reason: str = "", call: str = ""
    ) -> None:
        self.agent_events.append(
            AgentEvent(
                agent_id=agent, at=when, before=before, after=after, reason=reason, call_id=call or None
            )
        )

    def history(self) -> History:
        return History(self.calls, self.events, self.agent_events)


def only(figures: Sequence[QueueInterval], queue: str, start: datetime = NINE) -> QueueInterval:
    [found] = [f for f in figures if f.queue == queue and f.start == start]
    return found


def of_agent(figures: Sequence[AgentInterval], agent: str, start: datetime = NINE) -> AgentInterval:
    [found] = [f for f in figures if f.agent == agent and f.start == start]
    return found


def test_intervals_start_at_since_and_the_last_stops_at_until() -> None:
    spans = intervals(NINE, at(40))
    assert spans == [(NINE, at(15)), (at(15), at(30)), (at(30), at(40))]
    with pytest.raises(ValueError, match="timezone-aware"):
        intervals(NINE.replace(tzinfo=None), TEN)
    with pytest.raises(ValueError, match="after since"):
        intervals(TEN, NINE)


def test_a_window_of_too_many_intervals_is_refused_before_any_is_built() -> None:
    minute = timedelta(minutes=1)
    assert len(intervals(NINE, NINE + MAX_INTERVALS * minute, minute)) == MAX_INTERVALS
    with pytest.raises(ValueError, match=f"more than {MAX_INTERVALS} intervals"):
        intervals(datetime(1, 1, 1, tzinfo=UTC), NINE, minute)  # billions of them
    with pytest.raises(ValueError, match=f"more than {MAX_INTERVALS} intervals"):
        agent_metrics(History([], [], []), NINE, NINE + (MAX_INTERVALS + 1) * minute, bucket=minute)


def test_short_abandons_are_left_out_of_the_service_level() -> None:
    rows = Rows()
    rows.answered("a", "social_assistance", at(1), wait=10, talk=60, agent="a1")  # in time
    rows.answered("b", "social_assistance", at(2), wait=30, talk=60, agent="a2")  # late
    rows.abandoned("c", "social_assistance", at(3), wait=5)  # short: within 5 s
    rows.abandoned("d", "social_assistance", at(4), wait=6)  # a real abandon: a miss
    figures = queue_metrics(rows.history(), NINE, TEN, thresholds=THRESHOLDS, bucket=HOUR)
    q = only(figures, "social_assistance")
    assert (q.offered, q.answered, q.abandoned, q.short_abandoned) == (4, 2, 2, 1)
    assert q.answered_in_time == 1
    assert q.service_level == pytest.approx(100 / 3)  # 1 of (4 - 1); 25 if the short one counted
    assert q.asa == pytest.approx(20.0)
    assert q.longest_wait == pytest.approx(30.0)
    # Every configured queue has its row, empty or not.
    assert only(figures, "emergency").offered == 0 and only(figures, "emergency").service_level is None


def test_overflow_counts_where_answered_and_as_overflowed_out_in_the_first_queue() -> None:
    rows = Rows()
    rows.call("x", at(4, 30))
    rows.event("x", at(5), "queued", queue="complaints", position=1, urgent=False)
    rows.event("x", at(15), "overflow", source="complaints", queue="operator")
    rows.event("x", at(15, 10), "agent_connected", agent="a1")
    rows.end("x", at(16))
    figures = queue_metrics(rows.history(), NINE, TEN, thresholds=THRESHOLDS)

    complaints = only(figures, "complaints")
    assert (complaints.offered, complaints.answered, complaints.overflowed_out) == (1, 0, 1)
    assert complaints.longest_wait == pytest.approx(600.0)
    assert complaints.service_level == 0.0  # it left unanswered: a miss there
    # The operator queue sees the caller from the overflow on, in the interval it joined.
    assert only(figures, "operator").offered == 0
    operator = only(figures, "operator", at(15))
    assert (operator.offered, operator.answered, operator.overflowed_out) == (1, 1, 0)
    assert operator.asa == pytest.approx(10.0) and operator.service_level == 100.0
    assert operator.aht == pytest.approx(50.0)  # no wrap-up recorded: talk alone


def test_aht_adds_the_wrap_up_that_followed_and_waits_for_unfinished_handles() -> None:
    rows = Rows()
    rows.answered("a", "emergency", at(1), wait=4, talk=120, agent="a1")
    rows.agent("a1", at(1, 3), "available", "reserved", "offer", "a")
    rows.agent("a1", at(1, 4), "reserved", "on_call", "answered", "a")
    rows.agent("a1", at(3, 4), "on_call", "wrap_up", "call_ended", "a")
    rows.agent("a1", at(3, 34), "wrap_up", "available", "wrap_up_done")
    rows.answered("b", "emergency", at(5), wait=12, talk=60, agent="a2")
    rows.agent("a2", at(5, 12), "reserved", "on_call", "answered", "b")
    rows.agent("a2", at(6, 12), "on_call", "wrap_up", "call_ended", "b")  # still wrapping up
    figures = queue_metrics(rows.history(), NINE, TEN, thresholds=THRESHOLDS, bucket=HOUR)
    q = only(figures, "emergency")
    assert q.aht == pytest.approx(150.0)  # 120 s talk + 30 s wrap-up; b is not done yet
    assert q.asa == pytest.approx(8.0)
    assert q.service_level == 50.0  # 12 s is late for the emergency queue's 10 s


def test_callers_still_waiting_count_in_longest_wait_and_only_once_past_the_threshold() -> None:
    rows = Rows()
    rows.answered("a", "operator", at(45), wait=10, talk=30, agent="a1")
    rows.waiting("b", "operator", at(50))  # 120 s at ``now``: already a miss
    rows.waiting("c", "operator", at(51, 50))  # 10 s: may still be answered in time
    now = at(52)
    q = only(
        queue_metrics(rows.history(), NINE, TEN, thresholds=THRESHOLDS, bucket=HOUR, now=now), "operator"
    )
    assert (q.offered, q.waiting) == (3, 2)
    assert q.longest_wait == pytest.approx(120.0)
    assert q.service_level == 50.0  # 1 of (3 - 1 undecided)
    # Without ``now`` nobody waiting is judged yet, and their wait is unknown.
    later = only(queue_metrics(rows.history(), NINE, TEN, thresholds=THRESHOLDS, bucket=HOUR), "operator")
    assert later.service_level == 100.0 and later.longest_wait == pytest.approx(10.0)


def test_callers_are_counted_in_the_interval_they_joined() -> None:
    rows = Rows()
    rows.answered("early", "operator", at(-1), wait=90, talk=30, agent="a1")  # joined before since
    rows.answered("late", "operator", at(59, 50), wait=40, talk=30, agent="a1")  # answered after until
    figures = queue_metrics(rows.history(), NINE, TEN, thresholds=THRESHOLDS)
    assert [f.offered for f in figures if f.queue == "operator"] == [0, 0, 0, 1]
    assert only(figures, "operator", at(45)).answered == 1


def agent_day(rows: Rows) -> None:
    """Agent a1 from 08:00: a break across 09:00, a call with wrap-up, then a meal break."""
    rows.agent("a1", at(-60), "offline", "available", "login")
    rows.agent("a1", at(-10), "available", "paused", "break")
    rows.agent("a1", at(10), "paused", "available", "resume")
    rows.agent("a1", at(18), "available", "reserved", "offer", "m")
    rows.agent("a1", at(18, 20), "reserved", "available", "no_answer")
    rows.agent("a1", at(20), "available", "reserved", "offer", "x")
    rows.agent("a1", at(20, 5), "reserved", "on_call", "answered", "x")
    rows.agent("a1", at(25), "on_call", "wrap_up", "call_ended", "x")
    rows.agent("a1", at(25, 30), "wrap_up", "available", "wrap_up_done")
    rows.agent("a1", at(40), "available", "paused", "meal")
    rows.call("m", at(17))
    rows.event("m", at(18, 20), "agent_no_answer", agent="a1", status="NOANSWER")
    rows.end("m", at(19))
    rows.call("x", at(19))
    rows.event("x", at(20, 5), "agent_connected", agent="a1")
    rows.end("x", at(25))


def test_agent_time_is_clipped_to_the_window_and_split_by_pause_reason() -> None:
    rows = Rows()
    agent_day(rows)
    a1 = of_agent(agent_metrics(rows.history(), NINE, TEN, bucket=HOUR), "a1")
    assert a1.paused == {"break": 600.0, "meal": 1200.0}  # the break counts from 09:00 only
    assert presence_segments(rows.agent_events, NINE, TEN)[0] == ("paused", "break", NINE, at(10))
    assert (a1.answered, a1.missed) == (1, 1)
    assert (a1.ringing, a1.talk, a1.wrap_up) == (25.0, 295.0, 30.0)
    assert a1.available == pytest.approx(480 + 100 + 870)
    assert a1.logged_in == 3600.0

    # The open pause counts up to ``now``, and quarters split the time where it fell.
    quarters = agent_metrics(rows.history(), NINE, TEN, now=at(50))
    assert of_agent(quarters, "a1").paused == {"break": 600.0}
    assert of_agent(quarters, "a1").available == 300.0
    assert of_agent(quarters, "a1", at(45)).paused == {"meal": 300.0}
    assert of_agent(quarters, "a1", at(45)).logged_in == 300.0


def test_an_agent_with_nothing_before_the_window_counts_from_their_first_change() -> None:
    rows = Rows()
    rows.agent("a2", at(30), "offline", "available", "login")
    rows.agent("a2", at(45), "available", "offline", "logout")
    a2 = of_agent(agent_metrics(rows.history(), NINE, TEN, bucket=HOUR), "a2")
    assert (a2.available, a2.logged_in, a2.paused) == (900.0, 900.0, {})


def test_service_level_thresholds_come_from_the_queue_config() -> None:
    shipped = load_queues(Path("config/queues.toml"))
    thresholds = {queue: config.service_level for queue, config in shipped.queues.items()}
    assert thresholds["emergency"] == 10.0 and thresholds["operator"] == 20.0
    with pytest.raises(ValidationError, match="greater than 0"):
        QueueConfig.model_validate({"label": {"tr": "Acil"}, "service_level": 0.0})


async def test_loaded_rows_give_the_same_figures(tmp_path: Path) -> None:
    def written() -> Rows:
        rows = Rows()
        agent_day(rows)
        rows.abandoned("c", "social_assistance", at(3), wait=5)
        rows.answered("a", "social_assistance", at(1), wait=10, talk=60, agent="a1")
        rows.answered("gone", "operator", at(-30), wait=10, talk=60, agent="a1")  # ended before since
        rows.agent("a1", at(-90), "offline", "offline", "")  # superseded by the login
        rows.agent("a1", at(200), "paused", "available", "resume")  # long after every call
        return rows

    url = f"sqlite:///{tmp_path / 'metrics.db'}"
    await db.upgrade_async(url)
    store = db.Store(url)
    try:
        rows = written()
        async with store.session() as session:
            session.add_all(rows.calls)
            await session.flush()
            session.add_all([*rows.events, *rows.agent_events])
            await session.commit()
        loaded = await load(store, NINE, TEN)
    finally:
        await store.close()

    assert {call.id for call in loaded.calls} == {"m", "x", "c", "a"}
    assert [e.reason for e in loaded.agent_events][:2] == ["break", "resume"]  # the state at since first
    assert at(200) not in {e.at for e in loaded.agent_events}
    expected = written().history()
    for bucket in (HOUR, timedelta(minutes=15)):
        queues = queue_metrics(loaded, NINE, TEN, thresholds=THRESHOLDS, bucket=bucket)
        assert queues == queue_metrics(expected, NINE, TEN, thresholds=THRESHOLDS, bucket=bucket)
        assert agent_metrics(loaded, NINE, TEN, bucket=bucket) == agent_metrics(
            expected, NINE, TEN, bucket=bucket
        )
    q = only(queue_metrics(loaded, NINE, TEN, thresholds=THRESHOLDS, bucket=HOUR), "social_assistance")
    assert (q.offered, q.short_abandoned, q.service_level) == (2, 1, 100.0)
