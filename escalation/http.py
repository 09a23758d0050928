"""Incident routes: supervisors see and resolve incidents; an agent on a call (or a supervisor)
presses the urgent button; a paged team acknowledges with its page's token.

The acknowledgement link sent by SMS and e-mail is ``/ack#<token>``: the token is in the URL's
fragment, which browsers never send, so it reaches no server log; the page posts it to
``POST /api/pages/ack``, which webhook receivers call directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from escalation import store as incidents
from escalation.errors import NotFound
from escalation.flow import Escalations
from escalation.models import Incident, Page, Severity
from escalation.store import Signal
from hotline.auth import Role
from hotline.calls import CallLog
from hotline.db import Store
from hotline.models import AGENT_ON_CALL
from hotline.web import ApiError, current_user, json_object, public, requires

ACK_PAGE = """<!doctype html><html lang="tr"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Alo 183 — Onay / Acknowledge</title>
<main><h1>Alo 183 acil bildirim / urgent page</h1>
<p>Bu bildirimi üstleniyor musunuz? / Do you take this incident?</p>
<button id="ack">Kabul ediyorum / I accept</button><p id="out" role="status"></p></main>
<script>
document.getElementById("ack").onclick = async () => {
  const r = await fetch("/api/pages/ack", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({token: location.hash.slice(1)})});
  document.getElementById("out").textContent = r.ok ? "Onaylandı / Acknowledged" : "Geçersiz / Not valid";
};
</script></html>"""


@dataclass
class IncidentRoutes:
    store: Store
    escalations: Escalations
    calls: CallLog

    def install(self, webapp: web.Application) -> None:
        add = webapp.router
        add.add_get("/api/incidents", self.listing)
        add.add_get("/api/incidents/{incident}", self.read)
        add.add_post("/api/incidents/{incident}/resolve", self.resolve)
        add.add_post("/api/calls/{call}/urgent", self.urgent)
        add.add_post("/api/pages/ack", self.acknowledge)
        add.add_get("/ack", self.ack_page)

    @requires(Role.supervisor)
    async def listing(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {"incidents": [_shown(i) for i in await incidents.open_incidents(self.store)]}
        )

    @requires(Role.supervisor)
    async def read(self, request: web.Request) -> web.Response:
        incident_id = request.match_info["incident"]
        try:
            incident = await incidents.get_incident(self.store, incident_id)
        except NotFound:
            raise ApiError(404, "not_found", "no such incident") from None
        timeline = await incidents.timeline(self.store, incident_id)
        pages = await incidents.pages_of(self.store, incident_id)
        return web.json_response(
            {
                **_shown(incident),
                "timeline": [
                    e.model_dump(mode="json", warnings=False, exclude={"incident_id"}) for e in timeline
                ],
                "pages": [_page(p) for p in pages],
            }
        )

    @requires(Role.supervisor)
    async def resolve(self, request: web.Request) -> web.Response:
        data = await json_object(request)
        note = data.get("note", "")
        if not isinstance(note, str):
            raise ApiError(400, "invalid", "note: text")
        try:
            incident = await self.escalations.resolve(
                request.match_info["incident"], current_user(request).username, note
            )
        except NotFound:
            raise ApiError(404, "not_found", "no such incident") from None
        return web.json_response(_shown(incident))

    async def urgent(self, request: web.Request) -> web.Response:
        """The urgent button: ``{"category": …, "severity": …, "note": …}``."""
        user, call_id = current_user(request), request.match_info["call"]
        call = await self.calls.get(call_id)
        if call is None or not (user.has(Role.supervisor) or await self._on_call(call_id, user.agent_id)):
            raise ApiError(404, "not_found", "no such call among yours")
        data = await json_object(request)
        try:
            severity = Severity(str(data.get("severity", "high")))
        except ValueError:
            raise ApiError(400, "invalid", f"severity: one of {[s.value for s in Severity]}") from None
        category, note = data.get("category") or call.category or "emergency", data.get("note", "")
        if not isinstance(category, str) or not isinstance(note, str):
            raise ApiError(400, "invalid", "category and note are text")
        signal = Signal(
            "button",
            category,
            severity,
            call_id=call_id,
            caller_number=call.caller_number,
            summary=note[:500],
            evidence={"note": note[:500]} if note else {},
            by=user.username,
        )
        incident = await self.escalations.signal(signal)
        return web.json_response(_shown(incident), status=201)

    @public
    async def acknowledge(self, request: web.Request) -> web.Response:
        data = await json_object(request)
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise ApiError(400, "invalid", "token: the page's token")
        incident = await self.escalations.acknowledge_token(token)
        if incident is None:
            raise ApiError(404, "not_found", "no such page")
        return web.json_response({"incident": incident.id, "status": str(incident.status)})

    @public
    async def ack_page(self, _request: web.Request) -> web.Response:
        return web.Response(
            text=ACK_PAGE, content_type="text/html", headers={"Referrer-Policy": "no-referrer"}
        )

    async def _on_call(self, call_id: str, agent_id: str | None) -> bool:
        if not agent_id:
            return False
        events = await self.calls.events(call_id)
        return any(e.kind in AGENT_ON_CALL and e.data.get("agent") == agent_id for e in events)


def _shown(incident: Incident) -> dict[str, Any]:
    return incident.model_dump(mode="json", warnings=False)


def _page(page: Page) -> dict[str, Any]:
    # The token and code acknowledge the incident: never shown back.
    return page.model_dump(mode="json", warnings=False, exclude={"token", "code"})
