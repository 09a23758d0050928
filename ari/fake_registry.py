"""Recordings, endpoints, device states and applications of the fake Asterisk (see
:mod:`ari.fake_model`): what a test looks up or sets, rather than the calls themselves."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .fake_model import AsteriskModel, HttpError, JsonDict, Match, _json


class AsteriskRegistry(AsteriskModel):
    # recordings

    async def _record(self, target_uri: str, p: dict[str, str]) -> web.Response:
        name = self._require(p, "name")
        if name in self.live_recordings:
            raise HttpError(409, "Recording already in progress")
        recording = {
            "name": name,
            "format": p.get("format", "wav"),
            "target_uri": target_uri,
            "state": "recording",
        }
        self.live_recordings[name] = recording
        await self.emit({"type": "RecordingStarted", "recording": dict(recording)})
        return _json(recording, 201)

    async def _channel_record(
        self, _r: web.Request | None, m: Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        self._channel(m)
        return await self._record(f"channel:{m.group(1)}", p)

    async def _finish_recording(self, recording: JsonDict, state: str) -> None:
        """Stored (unless cancelled) and announced, as when its channel hangs up or it is stopped."""
        self.live_recordings.pop(recording["name"], None)
        recording["state"] = state
        if state == "done":
            self.stored_recordings[recording["name"]] = {
                "name": recording["name"],
                "format": recording["format"],
            }
        await self.emit({"type": "RecordingFinished", "recording": recording})

    def _live(self, m: Match) -> JsonDict:
        recording = self.live_recordings.get(m.group(1))
        if recording is None:
            raise HttpError(404, "Recording not found")
        return recording

    async def _live_get(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        return _json(self._live(m))

    async def _live_stop(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        await self._finish_recording(self._live(m), "done")
        return web.Response(status=204)

    async def _live_cancel(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        await self._finish_recording(self._live(m), "canceled")
        return web.Response(status=204)

    async def _live_noop(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        self._live(m)
        return web.Response(status=204)

    def _stored(self, m: Match) -> JsonDict:
        recording = self.stored_recordings.get(m.group(1))
        if recording is None:
            raise HttpError(404, "Recording not found")
        return recording

    async def _stored_list(self, *_: Any) -> web.Response:
        return _json(list(self.stored_recordings.values()))

    async def _stored_get(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        return _json(self._stored(m))

    async def _stored_delete(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        del self.stored_recordings[self._stored(m)["name"]]
        return web.Response(status=204)

    async def _stored_copy(
        self, _r: web.Request | None, m: Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        source = self._stored(m)
        dest = self._require(p, "destinationRecordingName")
        if dest in self.stored_recordings:
            raise HttpError(409, "A recording with the same name already exists on the system")
        self.stored_recordings[dest] = {"name": dest, "format": source["format"]}
        return _json(self.stored_recordings[dest])

    async def _stored_file(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        self._stored(m)
        return web.Response(body=b"RIFF\x00\x00\x00\x00WAVEfake", content_type="audio/wav")

    # endpoints, device states, applications

    async def _endpoints_list(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        tech = m.group(1) if m.count else None
        return _json([e for e in self.endpoints if tech is None or e["technology"] == tech])

    async def _endpoint_get(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        for e in self.endpoints:
            if e["technology"] == m.group(1) and e["resource"] == m.group(2):
                return _json(e)
        raise HttpError(404, "Endpoint not found")

    async def _device_states_list(self, *_: Any) -> web.Response:
        return _json([{"name": n, "state": s} for n, s in self.device_states.items()])

    async def _device_state_get(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        name = m.group(1)
        if name not in self.device_states:
            raise HttpError(404, "Device state not found")
        return _json({"name": name, "state": self.device_states[name]})

    async def _device_state_put(
        self, _r: web.Request | None, m: Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        name = m.group(1)
        if not name.startswith("Stasis:"):
            raise HttpError(409, "Uncontrolled device specified")
        state = self._require(p, "deviceState")
        self.device_states[name] = state
        await self.emit({"type": "DeviceStateChanged", "device_state": {"name": name, "state": state}})
        return web.Response(status=204)

    async def _device_state_delete(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        if self.device_states.pop(m.group(1), None) is None:
            raise HttpError(404, "Device state not found")
        return web.Response(status=204)

    def _application(self, name: str) -> JsonDict:
        channel_ids = [
            c["id"]
            for c in self.channels.values()
            if c["dialplan"]["app_name"] == "Stasis" and c["dialplan"]["app_data"].split(",")[0] == name
        ]
        sources = self.subscriptions.get(name, set())
        filters = self.event_filters.get(name, {})
        return {
            "name": name,
            "channel_ids": channel_ids,
            "bridge_ids": [s.split(":", 1)[1] for s in sources if s.startswith("bridge:")],
            "endpoint_ids": [s.split(":", 1)[1] for s in sources if s.startswith("endpoint:")],
            "device_names": [s.split(":", 1)[1] for s in sources if s.startswith("deviceState:")],
            "events_allowed": filters.get("allowed", []),
            "events_disallowed": filters.get("disallowed", []),
        }

    def _known_apps(self) -> set[str]:
        return {a for s in self._sockets for a in s.apps}

    def _app_name(self, m: Match) -> str:
        name = m.group(1)
        if name not in self._known_apps():
            raise HttpError(404, "Application not found")
        return name

    async def _applications_list(self, *_: Any) -> web.Response:
        return _json([self._application(a) for a in sorted(self._known_apps())])

    async def _application_get(self, _r: web.Request | None, m: Match, *_: Any) -> web.Response:
        return _json(self._application(self._app_name(m)))

    async def _application_subscribe(
        self, _r: web.Request | None, m: Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        name = self._app_name(m)
        sources = [s for s in self._require(p, "eventSource").split(",") if s]
        self.subscriptions.setdefault(name, set()).update(sources)
        return _json(self._application(name))

    async def _application_unsubscribe(
        self, _r: web.Request | None, m: Match, p: dict[str, str], _b: Any
    ) -> web.Response:
        name = self._app_name(m)
        sources = [s for s in self._require(p, "eventSource").split(",") if s]
        current = self.subscriptions.setdefault(name, set())
        if not set(sources) <= current:
            raise HttpError(409, "Application not subscribed to event source")
        current.difference_update(sources)
        return _json(self._application(name))

    async def _application_filter(self, _r: web.Request | None, m: Match, _p: Any, body: Any) -> web.Response:
        name = self._app_name(m)
        body = body if isinstance(body, dict) else {}
        self.event_filters[name] = {k: body[k] for k in ("allowed", "disallowed") if k in body}
        return _json(self._application(name))
