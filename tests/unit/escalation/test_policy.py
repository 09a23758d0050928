"""Escalation policies on a hand-set clock: delays, acknowledgement timeouts, loops, passing on,
acknowledged versus resolved, and catching up after a pause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from escalation.models import Severity, Status
from escalation.service import (
    Escalated,
    Escalation,
    Level,
    PageLevel,
    Policy,
    acknowledge,
    choose_policy,
    open_escalation,
    pass_on,
    resolve,
    step,
)

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # 3 a.m.: nobody is watching but the hotline


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


POLICY = Policy(
    "violence",
    levels=(
        Level(("police_desk",), delay=0, ack_timeout=60),
        Level(("gendarmerie_desk", "emergency_112"), delay=30, ack_timeout=60),
    ),
    repeat=1,
    ack_expiry=600,
)


def test_each_level_is_paged_after_its_delay_and_left_after_its_ack_timeout() -> None:
    state, actions, next_at = step(POLICY, open_escalation(T0), T0)
    assert (actions, next_at) == ([PageLevel(0, 0, 1)], at(60))
    same, actions, next_at = step(POLICY, state, at(59.9))  # not yet: nothing, same time to ask
    assert (same, actions, next_at) == (state, [], at(60))
    state, actions, next_at = step(POLICY, state, at(60))
    assert (actions, next_at) == ([Escalated(0, 1, 0, "timeout")], at(90))  # level 1 waits 30 s
    state, actions, next_at = step(POLICY, state, at(90))
    assert (actions, next_at) == ([PageLevel(1, 0, 2)], at(150))
    assert (state.level, state.loop, state.round, state.paged_at) == (1, 0, 2, at(90))


def test_the_policy_loops_then_keeps_paging_the_last_level_for_ever() -> None:
    state = open_escalation(T0)
    seen: list[object] = []
    now = T0
    for _ in range(12):
        state, actions, next_at = step(POLICY, state, now)
        seen += actions
        assert next_at is not None
        now = next_at
    pages = [(a.level, a.loop) for a in seen if isinstance(a, PageLevel)]
    assert pages[:4] == [(0, 0), (1, 0), (0, 1), (1, 1)]  # one repeat of the whole policy
    assert set(pages[4:]) == {(1, 1)} and len(pages[4:]) >= 2  # then the last level, again and again
    moves = [a.reason for a in seen if isinstance(a, Escalated)]
    assert moves[:3] == ["timeout"] * 3 and set(moves[3:]) == {"exhausted"}
    assert state.exhausted and state.status is Status.triggered
    rounds = [a.round for a in seen if isinstance(a, PageLevel)]
    assert rounds == list(range(1, len(rounds) + 1))  # every round has its own page keys


def test_acknowledged_stops_paging_until_it_expires_unresolved_and_resolved_stops_for_good() -> None:
    state, _, _ = step(POLICY, open_escalation(T0), T0)
    state = acknowledge(state, at(20))
    state, actions, next_at = step(POLICY, state, at(100))  # past the ack timeout: acknowledged holds
    assert (actions, next_at, state.status) == ([], at(620), Status.acknowledged)
    state, actions, next_at = step(POLICY, state, at(620))
    assert actions == [Escalated(0, 0, 0, "ack_expired"), PageLevel(0, 0, 2)]  # the same level again
    assert (state.status, next_at) == (Status.triggered, at(680))
    state = resolve(acknowledge(state, at(630)))
    state, actions, next_at = step(POLICY, state, at(10_000))
    assert (actions, next_at, state.status) == ([], None, Status.resolved)
    assert acknowledge(state, at(10_001)) == state  # a late press changes nothing


def test_a_target_that_passes_moves_the_incident_on_at_once() -> None:
    state, _, _ = step(POLICY, open_escalation(T0), T0)
    state, actions = pass_on(POLICY, state, at(5))
    assert actions == [Escalated(0, 1, 0, "passed")]
    state, actions, next_at = step(POLICY, state, at(5))
    assert (actions, next_at) == ([], at(35))  # the next level's own delay still applies
    state, actions, _ = step(POLICY, state, at(35))
    assert actions == [PageLevel(1, 0, 2)]
    assert pass_on(POLICY, acknowledge(state, at(40)), at(41))[1] == []  # acknowledged: nothing to pass


def test_after_a_pause_everything_due_is_done_in_order_and_no_level_is_skipped() -> None:
    state, _, _ = step(POLICY, open_escalation(T0), T0)
    stored = Escalation(**{f: getattr(state, f) for f in Escalation.__dataclass_fields__})  # as read back
    state, actions, next_at = step(POLICY, stored, at(200))  # the process was down for 200 s
    assert actions == [Escalated(0, 1, 0, "timeout"), PageLevel(1, 0, 2)]
    assert state.paged_at == at(200) and next_at == at(260)  # the ack timeout counts from the page


def test_the_first_policy_for_the_category_and_severity_wins_and_the_last_catches_all() -> None:
    child = Policy("child", (Level(("child_unit",)),), categories=frozenset({"child_abuse"}))
    grave = Policy("grave", (Level(("police_desk",)),), min_severity=Severity.high)
    anything = Policy("default", (Level(("supervisor",)),))
    policies = (child, grave, anything)
    assert choose_policy(policies, "child_abuse", Severity.low) is child
    assert choose_policy(policies, "violence", Severity.critical) is grave
    assert choose_policy(policies, "violence", Severity.medium) is anything


def test_a_province_adds_its_own_desks_first() -> None:
    level = Level(("police_national",), by_province=(("İstanbul", ("police_istanbul",)),))
    assert level.targets_for("İstanbul") == ("police_istanbul", "police_national")
    assert level.targets_for("Ankara") == level.targets_for(None) == ("police_national",)
