"""Event parsing: every modelled type, dispatch keys, and unknown or broken input."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from ari import events as ev
from ari.events import GLOBAL_KEY, parse_event

CH: dict[str, Any] = {
    "id": "1700000000.1",
    "name": "PJSIP/caller-00000001",
    "state": "Up",
    "caller": {"name": "Ayşe", "number": "5551234"},
    "connected": {"name": "", "number": ""},
    "accountcode": "",
    "dialplan": {
        "context": "hotline-in",
        "exten": "183",
        "priority": 2,
        "app_name": "Stasis",
        "app_data": "hotline",
    },
    "creationtime": "2026-01-01T10:00:00.000+0300",
    "language": "tr",
}
BR: dict[str, Any] = {
    "id": "br-1",
    "technology": "simple_bridge",
    "bridge_type": "mixing",
    "channels": ["1700000000.1"],
}
PB: dict[str, Any] = {
    "id": "pb-1",
    "media_uri": "sound:hello",
    "target_uri": "channel:1700000000.1",
    "state": "playing",
}
REC: dict[str, Any] = {"name": "r1", "format": "wav", "target_uri": "bridge:br-1", "state": "recording"}
CHKEY = "channel:1700000000.1"

# (raw event, expected class, expected dispatch key)
CASES: list[tuple[dict[str, Any], type[ev.Event], str]] = [
    ({"type": "StasisStart", "args": ["tr", "7"], "channel": CH}, ev.StasisStart, CHKEY),
    ({"type": "StasisEnd", "channel": CH}, ev.StasisEnd, CHKEY),
    (
        {"type": "ChannelDtmfReceived", "digit": "5", "duration_ms": 120, "channel": CH},
        ev.ChannelDtmfReceived,
        CHKEY,
    ),
    ({"type": "PlaybackStarted", "playback": PB}, ev.PlaybackStarted, CHKEY),
    ({"type": "PlaybackContinuing", "playback": PB}, ev.PlaybackContinuing, CHKEY),
    ({"type": "PlaybackFinished", "playback": PB}, ev.PlaybackFinished, CHKEY),
    ({"type": "RecordingStarted", "recording": REC}, ev.RecordingStarted, "bridge:br-1"),
    ({"type": "RecordingFinished", "recording": REC}, ev.RecordingFinished, "bridge:br-1"),
    ({"type": "RecordingFailed", "recording": {**REC, "cause": "disk"}}, ev.RecordingFailed, "bridge:br-1"),
    ({"type": "ChannelStateChange", "channel": CH}, ev.ChannelStateChange, CHKEY),
    ({"type": "ChannelHangupRequest", "cause": 16, "channel": CH}, ev.ChannelHangupRequest, CHKEY),
    (
        {"type": "ChannelDestroyed", "cause": 16, "cause_txt": "Normal", "channel": CH},
        ev.ChannelDestroyed,
        CHKEY,
    ),
    ({"type": "ChannelEnteredBridge", "bridge": BR, "channel": CH}, ev.ChannelEnteredBridge, CHKEY),
    ({"type": "ChannelEnteredBridge", "bridge": BR}, ev.ChannelEnteredBridge, "bridge:br-1"),
    ({"type": "ChannelLeftBridge", "bridge": BR, "channel": CH}, ev.ChannelLeftBridge, CHKEY),
    ({"type": "BridgeCreated", "bridge": BR}, ev.BridgeCreated, "bridge:br-1"),
    ({"type": "BridgeDestroyed", "bridge": BR}, ev.BridgeDestroyed, "bridge:br-1"),
    (
        {"type": "Dial", "peer": {**CH, "id": "peer-1"}, "caller": CH, "dialstatus": "ANSWER"},
        ev.Dial,
        "channel:peer-1",
    ),
    ({"type": "ChannelTalkingStarted", "channel": CH}, ev.ChannelTalkingStarted, CHKEY),
    ({"type": "ChannelTalkingFinished", "duration": 1500, "channel": CH}, ev.ChannelTalkingFinished, CHKEY),
    ({"type": "ChannelVarset", "variable": "X", "value": "1", "channel": CH}, ev.ChannelVarset, CHKEY),
    ({"type": "ChannelVarset", "variable": "GLOBAL", "value": "1"}, ev.ChannelVarset, GLOBAL_KEY),
    (
        {"type": "DeviceStateChanged", "device_state": {"name": "Stasis:agent1", "state": "INUSE"}},
        ev.DeviceStateChanged,
        GLOBAL_KEY,
    ),
    (
        {
            "type": "EndpointStateChange",
            "endpoint": {"technology": "PJSIP", "resource": "a1", "state": "online"},
        },
        ev.EndpointStateChange,
        GLOBAL_KEY,
    ),
    ({"type": "ApplicationReplaced"}, ev.ApplicationReplaced, GLOBAL_KEY),
]


@pytest.mark.parametrize(
    ("raw", "cls", "key"), CASES, ids=[f"{c[1].__name__}-{i}" for i, c in enumerate(CASES)]
)
def test_parse_each_type(raw: dict[str, Any], cls: type[ev.Event], key: str) -> None:
    raw = {**raw, "application": "hotline", "timestamp": "2026-01-01T10:00:00.000+0300", "asterisk_id": "aa"}
    event = parse_event(raw)
    assert type(event) is cls
    assert event.type == raw["type"]
    assert (event.application, event.timestamp, event.asterisk_id) == ("hotline", raw["timestamp"], "aa")
    assert event.raw is raw
    assert event.dispatch_key == key
    # Parsers set slots directly, bypassing __init__: every field must have been set, and the
    # event must equal one built through the constructor from the same values.
    values = {f.name: getattr(event, f.name) for f in fields(event)}
    assert type(event)(**values) == event


def test_every_modelled_type_has_a_case() -> None:
    assert {c[0]["type"] for c in CASES} == ev.MODELLED_TYPES


def test_fields_are_typed() -> None:
    start = parse_event({"type": "StasisStart", "args": ["tr", 7], "channel": CH, "replace_channel": CH})
    assert isinstance(start, ev.StasisStart)
    assert start.args == ["tr", "7"]
    assert start.channel.caller.name == "Ayşe" and start.channel.dialplan.priority == 2
    assert start.replace_channel is not None and start.replace_channel.id == CH["id"]
    assert parse_event({"type": "StasisStart", "channel": CH}).replace_channel is None  # type: ignore[attr-defined]
    dtmf = parse_event({"type": "ChannelDtmfReceived", "digit": "#", "duration_ms": 90, "channel": CH})
    assert isinstance(dtmf, ev.ChannelDtmfReceived) and (dtmf.digit, dtmf.duration_ms) == ("#", 90)
    dial = parse_event({"type": "Dial", "peer": CH, "dialstatus": "BUSY"})
    assert isinstance(dial, ev.Dial) and dial.caller is None and dial.dialstatus == "BUSY"
    rec = parse_event({"type": "RecordingFailed", "recording": {**REC, "cause": "disk full"}})
    assert isinstance(rec, ev.RecordingFailed) and rec.recording.cause == "disk full"
    hup = parse_event({"type": "ChannelHangupRequest", "channel": CH, "soft": True})
    assert isinstance(hup, ev.ChannelHangupRequest) and hup.soft and hup.cause is None


def test_unknown_type_is_delivered_generic() -> None:
    raw = {"type": "ChannelCallerId", "caller_presentation": 0, "channel": CH}
    event = parse_event(raw)
    assert type(event) is ev.UnknownEvent
    assert event.type == "ChannelCallerId" and event.raw is raw
    assert event.dispatch_key == CHKEY  # still ordered with its channel
    assert parse_event({"type": "TextMessageReceived"}).dispatch_key == GLOBAL_KEY


def test_known_type_with_broken_body_is_generic() -> None:
    event = parse_event({"type": "StasisStart", "channel": "not-an-object"})
    assert type(event) is ev.UnknownEvent and event.type == "StasisStart"
    assert type(parse_event({"type": "PlaybackFinished"})) is ev.UnknownEvent


@pytest.mark.parametrize("raw", [[], "StasisStart", {"no": "type"}, {"type": 3}, None])
def test_not_an_event(raw: Any) -> None:
    with pytest.raises(ev.MalformedEvent):
        parse_event(raw)


def test_in_app() -> None:
    from ari.models import Channel

    ch = Channel.from_json(CH)
    assert ch.in_app("hotline") and not ch.in_app("other")
    with_args = Channel.from_json({**CH, "dialplan": {**CH["dialplan"], "app_data": "hotline,tr,7"}})
    assert with_args.in_app("hotline")
    dialplan = Channel.from_json(
        {**CH, "dialplan": {**CH["dialplan"], "app_name": "Dial", "app_data": "hotline"}}
    )
    assert not dialplan.in_app("hotline")


def test_channel_fields_are_built_on_first_read() -> None:
    from ari.models import _CHANNEL_FIELDS, CallerId, Channel, DialplanCEP

    # A field added to Channel without a builder would silently never be filled.
    assert set(_CHANNEL_FIELDS) == {f.name for f in fields(Channel)} - {"id", "raw"}
    lazy = Channel.from_json(CH)
    assert lazy.id == CH["id"] and lazy.raw is CH
    eager = Channel(
        id=CH["id"],
        name=CH["name"],
        state="Up",
        caller=CallerId(name="Ayşe", number="5551234"),
        connected=CallerId(),
        dialplan=DialplanCEP(
            context="hotline-in", exten="183", priority=2, app_name="Stasis", app_data="hotline"
        ),
        creationtime=CH["creationtime"],
        language="tr",
        raw=CH,
    )
    assert Channel.from_json(CH) == eager
    assert repr(Channel.from_json(CH)) == repr(eager)
    assert {f.name: getattr(lazy, f.name) for f in fields(Channel)} == {
        f.name: getattr(eager, f.name) for f in fields(Channel)
    }
    # A field set before it was ever read keeps the value set.
    moved = Channel.from_json(CH)
    moved.state = "Ringing"
    assert moved.state == "Ringing" and moved.name == CH["name"]
    try:
        lazy.no_such_field  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "no_such_field" in str(exc)
    else:
        raise AssertionError("unknown attribute did not raise")


@pytest.mark.parametrize("junk", ["text", 7, [1, 2], {"x": {"y": 1}}, True])
def test_ill_typed_channel_fields_fall_back_to_defaults(junk: Any) -> None:
    # Fields are built after the event was accepted, so building one must never raise.
    from ari.models import CallerId, Channel

    body = {"id": "c1", "caller": junk, "connected": junk, "dialplan": {"priority": junk, "context": junk}}
    event = parse_event({"type": "StasisStart", "channel": body})
    assert type(event) is ev.StasisStart
    channel = event.channel
    for f in fields(Channel):
        getattr(channel, f.name)
    assert channel.caller == channel.connected == CallerId()
    assert channel.dialplan.priority == (junk if type(junk) is int else int(junk is True))


def test_channel_without_a_string_id_is_generic() -> None:
    for body in ({"name": "no id"}, {"id": 5}, {"id": None}, ["id"], "c1"):
        event = parse_event({"type": "ChannelStateChange", "channel": body})
        assert type(event) is ev.UnknownEvent
        assert event.dispatch_key == GLOBAL_KEY
