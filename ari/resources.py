"""A typed method per ARI operation the hotline uses, one small class per resource
(``channels``, ``bridges``, ...) over :class:`~ari.rest.RestTransport`. Methods take ids and
keyword-only options, send ARI's parameter names, and return models. Options left at ``None`` are
not sent, so Asterisk applies its own defaults.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from .errors import NotFound
from .models import (
    Application,
    AsteriskInfo,
    AsteriskPing,
    Bridge,
    Channel,
    DeviceState,
    Endpoint,
    JsonDict,
    LiveRecording,
    Playback,
    StoredRecording,
)
from .rest import RestTransport


def _seg(value: str) -> str:
    """Quote one path segment (ids and recording names may hold characters special in URLs)."""
    return quote(value, safe="")


def _csv(value: str | Sequence[str]) -> str:
    return value if isinstance(value, str) else ",".join(value)


async def _maybe_missing(request: Awaitable[Any], missing_ok: bool) -> None:
    """Await ``request``; a 404 is swallowed when the caller said the target may be gone already
    (the other party hung up first, a playback ended by itself): the outcome they wanted."""
    try:
        await request
    except NotFound:
        if not missing_ok:
            raise


class _Resource:
    def __init__(self, transport: RestTransport, app: str) -> None:
        self._t = transport
        self._app = app


class Channels(_Resource):
    async def list(self) -> list[Channel]:
        """Every channel on the system (not only ours: see ``Channel.in_app``)."""
        return [Channel.from_json(c) for c in await self._t.request("GET", "/channels")]

    async def get(self, channel_id: str) -> Channel:
        return Channel.from_json(await self._t.request("GET", f"/channels/{_seg(channel_id)}"))

    async def originate(
        self,
        endpoint: str,
        *,
        extension: str | None = None,
        context: str | None = None,
        priority: int | None = None,
        label: str | None = None,
        app: str | None = None,
        app_args: str | Sequence[str] | None = None,
        caller_id: str | None = None,
        timeout: int | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
        formats: str | Sequence[str] | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """Dial ``endpoint`` and, once answered, run dialplan (extension/context) or Stasis ``app``."""
        params = {
            "endpoint": endpoint,
            "extension": extension,
            "context": context,
            "priority": priority,
            "label": label,
            "app": app,
            "appArgs": None if app_args is None else _csv(app_args),
            "callerId": caller_id,
            "timeout": timeout,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "originator": originator,
            "formats": None if formats is None else _csv(formats),
        }
        body = {"variables": dict(variables)} if variables else None
        return Channel.from_json(await self._t.request("POST", "/channels", params, body))

    async def create(
        self,
        endpoint: str,
        *,
        app: str | None = None,
        app_args: str | Sequence[str] | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
        formats: str | Sequence[str] | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """Create a channel without dialling it (then ``dial``); it enters ``app`` (ours by default)."""
        params = {
            "endpoint": endpoint,
            "app": app or self._app,
            "appArgs": None if app_args is None else _csv(app_args),
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "originator": originator,
            "formats": None if formats is None else _csv(formats),
        }
        body = {"variables": dict(variables)} if variables else None
        return Channel.from_json(await self._t.request("POST", "/channels/create", params, body))

    async def dial(self, channel_id: str, *, caller: str | None = None, timeout: int | None = None) -> None:
        await self._t.request(
            "POST", f"/channels/{_seg(channel_id)}/dial", {"caller": caller, "timeout": timeout}
        )

    async def hangup(
        self, channel_id: str, *, reason: str | None = None, reason_code: int | None = None
    ) -> None:
        """Hang up. A channel that is already gone (404) is what the caller wanted: not an error."""
        params = {"reason": reason, "reason_code": reason_code}
        try:
            await self._t.request("DELETE", f"/channels/{_seg(channel_id)}", params)
        except NotFound:
            return

    async def answer(self, channel_id: str) -> None:
        await self._t.request("POST", f"/channels/{_seg(channel_id)}/answer")

    async def ring(self, channel_id: str) -> None:
        await self._t.request("POST", f"/channels/{_seg(channel_id)}/ring")

    async def ring_stop(self, channel_id: str) -> None:
        await self._t.request("DELETE", f"/channels/{_seg(channel_id)}/ring")

    async def hold(self, channel_id: str) -> None:
        await self._t.request("POST", f"/channels/{_seg(channel_id)}/hold")

    async def unhold(self, channel_id: str) -> None:
        await self._t.request("DELETE", f"/channels/{_seg(channel_id)}/hold")

    async def moh_start(self, channel_id: str, *, moh_class: str | None = None) -> None:
        await self._t.request("POST", f"/channels/{_seg(channel_id)}/moh", {"mohClass": moh_class})

    async def moh_stop(self, channel_id: str) -> None:
        await self._t.request("DELETE", f"/channels/{_seg(channel_id)}/moh")

    async def mute(self, channel_id: str, *, direction: str = "both") -> None:
        await self._t.request("POST", f"/channels/{_seg(channel_id)}/mute", {"direction": direction})

    async def unmute(self, channel_id: str, *, direction: str = "both") -> None:
        await self._t.request("DELETE", f"/channels/{_seg(channel_id)}/mute", {"direction": direction})

    async def send_dtmf(
        self, channel_id: str, dtmf: str, *, between: int | None = None, duration: int | None = None
    ) -> None:
        params = {"dtmf": dtmf, "between": between, "duration": duration}
        await self._t.request("POST", f"/channels/{_seg(channel_id)}/dtmf", params)

    async def redirect(self, channel_id: str, endpoint: str) -> None:
        """Redirect the channel to another endpoint (it leaves our application)."""
        await self._t.request("POST", f"/channels/{_seg(channel_id)}/redirect", {"endpoint": endpoint})

    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        """ARI ``continue``: leave Stasis and carry on in the dialplan."""
        params = {"context": context, "extension": extension, "priority": priority, "label": label}
        await self._t.request("POST", f"/channels/{_seg(channel_id)}/continue", params)

    async def move(self, channel_id: str, app: str, *, app_args: str | Sequence[str] | None = None) -> None:
        params = {"app": app, "appArgs": None if app_args is None else _csv(app_args)}
        await self._t.request("POST", f"/channels/{_seg(channel_id)}/move", params)

    async def play(
        self,
        channel_id: str,
        media: str | Sequence[str],
        *,
        playback_id: str | None = None,
        lang: str | None = None,
        offsetms: int | None = None,
        skipms: int | None = None,
    ) -> Playback:
        """Play one media URI (or several in sequence), e.g. ``"sound:hello-world"``."""
        params = {
            "media": _csv(media),
            "playbackId": playback_id,
            "lang": lang,
            "offsetms": offsetms,
            "skipms": skipms,
        }
        return Playback.from_json(await self._t.request("POST", f"/channels/{_seg(channel_id)}/play", params))

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        format: str = "wav",
        max_duration_seconds: int | None = None,
        max_silence_seconds: int | None = None,
        if_exists: str | None = None,
        beep: bool | None = None,
        terminate_on: str | None = None,
    ) -> LiveRecording:
        params = {
            "name": name,
            "format": format,
            "maxDurationSeconds": max_duration_seconds,
            "maxSilenceSeconds": max_silence_seconds,
            "ifExists": if_exists,
            "beep": beep,
            "terminateOn": terminate_on,
        }
        return LiveRecording.from_json(
            await self._t.request("POST", f"/channels/{_seg(channel_id)}/record", params)
        )

    async def get_variable(self, channel_id: str, variable: str) -> str:
        result = await self._t.request(
            "GET", f"/channels/{_seg(channel_id)}/variable", {"variable": variable}
        )
        return str((result or {}).get("value") or "")

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        params = {"variable": variable, "value": value}
        await self._t.request("POST", f"/channels/{_seg(channel_id)}/variable", params)

    async def snoop(
        self,
        channel_id: str,
        *,
        spy: str | None = None,
        whisper: str | None = None,
        app: str | None = None,
        app_args: str | Sequence[str] | None = None,
        snoop_id: str | None = None,
    ) -> Channel:
        """A snoop channel (spy/whisper: none, in, out, both) in ``app``, ours by default."""
        params = {
            "spy": spy,
            "whisper": whisper,
            "app": app or self._app,
            "appArgs": None if app_args is None else _csv(app_args),
            "snoopId": snoop_id,
        }
        return Channel.from_json(await self._t.request("POST", f"/channels/{_seg(channel_id)}/snoop", params))

    async def external_media(
        self,
        *,
        external_host: str,
        format: str,
        app: str | None = None,
        channel_id: str | None = None,
        encapsulation: str | None = None,
        transport: str | None = None,
        connection_type: str | None = None,
        direction: str | None = None,
        data: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """ARI ``externalMedia``: a channel that streams the bridge's audio to/from ``external_host``."""
        params = {
            "app": app or self._app,
            "external_host": external_host,
            "format": format,
            "channelId": channel_id,
            "encapsulation": encapsulation,
            "transport": transport,
            "connection_type": connection_type,
            "direction": direction,
            "data": data,
        }
        body = {"variables": dict(variables)} if variables else None
        return Channel.from_json(await self._t.request("POST", "/channels/externalMedia", params, body))


class Bridges(_Resource):
    async def list(self) -> list[Bridge]:
        return [Bridge.from_json(b) for b in await self._t.request("GET", "/bridges")]

    async def get(self, bridge_id: str) -> Bridge:
        return Bridge.from_json(await self._t.request("GET", f"/bridges/{_seg(bridge_id)}"))

    async def create(
        self, *, type: str | Sequence[str] = "mixing", bridge_id: str | None = None, name: str | None = None
    ) -> Bridge:
        """Create a bridge; ``type`` is e.g. ``"mixing"`` or ``["mixing", "dtmf_events"]``."""
        params = {"type": _csv(type), "bridgeId": bridge_id, "name": name}
        return Bridge.from_json(await self._t.request("POST", "/bridges", params))

    async def destroy(self, bridge_id: str, *, missing_ok: bool = False) -> None:
        """Destroy a bridge; with ``missing_ok`` one that is gone already (404) is not an error."""
        await _maybe_missing(self._t.request("DELETE", f"/bridges/{_seg(bridge_id)}"), missing_ok)

    async def add_channel(
        self,
        bridge_id: str,
        channel: str | Sequence[str],
        *,
        role: str | None = None,
        absorb_dtmf: bool | None = None,
        mute: bool | None = None,
        inhibit_connected_line_updates: bool | None = None,
    ) -> None:
        params = {
            "channel": _csv(channel),
            "role": role,
            "absorbDTMF": absorb_dtmf,
            "mute": mute,
            "inhibitConnectedLineUpdates": inhibit_connected_line_updates,
        }
        await self._t.request("POST", f"/bridges/{_seg(bridge_id)}/addChannel", params)

    async def remove_channel(
        self, bridge_id: str, channel: str | Sequence[str], *, missing_ok: bool = False
    ) -> None:
        """With ``missing_ok``, a bridge or channel that is gone already (404) is not an error."""
        request = self._t.request(
            "POST", f"/bridges/{_seg(bridge_id)}/removeChannel", {"channel": _csv(channel)}
        )
        await _maybe_missing(request, missing_ok)

    async def play(
        self,
        bridge_id: str,
        media: str | Sequence[str],
        *,
        playback_id: str | None = None,
        lang: str | None = None,
        offsetms: int | None = None,
        skipms: int | None = None,
    ) -> Playback:
        params = {
            "media": _csv(media),
            "playbackId": playback_id,
            "lang": lang,
            "offsetms": offsetms,
            "skipms": skipms,
        }
        return Playback.from_json(await self._t.request("POST", f"/bridges/{_seg(bridge_id)}/play", params))

    async def record(
        self,
        bridge_id: str,
        name: str,
        *,
        format: str = "wav",
        max_duration_seconds: int | None = None,
        max_silence_seconds: int | None = None,
        if_exists: str | None = None,
        beep: bool | None = None,
        terminate_on: str | None = None,
    ) -> LiveRecording:
        params = {
            "name": name,
            "format": format,
            "maxDurationSeconds": max_duration_seconds,
            "maxSilenceSeconds": max_silence_seconds,
            "ifExists": if_exists,
            "beep": beep,
            "terminateOn": terminate_on,
        }
        return LiveRecording.from_json(
            await self._t.request("POST", f"/bridges/{_seg(bridge_id)}/record", params)
        )

    async def moh_start(self, bridge_id: str, *, moh_class: str | None = None) -> None:
        await self._t.request("POST", f"/bridges/{_seg(bridge_id)}/moh", {"mohClass": moh_class})

    async def moh_stop(self, bridge_id: str) -> None:
        await self._t.request("DELETE", f"/bridges/{_seg(bridge_id)}/moh")


class Playbacks(_Resource):
    async def get(self, playback_id: str) -> Playback:
        return Playback.from_json(await self._t.request("GET", f"/playbacks/{_seg(playback_id)}"))

    async def control(self, playback_id: str, operation: str) -> None:
        """``operation``: ``restart``, ``pause``, ``unpause``, ``reverse`` or ``forward``."""
        await self._t.request("POST", f"/playbacks/{_seg(playback_id)}/control", {"operation": operation})

    async def stop(self, playback_id: str, *, missing_ok: bool = False) -> None:
        """With ``missing_ok``, a playback that has finished already (404) is not an error."""
        await _maybe_missing(self._t.request("DELETE", f"/playbacks/{_seg(playback_id)}"), missing_ok)


class Recordings(_Resource):
    # live recordings
    async def get_live(self, name: str) -> LiveRecording:
        return LiveRecording.from_json(await self._t.request("GET", f"/recordings/live/{_seg(name)}"))

    async def stop(self, name: str) -> None:
        """Stop a live recording and keep what was recorded."""
        await self._t.request("POST", f"/recordings/live/{_seg(name)}/stop")

    async def cancel(self, name: str) -> None:
        """Stop a live recording and discard it."""
        await self._t.request("DELETE", f"/recordings/live/{_seg(name)}")

    async def pause(self, name: str) -> None:
        await self._t.request("POST", f"/recordings/live/{_seg(name)}/pause")

    async def unpause(self, name: str) -> None:
        await self._t.request("DELETE", f"/recordings/live/{_seg(name)}/pause")

    async def mute(self, name: str) -> None:
        await self._t.request("POST", f"/recordings/live/{_seg(name)}/mute")

    async def unmute(self, name: str) -> None:
        await self._t.request("DELETE", f"/recordings/live/{_seg(name)}/mute")

    # stored recordings
    async def list_stored(self) -> list[StoredRecording]:
        return [StoredRecording.from_json(r) for r in await self._t.request("GET", "/recordings/stored")]

    async def get_stored(self, name: str) -> StoredRecording:
        return StoredRecording.from_json(await self._t.request("GET", f"/recordings/stored/{_seg(name)}"))

    async def copy_stored(self, name: str, destination: str) -> StoredRecording:
        params = {"destinationRecordingName": destination}
        return StoredRecording.from_json(
            await self._t.request("POST", f"/recordings/stored/{_seg(name)}/copy", params)
        )

    async def delete_stored(self, name: str) -> None:
        await self._t.request("DELETE", f"/recordings/stored/{_seg(name)}")

    async def download(self, name: str) -> bytes:
        """The recording's audio file as stored by Asterisk."""
        return await self._t.request_bytes("GET", f"/recordings/stored/{_seg(name)}/file")


class Endpoints(_Resource):
    async def list(self, technology: str | None = None) -> list[Endpoint]:
        path = "/endpoints" if technology is None else f"/endpoints/{_seg(technology)}"
        return [Endpoint.from_json(e) for e in await self._t.request("GET", path)]

    async def get(self, technology: str, resource: str) -> Endpoint:
        return Endpoint.from_json(
            await self._t.request("GET", f"/endpoints/{_seg(technology)}/{_seg(resource)}")
        )


class DeviceStates(_Resource):
    """Custom device states (``Stasis:<name>``), e.g. an agent's presence shown on phones' BLF."""

    async def list(self) -> list[DeviceState]:
        return [DeviceState.from_json(d) for d in await self._t.request("GET", "/deviceStates")]

    async def get(self, name: str) -> DeviceState:
        return DeviceState.from_json(await self._t.request("GET", f"/deviceStates/{_seg(name)}"))

    async def update(self, name: str, state: str) -> None:
        """``state``: NOT_INUSE, INUSE, BUSY, INVALID, UNAVAILABLE, RINGING, RINGINUSE, ONHOLD."""
        await self._t.request("PUT", f"/deviceStates/{_seg(name)}", {"deviceState": state})

    async def delete(self, name: str) -> None:
        await self._t.request("DELETE", f"/deviceStates/{_seg(name)}")


class Applications(_Resource):
    async def list(self) -> list[Application]:
        return [Application.from_json(a) for a in await self._t.request("GET", "/applications")]

    async def get(self, name: str | None = None) -> Application:
        """Our application (or ``name``)."""
        return Application.from_json(await self._t.request("GET", f"/applications/{_seg(name or self._app)}"))

    async def subscribe(self, event_source: str | Sequence[str], *, name: str | None = None) -> Application:
        """Subscribe to e.g. ``"endpoint:PJSIP/agent1"`` or ``"deviceState:Stasis:agent1"``."""
        path = f"/applications/{_seg(name or self._app)}/subscription"
        return Application.from_json(await self._t.request("POST", path, {"eventSource": _csv(event_source)}))

    async def unsubscribe(self, event_source: str | Sequence[str], *, name: str | None = None) -> Application:
        path = f"/applications/{_seg(name or self._app)}/subscription"
        return Application.from_json(
            await self._t.request("DELETE", path, {"eventSource": _csv(event_source)})
        )

    async def event_filter(
        self,
        *,
        allowed: Sequence[str] | None = None,
        disallowed: Sequence[str] | None = None,
        name: str | None = None,
    ) -> Application:
        """Limit which event types Asterisk sends us; ``None`` for both clears the filter."""
        body: JsonDict = {}
        if allowed is not None:
            body["allowed"] = [{"type": t} for t in allowed]
        if disallowed is not None:
            body["disallowed"] = [{"type": t} for t in disallowed]
        path = f"/applications/{_seg(name or self._app)}/eventFilter"
        return Application.from_json(await self._t.request("PUT", path, None, body))


class AsteriskApi(_Resource):
    async def info(self, *, only: str | Sequence[str] | None = None) -> AsteriskInfo:
        params = {"only": None if only is None else _csv(only)}
        return AsteriskInfo.from_json(await self._t.request("GET", "/asterisk/info", params))

    async def ping(self) -> AsteriskPing:
        return AsteriskPing.from_json(await self._t.request("GET", "/asterisk/ping"))


__all__ = [
    "Applications",
    "AsteriskApi",
    "Bridges",
    "Channels",
    "DeviceStates",
    "Endpoints",
    "Playbacks",
    "Recordings",
]
