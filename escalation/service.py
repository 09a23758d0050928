"""Escalation policies as a state machine, free of I/O and of the wall clock.

An incident is paged level by level until someone acknowledges it, in the manner of PagerDuty
and Opsgenie escalation policies. ``step`` is asked "what is due now?" and answers with the new
state, what to do, and when to ask again; the flow stores the state (every time in it is
absolute, so a restart carries on where the last run stopped) and carries the actions out.

* A level is paged ``delay`` seconds after it is reached; if nobody acknowledges within its
  ``ack_timeout``, the next level is reached. After the last level the policy starts again from
  the first, ``repeat`` more times; after that the last level is paged again every ack timeout,
  marked exhausted: an urgent case is never left without someone being called.
* A target that passes ("press 2") moves the incident to the next level at once.
* Acknowledged is not resolved: an acknowledgement holds for ``ack_expiry`` seconds; if the
  incident is still not resolved then, the level where it stood is paged again.
* After a pause (a restart), everything that fell due meanwhile is done in order, and each level
  reached is paged: no level is skipped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from escalation.channels import ChannelKind
from escalation.models import Severity, Status

__all__ = [
    "Escalated",
    "Escalation",
    "Level",
    "PageLevel",
    "Policy",
    "Severity",
    "Status",
    "acknowledge",
    "choose_policy",
    "open_escalation",
    "pass_on",
    "resolve",
    "step",
]


@dataclass(frozen=True, slots=True)
class Level:
    targets: tuple[str, ...]
    delay: float = 0.0  # seconds after the level is reached
    ack_timeout: float = 60.0  # seconds after paging before the next level
    channels: tuple[ChannelKind, ...] | None = None  # None: every channel each target has
    # Added to ``targets`` when the incident's province matches (a province's duty desks).
    by_province: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def targets_for(self, province: str | None) -> tuple[str, ...]:
        extra = next((t for p, t in self.by_province if p == province), ())
        return tuple(dict.fromkeys((*extra, *self.targets)))


@dataclass(frozen=True, slots=True)
class Policy:
    id: str
    levels: tuple[Level, ...]
    categories: frozenset[str] = frozenset({"*"})
    min_severity: Severity = Severity.low
    repeat: int = 1  # more loops through every level after the first
    ack_expiry: float = 1800.0  # seconds an acknowledgement holds without the incident resolved

    def applies(self, category: str, severity: Severity) -> bool:
        wanted = "*" in self.categories or category in self.categories
        return wanted and severity.rank >= self.min_severity.rank


def choose_policy(policies: tuple[Policy, ...], category: str, severity: Severity) -> Policy:
    """The first policy (in file order) for the category and severity; the last one catches all
    (the configuration guarantees a catch-all)."""
    return next((p for p in policies if p.applies(category, severity)), policies[-1])


@dataclass(frozen=True, slots=True)
class Escalation:
    """Where an incident's escalation stands; stored on the incident row."""

    status: Status
    level: int
    loop: int
    round: int  # paging rounds so far (a round: one level paged once)
    level_since: datetime  # when the current level was reached (its delay counts from here)
    paged_at: datetime | None  # when it was paged (its ack timeout counts from here)
    acked_at: datetime | None = None
    exhausted: bool = False


@dataclass(frozen=True, slots=True)
class PageLevel:
    """Page every target of ``level`` (round ``round``: part of every page's key)."""

    level: int
    loop: int
    round: int


@dataclass(frozen=True, slots=True)
class Escalated:
    from_level: int
    to_level: int
    loop: int
    reason: str  # timeout | passed | exhausted | ack_expired


Action = PageLevel | Escalated


def open_escalation(now: datetime) -> Escalation:
    return Escalation(Status.triggered, level=0, loop=0, round=0, level_since=now, paged_at=None)


def step(
    policy: Policy, state: Escalation, now: datetime
) -> tuple[Escalation, list[Action], datetime | None]:
    """Everything due by ``now``: the new state, the actions in order, and when to ask again
    (None: nothing more will fall due by itself)."""
    actions: list[Action] = []
    for _ in range(10_000):  # bounded: a policy cannot fall due forever within one call
        if state.status is Status.resolved:
            return state, actions, None
        if state.status is Status.acknowledged:
            assert state.acked_at is not None
            expiry = state.acked_at + _seconds(policy.ack_expiry)
            if now < expiry:
                return state, actions, expiry
            actions.append(Escalated(state.level, state.level, state.loop, "ack_expired"))
            # The level where it stood is paged again at once (its delay was served already).
            state = replace(state, status=Status.triggered, acked_at=None, level_since=expiry)
            state = _page(state, actions, now)
            continue
        level = policy.levels[state.level]
        if state.paged_at is None:
            due = state.level_since + _seconds(level.delay)
            if now < due:
                return state, actions, due
            state = _page(state, actions, now)
            continue
        timeout = state.paged_at + _seconds(level.ack_timeout)
        if now < timeout:
            return state, actions, timeout
        state = _next_level(policy, state, timeout, actions, "timeout")
    raise RuntimeError(f"policy {policy.id} keeps falling due: check its timings")


def acknowledge(state: Escalation, now: datetime) -> Escalation:
    """Someone has it: paging stops until the acknowledgement expires (or it is resolved)."""
    if state.status is not Status.triggered:
        return state
    return replace(state, status=Status.acknowledged, acked_at=now)


def pass_on(policy: Policy, state: Escalation, now: datetime) -> tuple[Escalation, list[Action]]:
    """A target passes the incident on: the next level is reached now."""
    if state.status is not Status.triggered:
        return state, []
    actions: list[Action] = []
    return _next_level(policy, state, now, actions, "passed"), actions


def resolve(state: Escalation) -> Escalation:
    return replace(state, status=Status.resolved)


def _page(state: Escalation, actions: list[Action], now: datetime) -> Escalation:
    # Paged now, even if it fell due while we were down: its ack timeout counts from the page.
    state = replace(state, paged_at=now, round=state.round + 1)
    actions.append(PageLevel(state.level, state.loop, state.round))
    return state


def _next_level(
    policy: Policy, state: Escalation, at: datetime, actions: list[Action], reason: str
) -> Escalation:
    last = len(policy.levels) - 1
    if state.level < last:
        moved = replace(state, level=state.level + 1)
    elif state.loop < policy.repeat:
        moved = replace(state, level=0, loop=state.loop + 1)
    else:  # every loop done: the last level again, and again, until someone answers
        moved = replace(state, exhausted=True)
        reason = "exhausted" if reason == "timeout" else reason
    actions.append(Escalated(state.level, moved.level, moved.loop, reason))
    return replace(moved, level_since=at, paged_at=None)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
