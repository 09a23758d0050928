"""Typed ARI events, the synthetic connection events, and the dispatch key of each.

``parse_event`` turns one decoded WebSocket message into an :class:`Event`. A type this module
does not model, or a known type whose body does not parse, becomes an :class:`UnknownEvent`:
nothing Asterisk sends is dropped and nothing it sends can crash the reader.

``Event.dispatch_key`` decides ordering (see ``ari.dispatch``): ``"channel:<id>"`` for anything
about one channel (playbacks and recordings included, through their ``target_uri``),
``"bridge:<id>"`` for bridge-only events, and ``GLOBAL_KEY`` for the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .models import (
    Bridge,
    Channel,
    DeviceState,
    Endpoint,
    JsonDict,
    LiveRecording,
    Playback,
)

GLOBAL_KEY = "global"


def _channel_key(channel_id: str) -> str:
    return "channel:" + channel_id


def _target_key(target_uri: str) -> str:
    # target_uri is already "channel:<id>" or "bridge:<id>", the same form as our keys.
    if target_uri.startswith(("channel:", "bridge:")):
        return target_uri
    return GLOBAL_KEY


@dataclass(slots=True, kw_only=True)
class Event:
    """Base of every event. ``raw`` is the decoded JSON exactly as received."""

    type: str
    application: str = ""
    timestamp: str = ""
    asterisk_id: str = ""
    raw: JsonDict = field(default_factory=dict, repr=False, compare=False)

    @property
    def dispatch_key(self) -> str:
        return GLOBAL_KEY


E = TypeVar("E", bound=Event)
_new_object = object.__new__


def _event(cls: type[E], d: JsonDict) -> E:
    """A new ``cls`` with the fields common to all events set from ``d``.

    Each ``from_json`` sets its own fields on it. This skips the dataclass ``__init__`` and its
    keyword arguments, a third of the cost of typing a small event; every field must therefore
    be set here or by the caller (the event tests read every field of every type).
    """
    event = _new_object(cls)
    get = d.get
    event.type = d["type"]
    event.application = get("application") or ""
    event.timestamp = get("timestamp") or ""
    event.asterisk_id = get("asterisk_id") or ""
    event.raw = d
    return event


def _opt_channel(d: JsonDict | None) -> Channel | None:
    return Channel.from_json(d) if d else None


# --- channel events -----------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class ChannelEvent(Event):
    """An event about one channel; ordered with everything else about that channel."""

    channel: Channel

    @property
    def dispatch_key(self) -> str:
        return _channel_key(self.channel.id)

    @classmethod
    def from_json(cls, d: JsonDict) -> ChannelEvent:
        event = _event(cls, d)
        event.channel = Channel.from_json(d["channel"])
        return event


@dataclass(slots=True, kw_only=True)
class StasisStart(ChannelEvent):
    args: list[str] = field(default_factory=list)
    replace_channel: Channel | None = None

    @classmethod
    def from_json(cls, d: JsonDict) -> StasisStart:
        event = _event(cls, d)
        event.channel = Channel.from_json(d["channel"])
        event.args = [str(a) for a in d.get("args") or ()]
        event.replace_channel = _opt_channel(d.get("replace_channel"))
        return event


@dataclass(slots=True, kw_only=True)
class StasisEnd(ChannelEvent):
    pass


@dataclass(slots=True, kw_only=True)
class ChannelStateChange(ChannelEvent):
    pass


@dataclass(slots=True, kw_only=True)
class ChannelDtmfReceived(ChannelEvent):
    digit: str = ""
    duration_ms: int = 0

    @classmethod
    def from_json(cls, d: JsonDict) -> ChannelDtmfReceived:
        event = _event(cls, d)
        event.channel = Channel.from_json(d["channel"])
        event.digit = str(d.get("digit") or "")
        event.duration_ms = int(d.get("duration_ms") or 0)
        return event


@dataclass(slots=True, kw_only=True)
class ChannelHangupRequest(ChannelEvent):
    cause: int | None = None
    soft: bool = False

    @classmethod
    def from_json(cls, d: JsonDict) -> ChannelHangupRequest:
        event = _event(cls, d)
        event.channel = Channel.from_json(d["channel"])
        event.cause = d.get("cause")
        event.soft = bool(d.get("soft", False))
        return event


@dataclass(slots=True, kw_only=True)
class ChannelDestroyed(ChannelEvent):
    cause: int = 0
    cause_txt: str = ""

    @classmethod
    def from_json(cls, d: JsonDict) -> ChannelDestroyed:
        event = _event(cls, d)
        event.channel = Channel.from_json(d["channel"])
        event.cause = int(d.get("cause") or 0)
        event.cause_txt = str(d.get("cause_txt") or "")
        return event


@dataclass(slots=True, kw_only=True)
class ChannelTalkingStarted(ChannelEvent):
    pass


@dataclass(slots=True, kw_only=True)
class ChannelTalkingFinished(ChannelEvent):
    duration: int = 0

    @classmethod
    def from_json(cls, d: JsonDict) -> ChannelTalkingFinished:
        event = _event(cls, d)
        event.channel = Channel.from_json(d["channel"])
        event.duration = int(d.get("duration") or 0)
        return event


@dataclass(slots=True, kw_only=True)
class ChannelVarset(Event):
    """A variable changed; ``channel`` is ``None`` for a global variable."""

    variable: str = ""
    value: str = ""
    channel: Channel | None = None

    @property
    def dispatch_key(self) -> str:
        return _channel_key(self.channel.id) if self.channel else GLOBAL_KEY

    @classmethod
    def from_json(cls, d: JsonDict) -> ChannelVarset:
        event = _event(cls, d)
        event.variable = str(d.get("variable") or "")
        event.value = str(d.get("value") or "")
        event.channel = _opt_channel(d.get("channel"))
        return event


@dataclass(slots=True, kw_only=True)
class Dial(Event):
    """Progress of a dial; keyed on the dialled channel (``peer``), which it is about."""

    peer: Channel
    caller: Channel | None = None
    forwarded: Channel | None = None
    forward: str = ""
    dialstring: str = ""
    dialstatus: str = ""

    @property
    def dispatch_key(self) -> str:
        return _channel_key(self.peer.id)

    @classmethod
    def from_json(cls, d: JsonDict) -> Dial:
        event = _event(cls, d)
        event.peer = Channel.from_json(d["peer"])
        event.caller = _opt_channel(d.get("caller"))
        event.forwarded = _opt_channel(d.get("forwarded"))
        event.forward = str(d.get("forward") or "")
        event.dialstring = str(d.get("dialstring") or "")
        event.dialstatus = str(d.get("dialstatus") or "")
        return event


# --- bridges ------------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class BridgeEvent(Event):
    bridge: Bridge

    @property
    def dispatch_key(self) -> str:
        return "bridge:" + self.bridge.id

    @classmethod
    def from_json(cls, d: JsonDict) -> BridgeEvent:
        event = _event(cls, d)
        event.bridge = Bridge.from_json(d["bridge"])
        return event


@dataclass(slots=True, kw_only=True)
class BridgeCreated(BridgeEvent):
    pass


@dataclass(slots=True, kw_only=True)
class BridgeDestroyed(BridgeEvent):
    pass


@dataclass(slots=True, kw_only=True)
class ChannelBridgeEvent(BridgeEvent):
    """Keyed on the channel (ordered with its other events); on the bridge if no channel is given."""

    channel: Channel | None = None

    @property
    def dispatch_key(self) -> str:
        return _channel_key(self.channel.id) if self.channel else "bridge:" + self.bridge.id

    @classmethod
    def from_json(cls, d: JsonDict) -> ChannelBridgeEvent:
        event = _event(cls, d)
        event.bridge = Bridge.from_json(d["bridge"])
        event.channel = _opt_channel(d.get("channel"))
        return event


@dataclass(slots=True, kw_only=True)
class ChannelEnteredBridge(ChannelBridgeEvent):
    pass


@dataclass(slots=True, kw_only=True)
class ChannelLeftBridge(ChannelBridgeEvent):
    pass


# --- playbacks and recordings -------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class PlaybackEvent(Event):
    playback: Playback

    @property
    def dispatch_key(self) -> str:
        return _target_key(self.playback.target_uri)

    @classmethod
    def from_json(cls, d: JsonDict) -> PlaybackEvent:
        event = _event(cls, d)
        event.playback = Playback.from_json(d["playback"])
        return event


@dataclass(slots=True, kw_only=True)
class PlaybackStarted(PlaybackEvent):
    pass


@dataclass(slots=True, kw_only=True)
class PlaybackContinuing(PlaybackEvent):
    pass


@dataclass(slots=True, kw_only=True)
class PlaybackFinished(PlaybackEvent):
    pass


@dataclass(slots=True, kw_only=True)
class RecordingEvent(Event):
    recording: LiveRecording

    @property
    def dispatch_key(self) -> str:
        return _target_key(self.recording.target_uri)

    @classmethod
    def from_json(cls, d: JsonDict) -> RecordingEvent:
        event = _event(cls, d)
        event.recording = LiveRecording.from_json(d["recording"])
        return event


@dataclass(slots=True, kw_only=True)
class RecordingStarted(RecordingEvent):
    pass


@dataclass(slots=True, kw_only=True)
class RecordingFinished(RecordingEvent):
    pass


@dataclass(slots=True, kw_only=True)
class RecordingFailed(RecordingEvent):
    pass


# --- system-wide --------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class DeviceStateChanged(Event):
    device_state: DeviceState

    @classmethod
    def from_json(cls, d: JsonDict) -> DeviceStateChanged:
        event = _event(cls, d)
        event.device_state = DeviceState.from_json(d["device_state"])
        return event


@dataclass(slots=True, kw_only=True)
class EndpointStateChange(Event):
    endpoint: Endpoint

    @classmethod
    def from_json(cls, d: JsonDict) -> EndpointStateChange:
        event = _event(cls, d)
        event.endpoint = Endpoint.from_json(d["endpoint"])
        return event


@dataclass(slots=True, kw_only=True)
class ApplicationReplaced(Event):
    """Another connection took our application name; this client stops (see ``AriClient.run``)."""

    @classmethod
    def from_json(cls, d: JsonDict) -> ApplicationReplaced:
        return _event(cls, d)


@dataclass(slots=True, kw_only=True)
class UnknownEvent(Event):
    """Any event type not modelled here (or one whose body did not parse): read ``raw``."""

    @classmethod
    def from_json(cls, d: JsonDict) -> UnknownEvent:
        return cls(
            type=str(d.get("type") or ""),
            application=str(d.get("application") or ""),
            timestamp=str(d.get("timestamp") or ""),
            asterisk_id=str(d.get("asterisk_id") or ""),
            raw=d,
        )

    @property
    def dispatch_key(self) -> str:
        # Best effort, so an unmodelled channel event still stays in its channel's order.
        ch = self.raw.get("channel")
        if isinstance(ch, dict) and isinstance(ch.get("id"), str):
            return _channel_key(ch["id"])
        return GLOBAL_KEY


# --- synthetic connection events (never sent by Asterisk) ---------------------------------------


@dataclass(slots=True, kw_only=True)
class Connected(Event):
    """The event socket is (re)connected and resynced.

    ``generation`` counts connections from 1. ``channels`` and ``bridges`` are what belongs to our
    application right now (see ``AriClient`` for how that is decided), so the application can
    re-adopt calls it already owned before the drop. Handlers run before any event of this
    connection is dispatched.
    """

    generation: int
    channels: list[Channel] = field(default_factory=list)
    bridges: list[Bridge] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Disconnected(Event):
    """The connection of ``generation`` ended: ``reason`` is e.g. ``"closed by server"``, ``"stalled"``."""

    generation: int
    reason: str = ""


_PARSERS: dict[str, Callable[[JsonDict], Event]] = {
    "StasisStart": StasisStart.from_json,
    "StasisEnd": StasisEnd.from_json,
    "ChannelDtmfReceived": ChannelDtmfReceived.from_json,
    "PlaybackStarted": PlaybackStarted.from_json,
    "PlaybackContinuing": PlaybackContinuing.from_json,
    "PlaybackFinished": PlaybackFinished.from_json,
    "RecordingStarted": RecordingStarted.from_json,
    "RecordingFinished": RecordingFinished.from_json,
    "RecordingFailed": RecordingFailed.from_json,
    "ChannelStateChange": ChannelStateChange.from_json,
    "ChannelHangupRequest": ChannelHangupRequest.from_json,
    "ChannelDestroyed": ChannelDestroyed.from_json,
    "ChannelEnteredBridge": ChannelEnteredBridge.from_json,
    "ChannelLeftBridge": ChannelLeftBridge.from_json,
    "BridgeCreated": BridgeCreated.from_json,
    "BridgeDestroyed": BridgeDestroyed.from_json,
    "Dial": Dial.from_json,
    "ChannelTalkingStarted": ChannelTalkingStarted.from_json,
    "ChannelTalkingFinished": ChannelTalkingFinished.from_json,
    "ChannelVarset": ChannelVarset.from_json,
    "DeviceStateChanged": DeviceStateChanged.from_json,
    "EndpointStateChange": EndpointStateChange.from_json,
    "ApplicationReplaced": ApplicationReplaced.from_json,
}

MODELLED_TYPES: frozenset[str] = frozenset(_PARSERS)


class MalformedEvent(ValueError):
    """Raised by :func:`parse_event` only for input that is not an event at all (no ``type``)."""


def parse_event(d: Any) -> Event:
    """Build the typed event for one decoded WebSocket message.

    Unknown types and known types with a body that does not fit become :class:`UnknownEvent`.
    """
    if not isinstance(d, dict) or not isinstance(d.get("type"), str):
        raise MalformedEvent("not an ARI event")
    parser = _PARSERS.get(d["type"])
    if parser is None:
        return UnknownEvent.from_json(d)
    try:
        return parser(d)
    except (KeyError, TypeError, ValueError, AttributeError):
        return UnknownEvent.from_json(d)
