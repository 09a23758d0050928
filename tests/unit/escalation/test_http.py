"""The incident routes through the real web shell: supervisors read and resolve incidents, an
agent presses the urgent button on their own call only, a paged team acknowledges with its
page's token (without signing in), and the token and code are never shown back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from escalation import store as incidents
from escalation.channels import ChannelKind, Delivery, PageMessage
from escalation.config import EscalationConfig
from escalation.flow import Escalations
from escalation.http import IncidentRoutes
from hotline.auth import Role, Users
from hotline.calls import CallLog
from hotline.db import Store
from hotline.models import CallEventKind
from hotline.settings import Settings
from tests.unit.hotline import conftest as web_shell
from tests.unit.hotline.conftest import Clock
from tests.unit.hotline.test_web import PASSWORD, login, serve

Client = TestClient[web.Request, web.Application]
cheap_scrypt = web_shell.cheap_scrypt
clock = web_shell.clock
web_settings = web_shell.web_settings

CONFIG = EscalationConfig.model_validate(
    {
        "targets": {"desk": {"label": {"en": "Desk"}, "webhook": {"url": "http://127.0.0.1:9/pages"}}},
        "policies": [{"id": "default", "categories": ["*"], "levels": [{"targets": ["desk"]}]}],
    }
)


class Held:
    """A sender that never gets to send: the pages stay as the store wrote them."""

    async def send(self, message: PageMessage) -> Delivery:
        return Delivery(False, retry=True)


@dataclass
class Desk:
    client: Client
    calls: CallLog
    store: Store
    escalations: Escalations
    headers: dict[str, dict[str, str]]

    async def call(self, method: str, path: str, who: str | None, body: Any = None) -> tuple[int, Any]:
        headers = self.headers[who] if who else None
        async with self.client.request(method, path, headers=headers, json=body) as r:
            return r.status, await r.json() if r.content_type == "application/json" else await r.text()


@pytest.fixture
async def desk(web_settings: Settings, store: Store, clock: Clock) -> AsyncIterator[Desk]:
    users = Users(store, clock)
    await users.add("ayse", Role.agent, PASSWORD, "Ayşe Yılmaz", "9001")
    await users.add("mehmet", Role.agent, PASSWORD, "Mehmet Demir", "9002")
    await users.add("sema", Role.supervisor, PASSWORD, "Sema Kaya")
    calls = CallLog(store)
    escalations = Escalations(
        store,
        CONFIG,
        {ChannelKind.webhook: Held()},
        address=lambda _target, _channel: "http://127.0.0.1:9/pages",
        links=lambda page: {"ack": f"/ack#{page.token}"},
    )
    routes = IncidentRoutes(store, escalations, calls)
    async with serve(web_settings, store, clock, [routes.install]) as client:
        headers = {}
        for name in ("ayse", "mehmet", "sema"):
            token = (await login(client, name, PASSWORD, bearer=True))["token"]
            headers[name] = {"Authorization": f"Bearer {token}"}
        yield Desk(client, calls, store, escalations, headers)
        await calls.flush()


async def ayses_call(desk: Desk) -> str:
    call, _ = await desk.calls.open("chan-1", caller_number="05321234567")
    await desk.calls.record(call.id, CallEventKind.agent_connected, agent="9001", soon=True)
    await desk.calls.flush()
    return call.id


async def test_the_agent_on_the_call_presses_urgent_and_a_colleague_cannot(desk: Desk) -> None:
    call_id = await ayses_call(desk)
    body = {"category": "violence", "severity": "critical", "note": "Silah sesi duyuldu"}
    assert (await desk.call("POST", f"/api/calls/{call_id}/urgent", "mehmet", body))[0] == 404
    assert (await desk.call("POST", f"/api/calls/{call_id}/urgent", None, body))[0] == 401
    bad = await desk.call("POST", f"/api/calls/{call_id}/urgent", "ayse", {"severity": "apocalyptic"})
    assert bad[0] == 400
    status, incident = await desk.call("POST", f"/api/calls/{call_id}/urgent", "ayse", body)
    assert status == 201, incident
    assert (incident["call_id"], incident["category"], incident["severity"]) == (
        call_id,
        "violence",
        "critical",
    )
    [signal] = [e for e in await incidents.timeline(desk.store, incident["id"]) if e.kind == "signal"]
    assert (signal.by, signal.data["signal"], signal.data["evidence"]) == (
        "ayse",
        "button",
        {"note": "Silah sesi duyuldu"},
    )


async def test_supervisors_read_and_resolve_incidents_agents_do_not(desk: Desk) -> None:
    call_id = await ayses_call(desk)
    _, incident = await desk.call("POST", f"/api/calls/{call_id}/urgent", "sema", {})
    assert (await desk.call("GET", "/api/incidents", "ayse"))[0] == 403
    status, listed = await desk.call("GET", "/api/incidents", "sema")
    assert status == 200 and [i["id"] for i in listed["incidents"]] == [incident["id"]]
    status, read = await desk.call("GET", f"/api/incidents/{incident['id']}", "sema")
    assert status == 200 and [e["kind"] for e in read["timeline"]][:3] == ["opened", "signal", "paged"]
    [page] = read["pages"]
    assert page["target"] == "desk" and "token" not in page and "code" not in page
    assert (await desk.call("GET", "/api/incidents/nope", "sema"))[0] == 404
    assert (await desk.call("POST", f"/api/incidents/{incident['id']}/resolve", "ayse", {}))[0] == 403
    status, resolved = await desk.call(
        "POST", f"/api/incidents/{incident['id']}/resolve", "sema", {"note": "ok"}
    )
    assert status == 200 and resolved["status"] == "resolved" and resolved["resolved_by"] == "sema"
    assert (await desk.call("GET", "/api/incidents", "sema"))[1]["incidents"] == []


async def test_a_paged_team_acknowledges_with_its_token_without_signing_in(desk: Desk) -> None:
    call_id = await ayses_call(desk)
    _, incident = await desk.call("POST", f"/api/calls/{call_id}/urgent", "ayse", {})
    [page] = await incidents.pages_of(desk.store, incident["id"])
    assert (await desk.call("POST", "/api/pages/ack", None, {"token": "not-a-token"}))[0] == 404
    assert (await desk.call("POST", "/api/pages/ack", None, {}))[0] == 400
    status, acked = await desk.call("POST", "/api/pages/ack", None, {"token": page.token})
    assert (status, acked) == (200, {"incident": incident["id"], "status": "acknowledged"})
    stored = await incidents.get_incident(desk.store, incident["id"])
    assert stored.acked_by == "desk/webhook"
    status, html = await desk.call("GET", "/ack", None)
    assert status == 200 and "/api/pages/ack" in html and page.token not in html
