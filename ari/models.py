"""Typed views of the ARI resource models (Channel, Bridge, Playback, ...).

Each model is a plain slotted dataclass built by ``from_json``; parsing is lenient (missing
or ill-typed optional fields get empty defaults) because Asterisk versions differ in what they
send, and the untouched JSON is always kept in ``raw`` for anything not modelled here.

:class:`Channel` is the exception in how, not what, it parses: every channel event carries a
full channel object, and most handlers read only its ``id``, so ``from_json`` sets ``id`` and
``raw`` and each other field is built from ``raw`` the first time it is read. Reading, setting,
comparing and printing work exactly as for an eagerly built channel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

JsonDict = dict[str, Any]


def parse_time(value: str | None) -> datetime | None:
    """Parse an ARI timestamp such as ``2024-05-01T10:00:00.123+0300``; ``None`` if absent or malformed."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _str(d: JsonDict, key: str) -> str:
    v = d.get(key)
    return "" if v is None else str(v)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


@dataclass(slots=True, kw_only=True)
class CallerId:
    name: str = ""
    number: str = ""

    @classmethod
    def from_json(cls, d: JsonDict | None) -> CallerId:
        if not d or not isinstance(d, dict):
            return cls()
        return cls(name=d.get("name") or "", number=d.get("number") or "")


@dataclass(slots=True, kw_only=True)
class DialplanCEP:
    """Where the channel is in the dialplan (context, extension, priority) and which app runs."""

    context: str = ""
    exten: str = ""
    priority: int = 0
    app_name: str = ""
    app_data: str = ""

    @classmethod
    def from_json(cls, d: JsonDict | None) -> DialplanCEP:
        if not d or not isinstance(d, dict):
            return cls()
        return cls(
            context=d.get("context") or "",
            exten=d.get("exten") or "",
            priority=_int(d.get("priority")),
            app_name=d.get("app_name") or "",
            app_data=d.get("app_data") or "",
        )


@dataclass(slots=True, kw_only=True)
class Channel:
    id: str
    name: str = ""
    state: str = ""
    caller: CallerId = field(default_factory=CallerId)
    connected: CallerId = field(default_factory=CallerId)
    accountcode: str = ""
    dialplan: DialplanCEP = field(default_factory=DialplanCEP)
    creationtime: str = ""
    language: str = ""
    protocol_id: str = ""
    channelvars: dict[str, str] = field(default_factory=dict)
    raw: JsonDict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: JsonDict) -> Channel:
        """Check ``id`` now (it is the dispatch key); every other field is built when first read.

        Raises only for a body that is not an object with a string ``id``, so a field built
        later cannot fail: its builder accepts anything (see ``_CHANNEL_FIELDS``).
        """
        ident = d["id"]
        if type(ident) is not str:
            raise TypeError("channel id is not a string")
        channel = _new_object(cls)
        channel.id = ident
        channel.raw = d
        return channel

    if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any attribute name

        def __getattr__(self, name: str) -> Any:
            # Reached only when a slot is empty: a field of a channel from from_json not read yet.
            build = _CHANNEL_FIELDS.get(name)
            if build is None:
                raise AttributeError(f"'Channel' object has no attribute {name!r}")
            value = build(self.raw)
            setattr(self, name, value)
            return value

    def in_app(self, app: str) -> bool:
        """True if the channel is currently running ``Stasis(app, ...)``.

        GET /channels lists every channel on the system; this is how the resync tells ours apart.
        """
        if self.dialplan.app_name.lower() != "stasis":
            return False
        return self.dialplan.app_data.split(",", 1)[0].strip() == app


_new_object = object.__new__

# How each Channel field other than id and raw is built from the JSON (lenient: never raises).
_CHANNEL_FIELDS: dict[str, Callable[[JsonDict], Any]] = {
    "name": lambda d: d.get("name") or "",
    "state": lambda d: d.get("state") or "",
    "caller": lambda d: CallerId.from_json(d.get("caller")),
    "connected": lambda d: CallerId.from_json(d.get("connected")),
    "accountcode": lambda d: d.get("accountcode") or "",
    "dialplan": lambda d: DialplanCEP.from_json(d.get("dialplan")),
    "creationtime": lambda d: d.get("creationtime") or "",
    "language": lambda d: d.get("language") or "",
    "protocol_id": lambda d: d.get("protocol_id") or "",
    "channelvars": lambda d: d.get("channelvars") or {},
}


@dataclass(slots=True, kw_only=True)
class Bridge:
    id: str
    technology: str = ""
    bridge_type: str = ""
    bridge_class: str = ""
    creator: str = ""
    name: str = ""
    channels: list[str] = field(default_factory=list)
    creationtime: str = ""
    video_mode: str = ""
    video_source_id: str = ""
    raw: JsonDict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: JsonDict) -> Bridge:
        return cls(
            id=str(d["id"]),
            technology=_str(d, "technology"),
            bridge_type=_str(d, "bridge_type"),
            bridge_class=_str(d, "bridge_class"),
            creator=_str(d, "creator"),
            name=_str(d, "name"),
            channels=[str(c) for c in d.get("channels") or ()],
            creationtime=_str(d, "creationtime"),
            video_mode=_str(d, "video_mode"),
            video_source_id=_str(d, "video_source_id"),
            raw=d,
        )


def split_target(target_uri: str) -> tuple[str, str]:
    """``"channel:123.4"`` -> ``("channel", "123.4")``; ``("", "")`` when there is no scheme."""
    kind, sep, ident = target_uri.partition(":")
    return (kind, ident) if sep else ("", "")


@dataclass(slots=True, kw_only=True)
class Playback:
    id: str
    media_uri: str = ""
    next_media_uri: str = ""
    target_uri: str = ""
    language: str = ""
    state: str = ""
    raw: JsonDict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: JsonDict) -> Playback:
        return cls(
            id=str(d["id"]),
            media_uri=_str(d, "media_uri"),
            next_media_uri=_str(d, "next_media_uri"),
            target_uri=_str(d, "target_uri"),
            language=_str(d, "language"),
            state=_str(d, "state"),
            raw=d,
        )


@dataclass(slots=True, kw_only=True)
class LiveRecording:
    name: str
    format: str = ""
    target_uri: str = ""
    state: str = ""
    duration: int | None = None
    talking_duration: int | None = None
    silence_duration: int | None = None
    cause: str = ""
    raw: JsonDict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: JsonDict) -> LiveRecording:
        return cls(
            name=str(d["name"]),
            format=_str(d, "format"),
            target_uri=_str(d, "target_uri"),
            state=_str(d, "state"),
            duration=d.get("duration"),
            talking_duration=d.get("talking_duration"),
            silence_duration=d.get("silence_duration"),
            cause=_str(d, "cause"),
            raw=d,
        )


@dataclass(slots=True, kw_only=True)
class StoredRecording:
    name: str
    format: str = ""
    raw: JsonDict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: JsonDict) -> StoredRecording:
        return cls(name=str(d["name"]), format=_str(d, "format"), raw=d)


@dataclass(slots=True, kw_only=True)
class Endpoint:
    technology: str
    resource: str
    state: str = ""
    channel_ids: list[str] = field(default_factory=list)
    raw: JsonDict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: JsonDict) -> Endpoint:
        return cls(
            technology=_str(d, "technology"),
            resource=_str(d, "resource"),
            state=_str(d, "state"),
            channel_ids=[str(c) for c in d.get("channel_ids") or ()],
            raw=d,
        )


@dataclass(slots=True, kw_only=True)
class DeviceState:
    name: str
    state: str = ""
    raw: JsonDict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: JsonDict) -> DeviceState:
        return cls(name=_str(d, "name"), state=_str(d, "state"), raw=d)


@dataclass(slots=True, kw_only=True)
class Application:
    name: str
    channel_ids: list[str] = field(default_factory=list)
    bridge_ids: list[str] = field(default_factory=list)
    endpoint_ids: list[str] = field(default_factory=list)
    device_names: list[str] = field(default_factory=list)
    events_allowed: list[JsonDict] = field(default_factory=list)
    events_disallowed: list[JsonDict] = field(default_factory=list)
    raw: JsonDict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: JsonDict) -> Application:
        return cls(
            name=_str(d, "name"),
            channel_ids=list(d.get("channel_ids") or ()),
            bridge_ids=list(d.get("bridge_ids") or ()),
            endpoint_ids=list(d.get("endpoint_ids") or ()),
            device_names=list(d.get("device_names") or ()),
            events_allowed=list(d.get("events_allowed") or ()),
            events_disallowed=list(d.get("events_disallowed") or ()),
            raw=d,
        )


@dataclass(slots=True, kw_only=True)
class AsteriskInfo:
    version: str = ""
    entity_id: str = ""
    build: JsonDict = field(default_factory=dict)
    config: JsonDict = field(default_factory=dict)
    status: JsonDict = field(default_factory=dict)
    raw: JsonDict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: JsonDict) -> AsteriskInfo:
        system = d.get("system") or {}
        return cls(
            version=_str(system, "version"),
            entity_id=_str(system, "entity_id"),
            build=dict(d.get("build") or {}),
            config=dict(d.get("config") or {}),
            status=dict(d.get("status") or {}),
            raw=d,
        )


@dataclass(slots=True, kw_only=True)
class AsteriskPing:
    asterisk_id: str = ""
    ping: str = ""
    timestamp: str = ""
    raw: JsonDict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: JsonDict) -> AsteriskPing:
        return cls(
            asterisk_id=_str(d, "asterisk_id"), ping=_str(d, "ping"), timestamp=_str(d, "timestamp"), raw=d
        )
