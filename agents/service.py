"""Agent presence and call routing decisions, free of I/O and of the wall clock.

The router is asked "who takes which waiting call now?" and answers with offers; the ARI side
rings agents and reports back (answered, no answer, caller gone, call ended). Every rule of
app_queue, mod_callcenter tiers and TaskRouter's widening targets that the hotline relies on is
here, so it is tested with a fake clock and no Asterisk:

* presence: offline -> available -> reserved (ringing) -> on_call -> wrap_up -> available, and
  paused(reason) from any idle state; a pause or logout asked for during a call waits for its end;
* an agent who does not answer is released at once (never stuck "reserved"), penalised for the
  next offers, and paused after ``max_no_answer`` misses in a row;
* wrap-up ends by its timer or by the agent, never early because of an unrelated event;
* the best waiting call goes first: urgent, then queue priority, then longest wait;
* the eligible pool widens while a caller waits (proficiency thresholds relax by tier);
* strategies: longest idle, round robin (with memory), fewest calls, ring all, skills weighted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Presence(StrEnum):
    offline = "offline"
    available = "available"
    reserved = "reserved"  # an offer is ringing the agent's phone
    on_call = "on_call"
    wrap_up = "wrap_up"
    paused = "paused"


class Strategy(StrEnum):
    longest_idle = "longest_idle"
    round_robin = "round_robin"
    fewest_calls = "fewest_calls"
    ring_all = "ring_all"
    skills_weighted = "skills_weighted"


class PresenceError(Exception):
    """A presence change that is not allowed now (e.g. 'available' while on a call)."""


@dataclass(frozen=True, slots=True)
class Tier:
    """From ``after`` seconds of waiting on, agents with at least ``min_proficiency`` are eligible."""

    after: float
    min_proficiency: int  # 0: anyone serving the queue


@dataclass(frozen=True, slots=True)
class QueueRules:
    id: str
    strategy: Strategy = Strategy.longest_idle
    priority: int = 0  # higher first
    skill: str | None = None  # the skill a call in this queue needs; None: any agent of the queue
    language_required: bool = True  # the agent must speak the caller's language ...
    language_wait: float = 60.0  # ... for this long; then anyone, rather than nobody
    tiers: tuple[Tier, ...] = (Tier(0, 0),)
    wrap_up: float = 30.0
    ring_timeout: float = 20.0
    max_no_answer: int = 3
    no_answer_penalty: float = 60.0  # seconds an agent who missed an offer is tried last


@dataclass(slots=True)
class Agent:
    id: str
    queues: frozenset[str]
    languages: frozenset[str]
    skills: dict[str, int] = field(default_factory=dict)  # skill -> proficiency 1..5
    presence: Presence = Presence.offline
    reason: str = ""
    since: float = 0.0  # when the presence last changed
    idle_since: float = 0.0  # when the agent last became available (longest idle)
    calls: int = 0
    missed_in_a_row: int = 0
    penalised_until: float = 0.0
    pending: Presence | None = None  # paused/offline asked for during a call
    pending_reason: str = ""
    pending_by: str = ""
    call_id: str | None = None
    call_queue: str | None = None  # the queue of the call being talked, for its wrap-up time


@dataclass(slots=True)
class WaitingCall:
    call_id: str
    queue: str
    language: str
    urgent: bool
    since: float  # when the call joined the queue
    priority_boost: int = 0  # a supervisor can move a caller up
    tried: set[str] = field(default_factory=set)  # agents who missed this call
    offered_to: frozenset[str] = frozenset()
    only_agent: str | None = None  # transferred to this agent: nobody else until they miss it ...
    only_until: float = float("inf")  # ... or until then (then anyone in the queue)


@dataclass(frozen=True, slots=True)
class Offer:
    call_id: str
    agent_ids: tuple[str, ...]  # several for ring-all; the first to answer wins
    timeout: float


@dataclass(frozen=True, slots=True)
class Transition:
    agent_id: str
    before: Presence
    after: Presence
    reason: str
    at: float
    call_id: str | None = None
    by: str = ""  # who asked for it, when it was not the agent (a supervisor's user name)


class Router:
    def __init__(self, queues: Iterable[QueueRules]) -> None:
        self.queues = {q.id: q for q in queues}
        self.agents: dict[str, Agent] = {}
        self.waiting: dict[str, WaitingCall] = {}
        self.transitions: list[Transition] = []  # every presence change, for reports
        self._last_offered: dict[str, str] = {}  # queue -> agent id (round robin memory)

    # -- presence ------------------------------------------------------------------------------

    def add_agent(self, agent: Agent) -> None:
        self.agents[agent.id] = agent

    def _set(
        self,
        agent: Agent,
        presence: Presence,
        now: float,
        reason: str = "",
        call_id: str | None = None,
        by: str = "",
    ) -> None:
        self.transitions.append(Transition(agent.id, agent.presence, presence, reason, now, call_id, by))
        agent.presence, agent.reason, agent.since = presence, reason, now
        if presence is Presence.available:
            agent.idle_since = now

    def login(self, agent_id: str, now: float, by: str = "") -> None:
        agent = self.agents[agent_id]
        if agent.presence is not Presence.offline:
            raise PresenceError(f"agent {agent_id} is already logged in ({agent.presence})")
        self._set(agent, Presence.available, now, "login", by=by)

    def pause(self, agent_id: str, reason: str, now: float, by: str = "") -> None:
        self._request(self.agents[agent_id], Presence.paused, reason, now, by)

    def logout(self, agent_id: str, now: float, by: str = "") -> None:
        self._request(self.agents[agent_id], Presence.offline, "logout", now, by)

    def _request(self, agent: Agent, presence: Presence, reason: str, now: float, by: str) -> None:
        if agent.presence in (Presence.reserved, Presence.on_call, Presence.wrap_up):
            # Honoured when the call is done.
            agent.pending, agent.pending_reason, agent.pending_by = presence, reason, by
            return
        self._set(agent, presence, now, reason, by=by)

    def resume(self, agent_id: str, now: float, by: str = "") -> None:
        agent = self.agents[agent_id]
        if agent.presence is not Presence.paused:
            raise PresenceError(f"agent {agent_id} is not paused ({agent.presence})")
        agent.missed_in_a_row = 0
        self._set(agent, Presence.available, now, "resume", by=by)

    def device_unreachable(self, agent_id: str, now: float) -> None:
        """The phone is unregistered or unreachable: no offers until it is back."""
        agent = self.agents[agent_id]
        if agent.presence is Presence.available:
            self._set(agent, Presence.paused, now, "device_unreachable")

    def device_reachable(self, agent_id: str, now: float) -> None:
        """The phone is back: an agent paused only because of it is available again."""
        agent = self.agents[agent_id]
        if agent.presence is Presence.paused and agent.reason == "device_unreachable":
            self._set(agent, Presence.available, now, "device_reachable")

    def saved(self, count: int) -> None:
        """The first ``count`` transitions are stored: forget them (memory stays flat). Until then
        they stay, so a failed commit is retried with the next one rather than lost."""
        del self.transitions[:count]

    def restore(
        self,
        agent_id: str,
        presence: Presence,
        reason: str,
        pending: Presence | None,
        pending_reason: str,
        now: float,
    ) -> None:
        """Bring an agent back as a previous run left them. An agent who was ringing, talking or in
        wrap-up comes back available (the resync re-adopts a conversation still going on), keeping
        the pause or logout they had asked for, to be honoured when they are idle (``settle``)."""
        agent = self.agents[agent_id]
        if presence is Presence.offline and pending is None:
            return
        if presence is Presence.paused and reason != "device_unreachable":
            self._set(agent, Presence.paused, now, reason)
        else:
            self._set(agent, Presence.available, now, "restored")
        agent.pending, agent.pending_reason = pending, pending_reason

    def settle(self, agent_id: str, now: float) -> None:
        """An idle agent with a pause or logout still pending (from before a restart) gets it now."""
        agent = self.agents[agent_id]
        if agent.pending is not None and agent.presence in (Presence.available, Presence.paused):
            self._after_idle(agent, now, "")

    def release(self, agent_id: str, call_id: str, now: float) -> None:
        """An agent answered but we could not connect them: idle again at once, no wrap-up, no
        penalty (the failure was ours, not theirs)."""
        agent = self.agents[agent_id]
        if agent.call_id != call_id or agent.presence not in (Presence.reserved, Presence.on_call):
            return
        agent.call_id = agent.call_queue = None
        self._after_idle(agent, now, "connect_failed")

    # -- calls -----------------------------------------------------------------------------------

    def enqueue(self, call: WaitingCall) -> None:
        if call.queue not in self.queues:
            raise KeyError(f"no queue {call.queue!r}")
        self.waiting[call.call_id] = call

    def move(self, call_id: str, queue: str) -> bool:
        """Move a waiting call (not while phones ring for it) to another queue, keeping its wait."""
        call = self.waiting.get(call_id)
        if call is None or call.offered_to or queue not in self.queues:
            return False
        call.queue = queue
        call.tried.clear()
        return True

    def reprioritise(self, call_id: str, boost: int) -> bool:
        """A supervisor moves a waiting caller up (or down) among the calls of equal urgency."""
        call = self.waiting.get(call_id)
        if call is None:
            return False
        call.priority_boost = boost
        return True

    def abandon(self, call_id: str, now: float) -> list[str]:
        """The caller hung up while waiting (maybe while agents rang): return agents to stop ringing."""
        call = self.waiting.pop(call_id, None)
        if call is None:
            return []
        released = []
        for agent_id in call.offered_to:
            agent = self.agents[agent_id]
            if agent.presence is Presence.reserved and agent.call_id == call_id:
                agent.call_id = None
                self._after_idle(agent, now, "caller_abandoned")
                released.append(agent_id)
        return released

    def answered(self, call_id: str, agent_id: str, now: float) -> list[str]:
        """An agent picked up: the call leaves the queue; return other agents still ringing for it."""
        call = self.waiting.pop(call_id)
        agent = self.agents[agent_id]
        agent.missed_in_a_row = 0
        agent.calls += 1
        agent.call_queue = call.queue
        self._set(agent, Presence.on_call, now, "answered", call_id)
        others = []
        for other_id in call.offered_to - {agent_id}:
            other = self.agents[other_id]
            if other.presence is Presence.reserved and other.call_id == call_id:
                other.call_id = None
                self._after_idle(other, now, "answered_elsewhere")
                others.append(other_id)
        return others

    def adopt(self, agent_id: str, call_id: str, queue: str, now: float) -> None:
        """A conversation a previous run connected is still going on: the agent is on that call.
        A pause or logout they had asked for waits for its end, as for any call."""
        agent = self.agents[agent_id]
        if agent.presence is Presence.offline or (
            agent.presence is Presence.paused and agent.reason != "device_unreachable"
        ):
            agent.pending = agent.presence
            agent.pending_reason = "logout" if agent.presence is Presence.offline else agent.reason
        agent.call_id, agent.call_queue = call_id, queue
        self._set(agent, Presence.on_call, now, "readopted", call_id)

    def no_answer(self, call_id: str, agent_id: str, now: float) -> None:
        """The offer rang out or was rejected: release the agent, penalise, maybe auto-pause."""
        agent = self.agents[agent_id]
        if agent.presence is not Presence.reserved or agent.call_id != call_id:
            return  # a late report for an offer already settled
        agent.call_id = None
        agent.missed_in_a_row += 1
        rules = self.queues[self.waiting[call_id].queue] if call_id in self.waiting else None
        if rules is not None:
            call = self.waiting[call_id]
            agent.penalised_until = now + rules.no_answer_penalty
            call.tried.add(agent_id)
            call.offered_to -= {agent_id}
            call.only_agent = None  # a transfer to an agent who did not answer goes to the queue
        limit = rules.max_no_answer if rules else 3
        if agent.missed_in_a_row >= limit:
            self._set(agent, Presence.paused, now, "no_answer")
            return
        self._after_idle(agent, now, "no_answer")

    def call_ended(self, agent_id: str, now: float) -> float:
        """The agent's call is over: wrap-up starts; return how long it lasts."""
        agent = self.agents[agent_id]
        wrap = self.queues[agent.call_queue].wrap_up if agent.call_queue in self.queues else 0.0
        call_id, agent.call_id, agent.call_queue = agent.call_id, None, None
        self._set(agent, Presence.wrap_up, now, "call_ended", call_id)
        return wrap

    def wrap_up_done(self, agent_id: str, now: float) -> None:
        """Wrap-up time is over, or the agent ended it; only then can the next call come."""
        agent = self.agents[agent_id]
        if agent.presence is Presence.wrap_up:
            self._after_idle(agent, now, "wrap_up_done")

    def _after_idle(self, agent: Agent, now: float, reason: str) -> None:
        if agent.pending is not None:
            presence, why, by = agent.pending, agent.pending_reason, agent.pending_by
            agent.pending, agent.pending_reason, agent.pending_by = None, "", ""
            self._set(agent, presence, now, why, by=by)
        else:
            self._set(agent, Presence.available, now, reason)

    # -- routing ---------------------------------------------------------------------------------

    def _order(self, call: WaitingCall, now: float) -> tuple[int, int, float]:
        # Python sorts ascending: urgent first, then higher priority, then the longest wait.
        rules = self.queues[call.queue]
        return (0 if call.urgent else 1, -(rules.priority + call.priority_boost), call.since)

    def eligible(self, call: WaitingCall, now: float) -> list[Agent]:
        rules = self.queues[call.queue]
        # Tiers relax as the wait grows: the lowest threshold reached so far applies.
        waited = now - call.since
        reached = [t.min_proficiency for t in rules.tiers if waited >= t.after]
        threshold = min(reached) if reached else rules.tiers[0].min_proficiency
        language_matters = rules.language_required and waited < rules.language_wait
        if call.only_agent is not None:
            wanted = self.agents.get(call.only_agent)
            gone = wanted is None or wanted.presence in (Presence.offline, Presence.paused)
            if not gone and now < call.only_until:
                return [wanted] if wanted is not None and wanted.presence is Presence.available else []
            # The colleague logged out, paused or did not free up in time: the queue takes the call.
            call.only_agent = None
        found = []
        for agent in self.agents.values():
            if agent.presence is not Presence.available or call.queue not in agent.queues:
                continue
            if language_matters and call.language not in agent.languages:
                continue
            if threshold and rules.skill and agent.skills.get(rules.skill, 0) < threshold:
                continue
            found.append(agent)
        return found

    def _rank(self, call: WaitingCall, agents: Sequence[Agent], now: float) -> list[Agent]:
        rules = self.queues[call.queue]

        def penalty(agent: Agent) -> tuple[int, int]:
            # Agents who missed this call, or any call lately, come last.
            return (agent.id in call.tried, agent.penalised_until > now)

        match rules.strategy:
            case Strategy.longest_idle | Strategy.ring_all:
                ranked = sorted(agents, key=lambda a: (*penalty(a), a.idle_since, a.id))
            case Strategy.fewest_calls:
                ranked = sorted(agents, key=lambda a: (*penalty(a), a.calls, a.idle_since, a.id))
            case Strategy.skills_weighted:
                skill = rules.skill or ""
                ranked = sorted(
                    agents, key=lambda a: (*penalty(a), -a.skills.get(skill, 0), a.idle_since, a.id)
                )
            case Strategy.round_robin:
                ordered = sorted(agents, key=lambda a: a.id)
                last = self._last_offered.get(call.queue)
                after = [a for a in ordered if last is None or a.id > last]
                before = [a for a in ordered if last is not None and a.id <= last]
                ranked = sorted(after + before, key=penalty)  # stable: keeps the rotation order
        return ranked

    def offers(self, now: float) -> list[Offer]:
        """Match waiting calls with available agents, best call first; agents become reserved."""
        made = []
        for call in sorted(self.waiting.values(), key=lambda c: self._order(c, now)):
            if call.offered_to:
                continue  # already ringing someone
            ranked = self._rank(call, self.eligible(call, now), now)
            if not ranked:
                continue
            rules = self.queues[call.queue]
            chosen = ranked if rules.strategy is Strategy.ring_all else ranked[:1]
            for agent in chosen:
                agent.call_id = call.call_id
                self._set(agent, Presence.reserved, now, "offer", call.call_id)
            call.offered_to = frozenset(a.id for a in chosen)
            self._last_offered[call.queue] = chosen[0].id
            made.append(Offer(call.call_id, tuple(a.id for a in chosen), rules.ring_timeout))
        return made

    def position(self, call_id: str, now: float) -> int:
        """1-based place of a waiting call among the calls of its queue (for announcements)."""
        call = self.waiting[call_id]
        ahead = [c for c in self.waiting.values() if c.queue == call.queue]
        ahead.sort(key=lambda c: self._order(c, now))
        return [c.call_id for c in ahead].index(call_id) + 1
