"""A call's transcript over REST, as JSON or plain text, and the transcription figures.

An agent reads the transcripts of calls they took part in; supervisors and admins read every
call's. The unredacted text is shown only to the roles ``speech.raw_roles`` names, and only where
``speech.keep_raw`` kept it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, tzinfo
from typing import Any

from aiohttp import web
from sqlmodel import col, select

from hotline.auth import Principal, Role
from hotline.calls import CallLog
from hotline.db import Store
from hotline.models import AGENT_ON_CALL
from hotline.web import ApiError, current_user, requires
from transcripts.models import TranscriptSegment
from transcripts.service import as_text


class TranscriptRoutes:
    def __init__(
        self,
        store: Store,
        calls: CallLog,
        raw_roles: Collection[str],
        status: Callable[[], dict[str, Any]],
        tz: tzinfo = UTC,
    ) -> None:
        self.store = store
        self.calls = calls
        self.raw_roles = frozenset(raw_roles)
        self.status = status
        self.tz = tz

    def install(self, webapp: web.Application) -> None:
        webapp.router.add_get("/api/calls/{call_id}/transcript", self.transcript)
        webapp.router.add_get("/api/calls/{call_id}/transcript.txt", self.transcript_text)
        webapp.router.add_get("/api/transcripts/status", self.figures)

    async def transcript(self, request: web.Request) -> web.Response:
        user, call_id = current_user(request), request.match_info["call_id"]
        segments = await self._segments(user, call_id)
        raw = user.role.value in self.raw_roles
        return web.json_response({"call_id": call_id, "segments": [s.shown(raw) for s in segments]})

    async def transcript_text(self, request: web.Request) -> web.Response:
        segments = await self._segments(current_user(request), request.match_info["call_id"])
        return web.Response(text=as_text(segments, self.tz), content_type="text/plain", charset="utf-8")

    @requires(Role.supervisor)
    async def figures(self, _request: web.Request) -> web.Response:
        return web.json_response(self.status())

    async def _segments(self, user: Principal, call_id: str) -> list[TranscriptSegment]:
        call = await self.calls.get(call_id)
        if call is None or not (user.has(Role.supervisor) or await self._took_part(user, call_id)):
            # The same answer for "no such call" and "not yours": ids of others' calls stay unknown.
            raise ApiError(404, "not_found", "no such call among yours")
        async with self.store.session() as session:
            rows = await session.exec(
                select(TranscriptSegment)
                .where(TranscriptSegment.call_id == call_id)
                .order_by(col(TranscriptSegment.start_at), col(TranscriptSegment.id))
            )
            return list(rows.all())

    async def _took_part(self, user: Principal, call_id: str) -> bool:
        if not user.agent_id:
            return False
        events = await self.calls.events(call_id)
        return any(e.kind in AGENT_ON_CALL and e.data.get("agent") == user.agent_id for e in events)
