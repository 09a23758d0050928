"""What the queue flow knows about calls in progress, in memory, and how to find it.

Every channel the flow follows is filed under its role when the flow creates or adopts it (an agent
leg, a supervisor's leg, a snoop, a call-back leg, a caller), so an event is routed by looking its
channel up here, never by the shape of its id. The whole of it is rebuilt from Asterisk and the
store after a restart (see ``agents.resync``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AgentSeat:
    """One configured agent: their phone and what they can take."""

    id: str
    name: str
    queues: frozenset[str]  # empty: every queue
    languages: frozenset[str]
    skills: dict[str, int]
    login_at_start: bool = True  # a static member; otherwise the agent logs in through the API


@dataclass(slots=True)
class Caller:
    call_id: str
    channel_id: str  # empty while they wait for a call back without a line
    queue: str
    caller_name: str = ""
    caller_number: str = ""
    language: str = ""
    urgent: bool = False
    since: float = 0.0  # when the caller first joined a queue (kept across transfers)
    announced_at: float = 0.0  # when the caller last heard their place (or joined)
    callback_offered: bool = False
    callback_id: str = ""  # the caller asked to be called back (their channel may be gone)
    outbound_channel: str = ""  # the call back ringing the caller's number
    playback_id: str = ""  # the announcement playing to them, if any
    hang_up_after: str = ""  # the playback after which their line is hung up (call back confirmed)
    bridge_id: str = ""  # the mixing bridge once connected
    agent_id: str = ""
    agent_channel: str = ""
    failures: int = 0  # our failed attempts to connect them; the fallback after too many


@dataclass(slots=True)
class Ringing:
    """An agent's leg: ringing for an offer, then (answered) the agent's side of the conversation."""

    call_id: str
    agent_id: str
    channel_id: str
    timeout: float
    dialled: bool = False
    answered: bool = False
    missed: bool = False


@dataclass(slots=True)
class Spy:
    """A supervisor's phone listening to, whispering into or barging in on a call."""

    call_id: str
    mode: str
    phone: str  # the agent id whose phone rings for the supervisor
    channel_id: str
    by: str = ""  # the signed-in user who asked for it
    snoop_id: str = ""
    bridge_id: str = ""
    answered: bool = False


class Live:
    """The registry: callers by call and by channel, and every other leg by its channel."""

    def __init__(self) -> None:
        self.callers: dict[str, Caller] = {}  # call id -> caller (with or without a line)
        self.lines: dict[str, Caller] = {}  # caller's channel id -> caller
        self.agent_legs: dict[str, Ringing] = {}  # agent channel id -> the offer or conversation
        self.spies: dict[str, Spy] = {}  # supervisor's channel id -> spy
        self.snoops: dict[str, Spy] = {}  # snoop channel id -> spy
        self.call_backs: dict[str, Caller] = {}  # outbound call-back channel id -> caller
        self.announcing: dict[str, tuple[str, list[str]]] = {}  # playback id -> call id, prompts
        self.holding: dict[str, str] = {}  # queue -> holding bridge id

    # -- callers -------------------------------------------------------------------------------

    def add(self, caller: Caller) -> None:
        self.callers[caller.call_id] = caller
        if caller.channel_id:
            self.lines[caller.channel_id] = caller

    def set_line(self, caller: Caller, channel_id: str) -> None:
        """The caller's line changed: gone (empty) while waiting for a call back, or a new one."""
        if caller.channel_id:
            self.lines.pop(caller.channel_id, None)
        caller.channel_id = channel_id
        if channel_id:
            self.lines[channel_id] = caller

    def forget(self, caller: Caller) -> None:
        if self.callers.get(caller.call_id) is caller:
            del self.callers[caller.call_id]
        if caller.channel_id and self.lines.get(caller.channel_id) is caller:
            del self.lines[caller.channel_id]
        for playback_id in [p for p, (c, _) in self.announcing.items() if c == caller.call_id]:
            del self.announcing[playback_id]

    def caller(self, call_id: str) -> Caller | None:
        return self.callers.get(call_id)

    def talking_with(self, agent_id: str) -> Caller | None:
        return next((c for c in self.callers.values() if c.agent_id == agent_id and c.bridge_id), None)

    def legs_of(self, call_id: str, agent_id: str | None = None) -> list[Ringing]:
        return [
            r
            for r in self.agent_legs.values()
            if r.call_id == call_id and (agent_id is None or r.agent_id == agent_id)
        ]

    def spies_on(self, call_id: str) -> list[Spy]:
        return [s for s in self.spies.values() if s.call_id == call_id]

    def followed(self) -> set[str]:
        """Every channel id the flow follows (callers' lines excluded)."""
        return set(self.agent_legs) | set(self.spies) | set(self.snoops) | set(self.call_backs)
