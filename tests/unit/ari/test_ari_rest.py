"""REST: each typed method sends the right request, errors map to classes, auth is a header."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ari import AriClient, AriConnectionError, AriError, BadRequest, Conflict, NotFound, Unprocessable
from ari import events as ev
from ari.models import AsteriskInfo, Bridge, Channel, LiveRecording, Playback, StoredRecording
from ari.testing import FakeAri

from .conftest import PASSWORD, USER, ClientFactory, RunClient, Running

EXPECTED_AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture(params=["http", "websocket"])
async def world(request: pytest.FixtureRequest, fake: FakeAri, run_client: RunClient) -> Running:
    """A connected client (REST over HTTP, then over the event socket) and a fake holding one
    of each object the REST methods act on."""
    running = await run_client(rest_transport=request.param)
    fake.auto_finish_playbacks = False
    fake.make_channel("c1")
    fake.variables["c1"]["GREETED"] = "yes"
    fake.bridges["b1"] = {"id": "b1", "bridge_type": "mixing", "creator": "Stasis", "channels": ["c1"]}
    fake.subscriptions["hotline"] = {"deviceState:Stasis:agent1"}
    fake.playbacks["pb1"] = {
        "id": "pb1",
        "media_uri": "sound:x",
        "target_uri": "channel:c1",
        "state": "playing",
    }
    fake.live_recordings["r1"] = {
        "name": "r1",
        "format": "wav",
        "target_uri": "channel:c1",
        "state": "recording",
    }
    fake.stored_recordings["s1"] = {"name": "s1", "format": "wav"}
    fake.device_states["Stasis:agent1"] = "NOT_INUSE"
    fake.requests.clear()
    return running


def transport_of(world: Running, path: str) -> str:
    # Recordings are downloaded over HTTP whatever the transport: Asterisk sends no files on the socket.
    if world.client._ws_rest is None or path.endswith("/file"):
        return "http"
    return "websocket"


Call = Callable[[AriClient], Awaitable[Any]]

# (id, call, method, path, query that must be sent exactly, JSON body or None)
CASES: list[tuple[str, Call, str, str, dict[str, str], Any]] = [
    ("asterisk.info", lambda c: c.asterisk.info(), "GET", "/ari/asterisk/info", {}, None),
    ("asterisk.ping", lambda c: c.asterisk.ping(), "GET", "/ari/asterisk/ping", {}, None),
    ("channels.list", lambda c: c.channels.list(), "GET", "/ari/channels", {}, None),
    ("channels.get", lambda c: c.channels.get("c1"), "GET", "/ari/channels/c1", {}, None),
    ("channels.answer", lambda c: c.channels.answer("c1"), "POST", "/ari/channels/c1/answer", {}, None),
    ("channels.ring", lambda c: c.channels.ring("c1"), "POST", "/ari/channels/c1/ring", {}, None),
    ("channels.ring_stop", lambda c: c.channels.ring_stop("c1"), "DELETE", "/ari/channels/c1/ring", {}, None),
    ("channels.hold", lambda c: c.channels.hold("c1"), "POST", "/ari/channels/c1/hold", {}, None),
    ("channels.unhold", lambda c: c.channels.unhold("c1"), "DELETE", "/ari/channels/c1/hold", {}, None),
    (
        "channels.moh_start",
        lambda c: c.channels.moh_start("c1", moh_class="calm"),
        "POST",
        "/ari/channels/c1/moh",
        {"mohClass": "calm"},
        None,
    ),
    ("channels.moh_stop", lambda c: c.channels.moh_stop("c1"), "DELETE", "/ari/channels/c1/moh", {}, None),
    (
        "channels.mute",
        lambda c: c.channels.mute("c1", direction="in"),
        "POST",
        "/ari/channels/c1/mute",
        {"direction": "in"},
        None,
    ),
    (
        "channels.send_dtmf",
        lambda c: c.channels.send_dtmf("c1", "12#", duration=80),
        "POST",
        "/ari/channels/c1/dtmf",
        {"dtmf": "12#", "duration": "80"},
        None,
    ),
    (
        "channels.play",
        lambda c: c.channels.play("c1", "sound:hello-world", playback_id="p9", lang="tr"),
        "POST",
        "/ari/channels/c1/play",
        {"media": "sound:hello-world", "playbackId": "p9", "lang": "tr"},
        None,
    ),
    (
        "channels.play many",
        lambda c: c.channels.play("c1", ["sound:a", "digits:12"]),
        "POST",
        "/ari/channels/c1/play",
        {"media": "sound:a,digits:12"},
        None,
    ),
    (
        "channels.record",
        lambda c: c.channels.record("c1", "call-1", max_silence_seconds=3, beep=True, if_exists="overwrite"),
        "POST",
        "/ari/channels/c1/record",
        {
            "name": "call-1",
            "format": "wav",
            "maxSilenceSeconds": "3",
            "beep": "true",
            "ifExists": "overwrite",
        },
        None,
    ),
    (
        "channels.get_variable",
        lambda c: c.channels.get_variable("c1", "GREETED"),
        "GET",
        "/ari/channels/c1/variable",
        {"variable": "GREETED"},
        None,
    ),
    (
        "channels.set_variable",
        lambda c: c.channels.set_variable("c1", "LANG", "tr"),
        "POST",
        "/ari/channels/c1/variable",
        {"variable": "LANG", "value": "tr"},
        None,
    ),
    (
        "channels.snoop",
        lambda c: c.channels.snoop("c1", spy="in", app_args=["snoop", "c1"]),
        "POST",
        "/ari/channels/c1/snoop",
        {"spy": "in", "app": "hotline", "appArgs": "snoop,c1"},
        None,
    ),
    (
        "channels.external_media",
        lambda c: c.channels.external_media(external_host="127.0.0.1:4000", format="slin16"),
        "POST",
        "/ari/channels/externalMedia",
        {"app": "hotline", "external_host": "127.0.0.1:4000", "format": "slin16"},
        None,
    ),
    (
        "channels.originate",
        lambda c: c.channels.originate(
            "PJSIP/police",
            app="hotline",
            app_args="page",
            caller_id="183",
            timeout=30,
            variables={"CASE": "7"},
        ),
        "POST",
        "/ari/channels",
        {"endpoint": "PJSIP/police", "app": "hotline", "appArgs": "page", "callerId": "183", "timeout": "30"},
        {"variables": {"CASE": "7"}},
    ),
    (
        "channels.create",
        lambda c: c.channels.create("PJSIP/agent1", channel_id="out-1"),
        "POST",
        "/ari/channels/create",
        {"endpoint": "PJSIP/agent1", "app": "hotline", "channelId": "out-1"},
        None,
    ),
    (
        "channels.dial",
        lambda c: c.channels.dial("c1", caller="c0", timeout=20),
        "POST",
        "/ari/channels/c1/dial",
        {"caller": "c0", "timeout": "20"},
        None,
    ),
    (
        "channels.redirect",
        lambda c: c.channels.redirect("c1", "PJSIP/operator"),
        "POST",
        "/ari/channels/c1/redirect",
        {"endpoint": "PJSIP/operator"},
        None,
    ),
    (
        "channels.continue_in_dialplan",
        lambda c: c.channels.continue_in_dialplan("c1", context="ivr", extension="s", priority=2),
        "POST",
        "/ari/channels/c1/continue",
        {"context": "ivr", "extension": "s", "priority": "2"},
        None,
    ),
    (
        "channels.hangup",
        lambda c: c.channels.hangup("c1", reason="busy"),
        "DELETE",
        "/ari/channels/c1",
        {"reason": "busy"},
        None,
    ),
    ("bridges.list", lambda c: c.bridges.list(), "GET", "/ari/bridges", {}, None),
    ("bridges.get", lambda c: c.bridges.get("b1"), "GET", "/ari/bridges/b1", {}, None),
    (
        "bridges.create",
        lambda c: c.bridges.create(type=["mixing", "dtmf_events"], bridge_id="b2", name="queue"),
        "POST",
        "/ari/bridges",
        {"type": "mixing,dtmf_events", "bridgeId": "b2", "name": "queue"},
        None,
    ),
    (
        "bridges.add_channel",
        lambda c: c.bridges.add_channel("b1", "c1", role="participant", absorb_dtmf=False),
        "POST",
        "/ari/bridges/b1/addChannel",
        {"channel": "c1", "role": "participant", "absorbDTMF": "false"},
        None,
    ),
    (
        "bridges.remove_channel",
        lambda c: c.bridges.remove_channel("b1", "c1"),
        "POST",
        "/ari/bridges/b1/removeChannel",
        {"channel": "c1"},
        None,
    ),
    (
        "bridges.play",
        lambda c: c.bridges.play("b1", "sound:queue-periodic-announce"),
        "POST",
        "/ari/bridges/b1/play",
        {"media": "sound:queue-periodic-announce"},
        None,
    ),
    (
        "bridges.moh_start",
        lambda c: c.bridges.moh_start("b1"),
        "POST",
        "/ari/bridges/b1/moh",
        {},
        None,
    ),
    ("bridges.moh_stop", lambda c: c.bridges.moh_stop("b1"), "DELETE", "/ari/bridges/b1/moh", {}, None),
    ("bridges.destroy", lambda c: c.bridges.destroy("b1"), "DELETE", "/ari/bridges/b1", {}, None),
    ("playbacks.get", lambda c: c.playbacks.get("pb1"), "GET", "/ari/playbacks/pb1", {}, None),
    (
        "playbacks.control",
        lambda c: c.playbacks.control("pb1", "pause"),
        "POST",
        "/ari/playbacks/pb1/control",
        {"operation": "pause"},
        None,
    ),
    ("playbacks.stop", lambda c: c.playbacks.stop("pb1"), "DELETE", "/ari/playbacks/pb1", {}, None),
    (
        "recordings.get_live",
        lambda c: c.recordings.get_live("r1"),
        "GET",
        "/ari/recordings/live/r1",
        {},
        None,
    ),
    ("recordings.stop", lambda c: c.recordings.stop("r1"), "POST", "/ari/recordings/live/r1/stop", {}, None),
    ("recordings.cancel", lambda c: c.recordings.cancel("r1"), "DELETE", "/ari/recordings/live/r1", {}, None),
    (
        "recordings.pause",
        lambda c: c.recordings.pause("r1"),
        "POST",
        "/ari/recordings/live/r1/pause",
        {},
        None,
    ),
    (
        "recordings.unpause",
        lambda c: c.recordings.unpause("r1"),
        "DELETE",
        "/ari/recordings/live/r1/pause",
        {},
        None,
    ),
    ("recordings.mute", lambda c: c.recordings.mute("r1"), "POST", "/ari/recordings/live/r1/mute", {}, None),
    (
        "recordings.unmute",
        lambda c: c.recordings.unmute("r1"),
        "DELETE",
        "/ari/recordings/live/r1/mute",
        {},
        None,
    ),
    (
        "recordings.list_stored",
        lambda c: c.recordings.list_stored(),
        "GET",
        "/ari/recordings/stored",
        {},
        None,
    ),
    (
        "recordings.get_stored",
        lambda c: c.recordings.get_stored("s1"),
        "GET",
        "/ari/recordings/stored/s1",
        {},
        None,
    ),
    (
        "recordings.copy_stored",
        lambda c: c.recordings.copy_stored("s1", "case-7"),
        "POST",
        "/ari/recordings/stored/s1/copy",
        {"destinationRecordingName": "case-7"},
        None,
    ),
    (
        "recordings.delete_stored",
        lambda c: c.recordings.delete_stored("s1"),
        "DELETE",
        "/ari/recordings/stored/s1",
        {},
        None,
    ),
    (
        "recordings.download",
        lambda c: c.recordings.download("s1"),
        "GET",
        "/ari/recordings/stored/s1/file",
        {},
        None,
    ),
    ("endpoints.list", lambda c: c.endpoints.list(), "GET", "/ari/endpoints", {}, None),
    ("endpoints.list tech", lambda c: c.endpoints.list("PJSIP"), "GET", "/ari/endpoints/PJSIP", {}, None),
    (
        "endpoints.get",
        lambda c: c.endpoints.get("PJSIP", "agent1"),
        "GET",
        "/ari/endpoints/PJSIP/agent1",
        {},
        None,
    ),
    ("device_states.list", lambda c: c.device_states.list(), "GET", "/ari/deviceStates", {}, None),
    (
        "device_states.get",
        lambda c: c.device_states.get("Stasis:agent1"),
        "GET",
        "/ari/deviceStates/Stasis%3Aagent1",
        {},
        None,
    ),
    (
        "device_states.update",
        lambda c: c.device_states.update("Stasis:agent1", "INUSE"),
        "PUT",
        "/ari/deviceStates/Stasis%3Aagent1",
        {"deviceState": "INUSE"},
        None,
    ),
    (
        "device_states.delete",
        lambda c: c.device_states.delete("Stasis:agent1"),
        "DELETE",
        "/ari/deviceStates/Stasis%3Aagent1",
        {},
        None,
    ),
    ("applications.list", lambda c: c.applications.list(), "GET", "/ari/applications", {}, None),
    ("applications.get", lambda c: c.applications.get(), "GET", "/ari/applications/hotline", {}, None),
    (
        "applications.subscribe",
        lambda c: c.applications.subscribe("endpoint:PJSIP/agent1"),
        "POST",
        "/ari/applications/hotline/subscription",
        {"eventSource": "endpoint:PJSIP/agent1"},
        None,
    ),
    (
        "applications.unsubscribe",
        lambda c: c.applications.unsubscribe("deviceState:Stasis:agent1"),
        "DELETE",
        "/ari/applications/hotline/subscription",
        {"eventSource": "deviceState:Stasis:agent1"},
        None,
    ),
    (
        "applications.event_filter",
        lambda c: c.applications.event_filter(allowed=["StasisStart", "ChannelDtmfReceived"]),
        "PUT",
        "/ari/applications/hotline/eventFilter",
        {},
        {"allowed": [{"type": "StasisStart"}, {"type": "ChannelDtmfReceived"}]},
    ),
]


@pytest.mark.parametrize(
    ("call", "method", "path", "query", "body"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_method_sends_request(
    fake: FakeAri, world: Running, call: Call, method: str, path: str, query: dict[str, str], body: Any
) -> None:
    await call(world.client)
    (req,) = fake.requests
    # request.path is decoded by aiohttp; compare with the raw path we expect on the wire.
    assert (req.method, req.path.replace(":", "%3A")) == (method, path)
    assert req.query == query
    assert req.body == body
    assert req.transport == transport_of(world, path)
    if req.transport == "http":
        assert req.headers["Authorization"] == EXPECTED_AUTH
    assert PASSWORD not in str(req.query)


async def test_results_are_typed_models(fake: FakeAri, world: Running) -> None:
    c = world.client
    info = await c.asterisk.info()
    assert (
        isinstance(info, AsteriskInfo)
        and info.version == "22.5.0"
        and info.raw["system"]["version"] == "22.5.0"
    )
    ch = await c.channels.get("c1")
    assert isinstance(ch, Channel) and ch.id == "c1" and ch.caller.number == "5550100"
    assert ch.dialplan.exten == "183" and ch.in_app("hotline") and ch.raw["id"] == "c1"
    assert await c.channels.get_variable("c1", "GREETED") == "yes"
    pb = await c.channels.play("c1", "sound:hello-world", playback_id="p7")
    assert isinstance(pb, Playback) and (pb.id, pb.target_uri) == ("p7", "channel:c1")
    br = await c.bridges.create(bridge_id="b2")
    assert isinstance(br, Bridge) and br.id == "b2"
    await c.bridges.add_channel("b2", "c1")
    assert (await c.bridges.get("b2")).channels == ["c1"]
    rec = await c.channels.record("c1", "r2")
    assert isinstance(rec, LiveRecording) and rec.target_uri == "channel:c1"
    copy = await c.recordings.copy_stored("s1", "s2")
    assert isinstance(copy, StoredRecording) and copy.name == "s2"
    assert (await c.recordings.download("s1")).startswith(b"RIFF")
    assert [e.resource for e in await c.endpoints.list()] == ["agent1"]
    assert (await c.device_states.get("Stasis:agent1")).state == "NOT_INUSE"
    assert (await c.applications.get()).channel_ids == ["c1"]
    assert (await c.asterisk.ping()).ping == "pong"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest),
        (404, NotFound),
        (409, Conflict),
        (422, Unprocessable),
        (500, AriError),
        (412, AriError),
    ],
)
async def test_errors_map_to_classes(fake: FakeAri, world: Running, status: int, cls: type[AriError]) -> None:
    fake.fail("POST", "/channels/c1/answer", status, "Channel not in Stasis application")
    with pytest.raises(AriError) as info:
        await world.client.channels.answer("c1")
    err = info.value
    assert type(err) is cls
    assert (err.status, err.message, err.method, err.path) == (
        status,
        "Channel not in Stasis application",
        "POST",
        "/channels/c1/answer",
    )
    assert "POST /channels/c1/answer: " in str(err)


async def test_real_not_found_and_unprocessable(fake: FakeAri, world: Running) -> None:
    with pytest.raises(NotFound):
        await world.client.channels.answer("nope")
    fake.make_channel("snoop-1", app=None)  # not yet in Stasis: adding it to a bridge answers 422
    with pytest.raises(Unprocessable):
        await world.client.bridges.add_channel("b1", "snoop-1")


async def test_hangup_of_gone_channel_is_not_an_error(fake: FakeAri, world: Running) -> None:
    await world.client.channels.hangup("c1")
    await world.client.channels.hangup("c1")  # already gone: 404 swallowed
    assert [r.method for r in fake.requests_to("DELETE", "/ari/channels/c1")] == ["DELETE", "DELETE"]
    assert "c1" not in fake.channels
    # Other failures of hang-up still reach the caller.
    fake.make_channel("c2")
    fake.fail("DELETE", "/channels/c2", 500, "boom")
    with pytest.raises(AriError) as info:
        await world.client.channels.hangup("c2")
    assert info.value.status == 500


async def test_hangup_emits_events(fake: FakeAri, world: Running) -> None:
    await world.client.channels.hangup("c1", reason="normal")
    await world.rec.wait_type(ev.ChannelDestroyed)
    kinds = [type(e) for e in world.rec.events if not isinstance(e, ev.Connected)]
    # c1 sits in bridge b1, so it leaves it first; the recording r1 of it ends before it leaves the app.
    assert kinds == [
        ev.ChannelLeftBridge, ev.ChannelHangupRequest, ev.RecordingFinished, ev.StasisEnd, ev.ChannelDestroyed
    ]  # fmt: skip
    assert "r1" in fake.stored_recordings and "r1" not in fake.live_recordings


async def test_ids_are_quoted_in_paths(fake: FakeAri, world: Running) -> None:
    fake.stored_recordings["calls/7"] = {"name": "calls/7", "format": "wav"}
    assert (await world.client.recordings.get_stored("calls/7")).name == "calls/7"


async def test_wrong_password_is_401(fake: FakeAri, make_client: ClientFactory) -> None:
    async with make_client(password="wrong") as client:
        with pytest.raises(AriError) as info:
            await client.asterisk.info()
    assert info.value.status == 401
    assert "wrong" not in str(info.value)


async def test_connection_refused_is_connection_error(fake: FakeAri, make_client: ClientFactory) -> None:
    port = fake.port
    await fake.stop()
    async with make_client(base_url=f"http://127.0.0.1:{port}") as client:
        with pytest.raises(AriConnectionError) as info:
            await client.asterisk.ping()
    assert info.value.status is None
    assert isinstance(info.value, AriError)


async def test_request_timeout_is_connection_error(fake: FakeAri, make_client: ClientFactory) -> None:
    gate = fake.block("GET", "/asterisk/ping")
    async with make_client(request_timeout=0.05) as client:
        with pytest.raises(AriConnectionError, match="timed out"):
            await client.asterisk.ping()
    gate.set()


async def test_closed_client_raises_connection_error(make_client: ClientFactory) -> None:
    client = make_client()
    with pytest.raises(AriConnectionError):
        await client.asterisk.ping()


@pytest.mark.parametrize("url", ["http://hotline:pw@127.0.0.1:8088", "ftp://127.0.0.1", "127.0.0.1:8088"])
def test_bad_base_url_rejected(url: str) -> None:
    with pytest.raises(ValueError):
        AriClient(url, USER, PASSWORD, "hotline")


def test_repr_has_no_password() -> None:
    client = AriClient("http://127.0.0.1:8088", USER, PASSWORD, "hotline")
    assert PASSWORD not in repr(client)
    assert PASSWORD not in str(vars(client))
