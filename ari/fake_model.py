"""The in-memory Asterisk behind the fake ARI server (:mod:`ari.testing`): its channels, bridges,
playbacks, recordings, endpoints, device states and applications, and the REST operations on
them, emitting the events Asterisk would. :class:`~ari.testing.FakeAri` serves it over HTTP and
a WebSocket and adds the controls tests drive it with.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import web

JsonDict = dict[str, Any]


def ari_time() -> str:
    """Now, in Asterisk's timestamp format (``2024-05-01T10:00:00.123+0000``)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


@dataclass(slots=True, eq=False)
class Socket:
    """An event WebSocket the fake serves, and the applications it carries."""

    ws: web.WebSocketResponse
    request: web.Request
    apps: set[str]
    stalled: bool = False
    sent: int = field(default=0)


class Match:
    """A route match whose groups are the decoded path segments."""

    def __init__(self, found: re.Match[str]) -> None:
        self._groups = [unquote(g) for g in found.groups()]

    @property
    def count(self) -> int:
        return len(self._groups)

    def group(self, index: int) -> str:
        return self._groups[index - 1]


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AsteriskModel:
    """What Asterisk holds, and the REST operations on it. Mixed into FakeAri, which owns the
    state below (set in its ``__init__``) and the event socket (``emit``)."""

    channels: dict[str, JsonDict]
    bridges: dict[str, JsonDict]
    playbacks: dict[str, JsonDict]
    live_recordings: dict[str, JsonDict]
    snooping: dict[str, str]  # snoop channel -> the channel it listens to
    # Recordings are modelled in fake_registry.
    _record: Callable[[str, dict[str, str]], Awaitable[web.Response]]
    _finish_recording: Callable[[JsonDict, str], Awaitable[None]]
    stored_recordings: dict[str, JsonDict]
    device_states: dict[str, str]
    endpoints: list[JsonDict]
    variables: dict[str, dict[str, str]]
    event_filters: dict[str, JsonDict]
    subscriptions: dict[str, set[str]]
    auto_finish_playbacks: bool
    auto_dial_answer: bool
    create_reply_delay: float | None
    asterisk_id: str
    asterisk_version: str
    _ids: itertools.count[int]
    _tasks: set[asyncio.Task[Any]]
    _sockets: list[Socket]

    async def emit(self, event: JsonDict, app: str | None = None) -> int:
        raise NotImplementedError

    def new_id(self) -> str:
        return f"{int(time.time())}.{next(self._ids)}"

    def make_channel(
        self,
        channel_id: str | None = None,
        *,
        name: str | None = None,
        caller: str = "5550100",
        caller_name: str = "",
        exten: str = "183",
        context: str = "hotline-in",
        state: str = "Ring",
        app: str | None = "hotline",
        args: Iterable[str] = (),
        language: str = "tr",
    ) -> JsonDict:
        """Add a channel to the model (no event); ``app`` None means not in Stasis."""
        cid = channel_id or self.new_id()
        app_data = ",".join([app, *args]) if app else ""
        channel = {
            "id": cid,
            "name": name or f"PJSIP/caller-{next(self._ids):08x}",
            "state": state,
            "protocol_id": "",
            "caller": {"name": caller_name, "number": caller},
            "connected": {"name": "", "number": ""},
            "accountcode": "",
            "dialplan": {
                "context": context,
                "exten": exten,
                "priority": 1,
                "app_name": "Stasis" if app else "",
                "app_data": app_data,
            },
            "creationtime": ari_time(),
            "language": language,
        }
        self.channels[cid] = channel
        self.variables.setdefault(cid, {})
        return channel

    async def finish_playback(self, playback_id: str) -> None:
        playback = self.playbacks.pop(playback_id, None)
        if playback is not None:
            playback["state"] = "done"
            await self.emit({"type": "PlaybackFinished", "playback": playback})

    # helpers

    def _channel(self, match: Match, status: int = 404) -> JsonDict:
        channel = self.channels.get(match.group(1))
        if channel is None:
            raise HttpError(status, "Channel not found")
        return channel

    def _bridge(self, match: Match) -> JsonDict:
        bridge = self.bridges.get(match.group(1))
        if bridge is None:
            raise HttpError(404, "Bridge not found")
        return bridge

    def _later(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _require(params: Mapping[str, str], name: str) -> str:
        value = params.get(name)
        if not value:
            raise HttpError(400, f"{name} is required")
        return value

    async def _hangup(self, channel_id: str, cause: int) -> None:
        channel = self.channels.get(channel_id)
        if channel is None:
            return
        for bridge in self.bridges.values():
            if channel_id in bridge["channels"]:
                bridge["channels"].remove(channel_id)
                await self.emit({"type": "ChannelLeftBridge", "bridge": bridge, "channel": channel})
        await self.emit({"type": "ChannelHangupRequest", "cause": cause, "soft": False, "channel": channel})
        # As in Asterisk: a recording ends (and is stored) with its channel, before it leaves the app.
        for recording in [
            r for r in self.live_recordings.values() if r["target_uri"] == f"channel:{channel_id}"
        ]:
            await self._finish_recording(recording, "done")
        if channel["dialplan"]["app_name"] == "Stasis":
            await self.emit({"type": "StasisEnd", "channel": channel})
        del self.channels[channel_id]
        self.variables.pop(channel_id, None)
        await self.emit(
            {"type": "ChannelDestroyed", "cause": cause, "cause_txt": "Normal Clearing", "channel": channel}
        )
        # As in Asterisk: a snoop ends with the channel it listens to.
        for snoop in [s for s, target in self.snooping.items() if target == channel_id]:
            del self.snooping[snoop]
            await self._hangup(snoop, cause)

    async def _stasis_start_later(self, channel: JsonDict, args: list[str]) -> None:
        await self.emit({"type": "StasisStart", "args": args, "channel": channel})

    # asterisk

    async def _asterisk_info(self, *_: Any) -> web.Response:
        return _json(
            {
                "build": {
                    "os": "Linux",
                    "kernel": "6.1.0",
                    "machine": "x86_64",
                    "options": "",
                    "date": "",
                    "user": "",
                },
                "system": {"version": self.asterisk_version, "entity_id": self.asterisk_id},
                "config": {"name": "fake", "default_language": "en", "setid": {"user": "", "group": ""}},
                "status": {"startup_time": ari_time(), "last_reload_time": ari_time()},
            }
        )

    async def _asterisk_ping(self, *_: Any) -> web.Response:
        return _json({"asterisk_id": self.asterisk_id, "ping": "pong", "timestamp": ari_time()})

    # channels

    async def _channels_list(self, *_: Any) -> web.Response:
        return _json(list(self.channels.values()))

    async def _channels_originate(
        self, _r: web.Request | None, _m: Any, p: dict[str, str], _b: Any
    ) -> web.Response:
        endpoint = self._require(p, "endpoint")
        app = p.get("app")
        args = [a for a in p.get("appArgs", "").split(",") if a]
        channel = self.make_channel(
            p.get("channelId"),
            name=f"{endpoint}-{next(self._ids):08x}",
            caller=p.get("callerId", ""),
            exten=p.get("extension", ""),
            context=p.get("context", ""),
            state="Down",
            app=app,
            args=args,
        )
        if app:
            self._later(self._stasis_start_later(channel, args))
        return _json(channel)

    async def _channels_create(
        self, _r: web.Request | None, _m: Any, p: dict[str, str], _b: Any
    ) -> web.Response:
        endpoint = self._require(p, "endpoint")
        app = self._require(p, "app")
        args = [a for a in p.get("appArgs", "").split(",") if a]
        channel = self.make_channel(
            p.get("channelId"), name=f"{endpoint}-{next(self._ids):08x}", state="Down", app=app, args=args
        )
        if self.create_reply_delay is not None:
            await self._stasis_start_later(channel, args)
            await asyncio.sleep(self.create_reply_delay)
        else:
            self._later(self._stasis_start_later(channel, args))
        return _json(channel)

    async def _channels_external_media(
        self, _r: web.Request | None, _m: Any, p: dict[str, str], _b: Any
    ) -> web.Response:
        host = self._require(p, "external_host")
        self._require(p, "format")
        app = self._require(p, "app")
        channel = self.make_channel(
            p.get("channelId"),
            name=f"UnicastRTP/{host}-{next(self._ids):08x}",
            state="Up",
            app=app,
            caller="",
        )
        channel["channelvars"] = {"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1", "UNICASTRTP_LOCAL_PORT": "40000"}
        # As Asterisk does, ``data`` comes back as the StasisStart arguments.
        self._later(self._stasis_start_later(channel, [a for a in p.get("data", "").split(",") if a]))
        return _json(channel)

    async def _channel_get(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        return _json(self._channel(m))

    async def _channel_hangup(
        self, _r: web.Request | None, m: Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        self._channel(m)
        await self._hangup(m.group(1), 16)
        return web.Response(status=204)

    async def _channel_answer(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        channel = self._channel(m)
        if channel["state"] != "Up":
            channel["state"] = "Up"
            await self.emit({"type": "ChannelStateChange", "channel": channel})
        return web.Response(status=204)

    async def _channel_dial(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        channel = self._channel(m)
        if not self.auto_dial_answer:
            channel["state"] = "Ringing"
            await self.emit({"type": "Dial", "peer": channel, "dialstatus": "RINGING", "dialstring": ""})
            return web.Response(status=204)
        channel["state"] = "Up"
        await self.emit({"type": "Dial", "peer": channel, "dialstatus": "ANSWER", "dialstring": ""})
        await self.emit({"type": "ChannelStateChange", "channel": channel})
        return web.Response(status=204)

    async def _channel_noop(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        self._channel(m)
        return web.Response(status=204)

    async def _channel_leave(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        channel = self._channel(m)
        if channel["dialplan"]["app_name"] != "Stasis":
            raise HttpError(409, "Channel not in Stasis application")
        channel["dialplan"]["app_name"] = ""
        channel["dialplan"]["app_data"] = ""
        await self.emit({"type": "StasisEnd", "channel": channel})
        return web.Response(status=204)

    async def _play(self, target_uri: str, p: dict[str, str]) -> web.Response:
        media = [x for x in self._require(p, "media").split(",") if x]
        playback_id = p.get("playbackId") or f"pb-{next(self._ids)}"
        playback = {
            "id": playback_id,
            "media_uri": media[0],
            "target_uri": target_uri,
            "language": p.get("lang", "en"),
            "state": "queued",
        }
        self.playbacks[playback_id] = playback
        self._later(self._run_playback(playback, media))
        return _json(playback, 201)

    async def _run_playback(self, playback: JsonDict, media: list[str]) -> None:
        playback["state"] = "playing"
        await self.emit({"type": "PlaybackStarted", "playback": dict(playback)})
        for uri in media[1:]:
            playback["media_uri"] = uri
            await self.emit({"type": "PlaybackContinuing", "playback": dict(playback)})
        if self.auto_finish_playbacks:
            await self.finish_playback(playback["id"])

    async def _channel_play(
        self, _r: web.Request | None, m: Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        self._channel(m)
        return await self._play(f"channel:{m.group(1)}", p)

    async def _channel_var_get(
        self, _r: web.Request | None, m: Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        self._channel(m)
        name = self._require(p, "variable")
        variables = self.variables.setdefault(m.group(1), {})
        if name not in variables:
            raise HttpError(404, "Provided variable was not found")
        return _json({"value": variables[name]})

    async def _channel_var_set(
        self, _r: web.Request | None, m: Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        channel = self._channel(m)
        name = self._require(p, "variable")
        value = p.get("value", "")
        self.variables.setdefault(m.group(1), {})[name] = value
        await self.emit({"type": "ChannelVarset", "variable": name, "value": value, "channel": channel})
        return web.Response(status=204)

    async def _channel_snoop(
        self, _r: web.Request | None, m: Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        self._channel(m)
        app = self._require(p, "app")
        args = [a for a in p.get("appArgs", "").split(",") if a]
        snoop = self.make_channel(
            p.get("snoopId"), name=f"Snoop/{m.group(1)}-{next(self._ids):08x}", state="Up", app=app, args=args
        )
        self.snooping[snoop["id"]] = m.group(1)
        self._later(self._stasis_start_later(snoop, args))
        return _json(snoop)

    # bridges

    async def _bridges_list(self, *_: Any) -> web.Response:
        return _json(list(self.bridges.values()))

    async def _bridges_create(
        self, _r: web.Request | None, _m: Any, p: dict[str, str], _b: Any
    ) -> web.Response:
        bridge_id = p.get("bridgeId") or f"br-{next(self._ids)}"
        bridge = {
            "id": bridge_id,
            "technology": "simple_bridge",
            "bridge_type": p.get("type", "mixing").split(",")[0],
            "bridge_class": "stasis",
            "creator": "Stasis",
            "name": p.get("name", ""),
            "channels": [],
            "creationtime": ari_time(),
            "video_mode": "none",
        }
        self.bridges[bridge_id] = bridge
        await self.emit({"type": "BridgeCreated", "bridge": bridge})
        return _json(bridge)

    async def _bridge_get(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        return _json(self._bridge(m))

    async def _bridge_destroy(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        bridge = self._bridge(m)
        for cid in list(bridge["channels"]):
            bridge["channels"].remove(cid)
            await self.emit({"type": "ChannelLeftBridge", "bridge": bridge, "channel": self.channels[cid]})
        del self.bridges[m.group(1)]
        await self.emit({"type": "BridgeDestroyed", "bridge": bridge})
        return web.Response(status=204)

    async def _bridge_add(self, _r: web.Request | None, m: Match, p: dict[str, str], _b: Any) -> web.Response:
        bridge = self._bridge(m)
        ids = [c for c in self._require(p, "channel").split(",") if c]
        for cid in ids:
            channel = self.channels.get(cid)
            if channel is None:
                raise HttpError(400, "Channel not found")
            if channel["dialplan"]["app_name"] != "Stasis":
                raise HttpError(422, "Channel not in Stasis application")
        for cid in ids:
            if cid in bridge["channels"]:
                continue
            # As Asterisk does: a channel in another bridge is moved out of it.
            for other in self.bridges.values():
                if other is not bridge and cid in other["channels"]:
                    other["channels"].remove(cid)
                    await self.emit(
                        {"type": "ChannelLeftBridge", "bridge": other, "channel": self.channels[cid]}
                    )
            bridge["channels"].append(cid)
            await self.emit({"type": "ChannelEnteredBridge", "bridge": bridge, "channel": self.channels[cid]})
        return web.Response(status=204)

    async def _bridge_remove(
        self, _r: web.Request | None, m: Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        bridge = self._bridge(m)
        ids = [c for c in self._require(p, "channel").split(",") if c]
        for cid in ids:
            if cid not in bridge["channels"]:
                raise HttpError(422, "Channel not in this bridge")
        for cid in ids:
            bridge["channels"].remove(cid)
            await self.emit({"type": "ChannelLeftBridge", "bridge": bridge, "channel": self.channels[cid]})
        return web.Response(status=204)

    async def _bridge_play(
        self, _r: web.Request | None, m: Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        self._bridge(m)
        return await self._play(f"bridge:{m.group(1)}", p)

    async def _bridge_record(
        self, _r: web.Request | None, m: Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        self._bridge(m)
        return await self._record(f"bridge:{m.group(1)}", p)

    async def _bridge_noop(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        self._bridge(m)
        return web.Response(status=204)

    # playbacks

    def _playback(self, m: Match) -> JsonDict:
        playback = self.playbacks.get(m.group(1))
        if playback is None:
            raise HttpError(404, "Playback not found")
        return playback

    async def _playback_get(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        return _json(self._playback(m))

    async def _playback_stop(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        self._playback(m)
        await self.finish_playback(m.group(1))
        return web.Response(status=204)

    async def _playback_control(
        self, _r: web.Request | None, m: Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        self._playback(m)
        if p.get("operation") not in ("restart", "pause", "unpause", "reverse", "forward"):
            raise HttpError(400, "Invalid operation")
        return web.Response(status=204)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")
