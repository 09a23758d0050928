"""The tickets API over HTTP, through the real web shell, on SQLite and PostgreSQL: who sees which
ticket, opening one by hand (number, routing, deadline in working days), filters and keyset paging,
full-text search, the audit trail, audited edits with optimistic concurrency, the workflow, comments,
the CSV export and malformed requests."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hotline.auth import Principal, Role, Users
from hotline.calls import CallLog
from hotline.clock import Clock as CallClock
from hotline.db import Store
from hotline.settings import Settings
from hotline.workdays import Calendar
from tests.unit.hotline import conftest as web_shell
from tests.unit.hotline.conftest import Clock
from tests.unit.hotline.test_web import PASSWORD, login, serve
from tickets import store as tickets
from tickets.config import load_tickets
from tickets.http import CSV_FIELDS, TicketRoutes
from tickets.models import Source, Status, Ticket
from tickets.service import Assign, NewTicket, Transition

Client = TestClient[web.Request, web.Application]

# The web shell's fixtures as they are (a clock for sessions that moves only when told, cheap
# password hashes); the tickets live in the ``store`` fixture (SQLite and PostgreSQL).
cheap_scrypt = web_shell.cheap_scrypt
clock = web_shell.clock
web_settings = web_shell.web_settings

ISTANBUL = ZoneInfo("Europe/Istanbul")
CONFIG = load_tickets(Path("config/tickets.toml"))
AYSE, MEHMET = "9001", "9002"  # the agent ids of the two agents who sign in
SUPERVISOR = Principal("sema", Role.supervisor)
# A Tuesday, 13:00 in Istanbul. 28 October is a half-day eve (a working day for deadlines) and
# 29 October (Cumhuriyet Bayramı, a Thursday) a holiday: 15 working days end on 11 November.
T0 = datetime(2026, 10, 20, 10, 0, tzinfo=UTC)
NUMBER = re.compile(r"^183-2026-\d{6}$")
ANKARA = "ankara_social_services"
OCT_21, NOV_11 = date(2026, 10, 21), date(2026, 11, 11)  # 1 and 15 working days after T0
NOT_FOUND = {"error": "not_found", "message": "no such ticket among yours"}


class Wall:
    """The tickets' wall clock: creation times, deadlines and "overdue" read it; tests set it."""

    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
async def client(web_settings: Settings, store: Store, clock: Clock, wall: Wall) -> AsyncIterator[Client]:
    users = Users(store, clock)
    await users.add("ayse", Role.agent, PASSWORD, "Ayşe Yılmaz", AYSE)
    await users.add("mehmet", Role.agent, PASSWORD, "Mehmet Demir", MEHMET)
    await users.add("ali", Role.agent, PASSWORD, "Ali Kaya")  # signs in, but is no agent
    await users.add("sema", Role.supervisor, PASSWORD, "Sema Kaya")
    await users.add("admin", Role.admin, PASSWORD)
    routes = TicketRoutes(store, CONFIG, Calendar(), ISTANBUL, CallClock(wall=wall))
    async with serve(web_settings, store, clock, [routes.install]) as client:
        yield client


@dataclass
class Who:
    ayse: dict[str, str]
    mehmet: dict[str, str]
    ali: dict[str, str]
    sema: dict[str, str]
    admin: dict[str, str]


@pytest.fixture
async def who(client: Client) -> Who:
    async def bearer(username: str) -> dict[str, str]:
        token = (await login(client, username, PASSWORD, bearer=True))["token"]
        return {"Authorization": f"Bearer {token}"}

    return Who(*[await bearer(u) for u in ("ayse", "mehmet", "ali", "sema", "admin")])


async def call(
    client: Client,
    method: str,
    path: str,
    who: dict[str, str] | None,
    body: Any = None,
    params: dict[str, str] | None = None,
) -> tuple[int, Any]:
    async with client.request(method, path, headers=who, json=body, params=params) as r:
        assert r.content_type == "application/json", (r.status, await r.text())
        return r.status, await r.json()


async def listed(client: Client, who: dict[str, str], **params: str) -> list[str]:
    """The numbers of one page of ``GET /api/tickets`` (asserting it is the only page)."""
    status, body = await call(client, "GET", "/api/tickets", who, params=params)
    assert status == 200, body
    assert body["next"] is None, body
    return [t["number"] for t in body["tickets"]]


async def export(client: Client, who: dict[str, str], **params: str) -> tuple[bytes, list[list[str]]]:
    async with client.get("/api/tickets.csv", headers=who, params=params) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
        raw = await r.read()
    return raw, list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))


async def opened(store: Store, wall: Wall, by: str = "sema", **fields: Any) -> Ticket:
    """A ticket written straight to the store at the wall clock's time (as the call flow does)."""
    new = NewTicket(**{"source": Source.walk_in, "language": "tr", **fields})
    return await tickets.create(store, new, by, wall.at, ISTANBUL)


async def call_ticket(store: Store, wall: Wall, agent: str, **fields: Any) -> Ticket:
    """The ticket of a call ``agent`` took, as the call flow opens it (by the system)."""
    log = CallLog(store, CallClock(wall=wall))
    number = fields.pop("caller_number", "05321234567")
    record, _ = await log.open(f"chan-{agent}-{wall.at.timestamp()}", caller_number=number)
    return await opened(
        store, wall, "system", source=Source.call, call_id=record.id, caller_number=number,
        assigned_agent=agent, **fields,
    )  # fmt: skip


def flat(pages: list[list[str]]) -> list[str]:
    return [number for page in pages for number in page]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ---------------------------------------------------------------- signing in


async def test_without_a_session_every_route_answers_401(client: Client, store: Store, wall: Wall) -> None:
    ticket = await opened(store, wall, caller_number="05320000000")
    routes = [
        ("GET", "/api/tickets"),
        ("GET", "/api/tickets?q=yardım"),
        ("POST", "/api/tickets"),
        ("GET", "/api/tickets.csv"),
        ("GET", f"/api/tickets/{ticket.id}"),
        ("GET", f"/api/tickets/{ticket.number}"),
        ("PATCH", f"/api/tickets/{ticket.id}"),
        *[
            ("POST", f"/api/tickets/{ticket.id}/{a}")
            for a in ("status", "comments", "assign", "reply", "told")
        ],
    ]
    for method, path in routes:
        for headers in (None, {"Authorization": "Bearer nope"}):
            status, body = await call(client, method, path, headers, {"version": 1, "notes": "x"})
            assert (status, body["error"]) == (401, "unauthorized"), (method, path, headers)
    assert (await tickets.get(store, ticket.id)).version == 1  # nothing was written
    assert len(await tickets.events(store, ticket.id)) == 1


# ---------------------------------------------------------------- opening by hand


async def test_a_supervisor_opens_a_walk_in_ticket_routed_and_due_in_working_days(
    client: Client, who: Who, store: Store, wall: Wall
) -> None:
    body = {
        "source": "walk_in",
        "caller_number": "0312 555 12 34",  # an Ankara landline
        "caller_name": "Gülşen Çağlar",
        "category": "social_assistance",  # no due_working_days of its own: the default 15
        "notes": "Kömür yardımı için başvurdu.",
    }
    status, ticket = await call(client, "POST", "/api/tickets", who.sema, body)
    assert status == 201, ticket
    assert ticket["number"] == "183-2026-000001" and NUMBER.match(ticket["number"])
    assert (ticket["source"], ticket["status"], ticket["version"]) == ("walk_in", "new", 1)
    assert (ticket["category"], ticket["unit"], ticket["priority"]) == (
        "social_assistance",
        "ankara_social_services",
        "normal",
    )
    assert (ticket["caller_name"], ticket["notes"]) == ("Gülşen Çağlar", "Kömür yardımı için başvurdu.")
    assert (ticket["created_by"], ticket["assigned_agent"], ticket["call_id"]) == ("sema", None, None)
    assert when(ticket["created_at"]) == T0
    # 15 working days after Tuesday 20 October: the half-day eve of 28 October counts, the
    # holiday of 29 October does not, the weekends do not: the end of Wednesday 11 November.
    due = when(ticket["due_at"])
    assert due == datetime(2026, 11, 11, 23, 59, 59, 999999, tzinfo=ISTANBUL)
    assert Calendar().working_days_between(date(2026, 10, 20), due.astimezone(ISTANBUL).date()) == 15
    # What was answered is what was stored.
    status, read = await call(client, "GET", f"/api/tickets/{ticket['number']}", who.sema)
    assert status == 200 and when(read["due_at"]) == due and read["unit"] == "ankara_social_services"
    assert [e["kind"] for e in read["events"]] == ["created"] and read["events"][0]["by"] == "sema"
    assert "transcript" not in read  # no call behind a walk-in

    # The next one is numbered next; its category's own deadline and priority apply.
    wall.at = T0 + timedelta(hours=1)
    status, ticket = await call(
        client, "POST", "/api/tickets", who.sema,
        {"source": "email", "caller_number": "+90 212 555 12 34", "category": "elderly_disabled_care"},
    )  # fmt: skip
    assert status == 201, ticket
    assert (ticket["number"], ticket["source"], ticket["unit"], ticket["priority"]) == (
        "183-2026-000002",
        "email",
        "istanbul_social_services",
        "high",
    )
    assert when(ticket["due_at"]) == datetime(2026, 10, 27, 23, 59, 59, 999999, tzinfo=ISTANBUL)  # 5 days


@pytest.mark.parametrize(
    ("fields", "unit", "priority", "due"),
    [
        # A mobile number has no province: the default unit.
        ({"caller_number": "05321234567", "category": "social_assistance"}, "central", "normal", NOV_11),
        # Violence goes to the police liaison wherever the caller is, due the next working day.
        ({"caller_number": "03125551234", "category": "violence_against_women"}, "police_liaison", "urgent", OCT_21),  # noqa: E501
        # Marked urgent: urgent priority whatever the category says; no category: routed by province.
        ({"caller_number": "03125551234", "urgent": True}, ANKARA, "urgent", NOV_11),
    ],
)  # fmt: skip
async def test_an_opened_ticket_takes_unit_priority_and_deadline_from_the_configuration(
    client: Client, who: Who, fields: dict[str, Any], unit: str, priority: str, due: date
) -> None:
    status, ticket = await call(client, "POST", "/api/tickets", who.sema, fields)
    assert status == 201, ticket
    assert (ticket["unit"], ticket["priority"], ticket["urgent"]) == (
        unit,
        priority,
        bool(fields.get("urgent")),
    )
    assert when(ticket["due_at"]) == datetime.combine(due, datetime.max.time(), tzinfo=ISTANBUL)


async def test_an_agent_opens_a_ticket_for_themselves_and_bad_openings_are_refused(
    client: Client, who: Who, store: Store
) -> None:
    status, ticket = await call(client, "POST", "/api/tickets", who.ayse, {"caller_number": "05321234567"})
    assert status == 201 and (ticket["source"], ticket["created_by"], ticket["assigned_agent"]) == (
        "walk_in",
        "ayse",
        AYSE,
    )
    for body in (
        {"category": "no_such_category"},
        {"source": "call"},  # a call's ticket comes from the call, not by hand
        {"source": "fax"},
        {"caller_name": 42},
        {"language": "much-too-long"},
    ):
        status, answer = await call(client, "POST", "/api/tickets", who.sema, body)
        assert (status, answer["error"]) == (400, "invalid"), body
    status, page = await call(client, "GET", "/api/tickets", who.sema)
    assert [t["number"] for t in page["tickets"]] == [ticket["number"]]  # no refused one was stored


# ---------------------------------------------------------------- who sees what


async def test_an_agent_sees_only_their_tickets_and_another_is_the_same_404_as_an_unknown_one(
    client: Client, who: Who, store: Store, wall: Wall
) -> None:
    of_call = await call_ticket(store, wall, AYSE)  # Ayşe took the call
    wall.at += timedelta(minutes=1)
    status, hers = await call(client, "POST", "/api/tickets", who.ayse, {"caller_number": "05320000001"})
    assert status == 201
    wall.at += timedelta(minutes=1)
    mehmets = await call_ticket(store, wall, MEHMET)
    wall.at += timedelta(minutes=1)
    nobodys = await opened(store, wall, caller_number="05320000002")
    wall.at += timedelta(minutes=1)
    given = await opened(store, wall, caller_number="05320000003")
    await tickets.apply(store, given.id, Assign(AYSE), SUPERVISOR, wall.at)  # assigned to her later

    everything = [given.number, nobodys.number, mehmets.number, hers["number"], of_call.number]
    assert await listed(client, who.ayse) == [given.number, hers["number"], of_call.number]
    assert await listed(client, who.mehmet) == [mehmets.number]
    assert await listed(client, who.ali) == []  # no agent id, opened nothing
    assert await listed(client, who.sema) == everything
    assert await listed(client, who.admin) == everything
    # Asking for another agent's tickets does not widen what an agent sees.
    assert await listed(client, who.ayse, agent=MEHMET) == []

    for key in (mehmets.id, mehmets.number, nobodys.id, nobodys.number, "0" * 32, "183-2026-999999", "nope"):
        status, body = await call(client, "GET", f"/api/tickets/{key}", who.ayse)
        assert (status, body) == (404, NOT_FOUND), key
        for method, path, change in (
            ("PATCH", "", {"version": 1, "notes": "benim"}),
            ("POST", "/comments", {"text": "bakıyorum"}),
            ("POST", "/status", {"to": "in_progress"}),
            ("POST", "/reply", {"text": "yanıt"}),
        ):
            status, body = await call(client, method, f"/api/tickets/{key}{path}", who.ayse, change)
            assert (status, body) == (404, NOT_FOUND), (key, path)
    assert (await tickets.get(store, mehmets.id)).version == 1  # untouched
    assert len(await tickets.events(store, mehmets.id)) == 1
    for ticket in (of_call, given):
        status, body = await call(client, "GET", f"/api/tickets/{ticket.number}", who.ayse)
        assert status == 200 and body["id"] == ticket.id
    for user in (who.sema, who.admin):
        status, body = await call(client, "GET", f"/api/tickets/{mehmets.number}", user)
        assert status == 200 and body["id"] == mehmets.id


# ---------------------------------------------------------------- filters and paging


async def test_each_filter_narrows_the_list(client: Client, who: Who, store: Store, wall: Wall) -> None:
    past, future = T0 + timedelta(days=2), T0 + timedelta(days=30)
    specs: list[dict[str, Any]] = [
        {
            "category": "social_assistance",
            "caller_number": "03125550000",
            "due_at": past,
            "unit": ANKARA,
        },  # a
        {
            "category": "social_assistance",
            "caller_number": "03125551111",
            "due_at": future,
            "unit": ANKARA,
        },  # b
        {"category": "elderly_disabled_care", "caller_number": "03125550000", "due_at": past},  # c
        {"category": "elderly_disabled_care", "caller_number": "05321110000", "due_at": past},  # d
        {"category": "child_protection", "caller_number": "05321110000", "urgent": True},  # e: no due date
    ]
    # a stays new, b is assigned to Ayşe, c is in progress, d closed, e new.
    made = []
    for i, fields in enumerate(specs):
        wall.at = T0 + timedelta(hours=i)
        made.append(await opened(store, wall, **fields))
    a, b, c, d, e = made
    await tickets.apply(store, b.id, Assign(AYSE), SUPERVISOR, wall.at)
    await tickets.apply(store, c.id, Transition(Status.in_progress), SUPERVISOR, wall.at)
    await tickets.apply(store, d.id, Transition(Status.closed), SUPERVISOR, wall.at)
    wall.at = T0 + timedelta(days=10)  # a, c and d are past their deadline; d is closed

    def numbers(*found: Ticket) -> list[str]:
        return [t.number for t in sorted(found, key=lambda t: t.created_at, reverse=True)]

    istanbul = (T0 + timedelta(hours=1)).astimezone(ISTANBUL)  # 14:00+03:00, b's creation
    cases: list[tuple[dict[str, str], list[str]]] = [
        ({}, numbers(a, b, c, d, e)),
        ({"status": "new"}, numbers(a, e)),
        ({"status": "new,assigned"}, numbers(a, b, e)),
        ({"status": "closed,in_progress"}, numbers(c, d)),
        ({"category": "elderly_disabled_care"}, numbers(c, d)),
        ({"category": "social_assistance", "status": "assigned"}, numbers(b)),
        ({"urgent": "true"}, numbers(e)),
        ({"urgent": "false"}, numbers(a, b, c, d)),
        ({"overdue": "true"}, numbers(a, c)),
        ({"caller": "03125550000"}, numbers(a, c)),
        ({"caller": "05321110000", "urgent": "false"}, numbers(d)),
        ({"agent": AYSE}, numbers(b)),
        ({"unit": ANKARA}, numbers(a, b)),
        # From b's creation (included) to d's (excluded), written in Istanbul time.
        ({"from": istanbul.isoformat(), "to": (istanbul + timedelta(hours=2)).isoformat()}, numbers(b, c)),
        ({"from": (istanbul + timedelta(seconds=1)).isoformat()}, numbers(c, d, e)),
        ({"to": istanbul.isoformat()}, numbers(a)),
    ]
    for params, expected in cases:
        assert await listed(client, who.sema, **params) == expected, params
    # Filters apply within what an agent sees: only b is Ayşe's.
    assert await listed(client, who.ayse, status="assigned") == numbers(b)
    assert await listed(client, who.ayse, status="new") == []
    # Before their deadlines nothing is overdue.
    wall.at = T0 + timedelta(days=1)
    assert await listed(client, who.sema, overdue="true") == []

    for params in (
        {"status": "done"},
        {"urgent": "yes"},
        {"from": "2026-10-20T10:00:00"},  # no zone: ambiguous
        {"to": "yesterday"},
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "ten"},
        {"after": "not-a-cursor"},
    ):
        status, body = await call(client, "GET", "/api/tickets", who.sema, params=params)
        assert (status, body["error"]) == (400, "invalid"), params


async def test_paging_with_next_lists_every_ticket_once_newest_first(
    client: Client, who: Who, store: Store, wall: Wall
) -> None:
    made = []
    for i in range(8):
        wall.at = T0 + timedelta(minutes=i if i < 3 else 3 + (i - 3) // 3)  # ties of three
        made.append(
            await opened(store, wall, caller_number=f"0532000000{i}", assigned_agent=AYSE if i % 2 else None)
        )
    newest = [t.number for t in sorted(made, key=lambda t: (t.created_at, t.id), reverse=True)]
    assert len({t.created_at for t in made}) < len(made)  # some share a creation time

    async def walk(user: dict[str, str], **params: str) -> list[list[str]]:
        pages, after, inserted = [], None, False
        while True:
            query = {**params, "limit": "3", **({"after": after} if after else {})}
            status, body = await call(client, "GET", "/api/tickets", user, params=query)
            assert status == 200, body
            pages.append([t["number"] for t in body["tickets"]])
            after = body["next"]
            if after is None:
                return pages
            assert len(pages) < 10, pages  # the cursor moves on
            if not inserted:  # a ticket opened while someone pages does not shift what follows
                wall.at += timedelta(days=1)
                await opened(store, wall, caller_number="05329999999", assigned_agent=AYSE)
                inserted = True

    pages = await walk(who.sema)
    assert [len(p) for p in pages] == [3, 3, 2]
    assert flat(pages) == newest
    assert len(set(flat(pages))) == len(newest)
    # With a filter and as an agent: only hers, each once, in order (the one opened above first).
    _, everything = await call(client, "GET", "/api/tickets", who.sema, params={"limit": "200"})
    hers = [t["number"] for t in everything["tickets"] if t["assigned_agent"] == AYSE]
    assert len(hers) == 5
    pages = await walk(who.ayse, status="new")
    assert flat(pages) == hers and [len(p) for p in pages] == [3, 2]


# ---------------------------------------------------------------- search


async def test_search_finds_a_turkish_word_whatever_its_case_and_letters(
    client: Client, who: Who, store: Store, wall: Wall
) -> None:
    coal = await opened(
        store, wall, caller_name="Şükrü Öztürk", notes="Kömür yardımı için başvurdu.", assigned_agent=AYSE
    )
    wall.at += timedelta(minutes=1)
    await opened(store, wall, caller_name="Ayşe Kaya", notes="Kira yardımı istiyor.", assigned_agent=MEHMET)
    wall.at += timedelta(minutes=1)
    await opened(store, wall, caller_name="Işıl Çelik", notes="Engelli aylığı soruyor.", assigned_agent=AYSE)

    for text in ("kömür", "KÖMÜR", "komur", "Komür", "şükrü öztürk", "SUKRU", "öztürk kömür"):
        status, body = await call(client, "GET", "/api/tickets", who.sema, params={"q": text})
        assert status == 200, body
        assert [t["number"] for t in body["tickets"]] == [coal.number], text
        assert body["next"] is None
    # Two tickets share the word "yardımı"; "ISIL" is "Işıl" with the dotless i folded.
    status, body = await call(client, "GET", "/api/tickets", who.sema, params={"q": "YARDIMI"})
    assert status == 200 and len(body["tickets"]) == 2
    status, body = await call(client, "GET", "/api/tickets", who.sema, params={"q": "ISIL"})
    assert status == 200 and [t["caller_name"] for t in body["tickets"]] == ["Işıl Çelik"]
    # A word that is nowhere finds nothing; the list's filters still apply.
    assert await listed(client, who.sema, q="huzurevi") == []
    assert await listed(client, who.sema, q="kömür", status="closed") == []
    # An agent searches only their own tickets: Mehmet's "Kira" ticket is not Ayşe's.
    assert await listed(client, who.ayse, q="yardımı") == [coal.number]
    assert await listed(client, who.mehmet, q="kömür") == []


# ---------------------------------------------------------------- reading


async def test_a_ticket_reads_the_same_by_number_and_id_with_its_trail_and_transcript_link(
    client: Client, who: Who, store: Store, wall: Wall
) -> None:
    ticket = await call_ticket(store, wall, AYSE, category="child_protection")
    wall.at += timedelta(minutes=5)
    status, _ = await call(
        client, "POST", f"/api/tickets/{ticket.id}/comments", who.ayse, {"text": "Arandı."}
    )
    assert status == 200
    by_id = await call(client, "GET", f"/api/tickets/{ticket.id}", who.ayse)
    by_number = await call(client, "GET", f"/api/tickets/{ticket.number}", who.ayse)
    assert by_id == by_number and by_id[0] == 200
    body = by_id[1]
    assert (body["id"], body["number"], body["call_id"], body["source"]) == (
        ticket.id,
        ticket.number,
        ticket.call_id,
        "call",
    )
    assert body["transcript"] == f"/api/calls/{ticket.call_id}/transcript"
    trail = body["events"]
    assert [(e["kind"], e["by"], when(e["at"])) for e in trail] == [
        ("created", "system", T0),
        ("comment", "ayse", T0 + timedelta(minutes=5)),
    ]
    assert trail[0]["after"]["number"] == ticket.number and trail[0]["after"]["assigned_agent"] == AYSE
    assert trail[1]["comment"] == "Arandı." and all(e["ticket_id"] == ticket.id for e in trail)


# ---------------------------------------------------------------- editing


async def test_patch_with_the_version_read_edits_and_audits_and_a_stale_one_changes_nothing(
    client: Client, who: Who, store: Store, wall: Wall
) -> None:
    ticket = await call_ticket(store, wall, AYSE, category="social_assistance")
    path = f"/api/tickets/{ticket.number}"
    wall.at += timedelta(minutes=1)
    due = datetime(2026, 11, 20, 17, 0, tzinfo=ISTANBUL)
    status, body = await call(
        client, "PATCH", path, who.sema,
        {"version": 1, "notes": "Çocuk için bakım desteği", "priority": "high", "due_at": due.isoformat()},
    )  # fmt: skip
    assert status == 200, body
    assert (body["notes"], body["priority"], when(body["due_at"])) == (
        "Çocuk için bakım desteği",
        "high",
        due,
    )
    assert body["version"] == 2 and when(body["updated_at"]) == wall.at  # one write: one version step
    status, read = await call(client, "GET", path, who.sema)
    changes = [(e["kind"], e["by"], e["field"], e["before"], e["after"]) for e in read["events"][1:]]
    assert changes == [
        ("field", "sema", "notes", "", "Çocuk için bakım desteği"),
        ("field", "sema", "priority", "normal", "high"),
        ("field", "sema", "due_at", ticket.due_at, due.astimezone(UTC).isoformat()),
    ]
    before = {k: v for k, v in read.items() if k != "events"}

    # Someone else's edit came in since version 1 was read: 409, and nothing is written.
    status, body = await call(client, "PATCH", path, who.ayse, {"version": 1, "notes": "eski"})
    assert (status, body["error"]) == (409, "conflict")
    status, body = await call(
        client, "PATCH", path, who.sema, {"version": 3, "priority": "low", "urgent": True}
    )
    assert (status, body["error"]) == (409, "conflict")
    status, after = await call(client, "GET", path, who.sema)
    assert {k: v for k, v in after.items() if k != "events"} == before
    assert after["events"] == read["events"]

    # An agent edits the notes of her own ticket with the current version, not its priority.
    status, body = await call(client, "PATCH", path, who.ayse, {"version": 2, "notes": "Güncel not"})
    assert (status, body["notes"], body["version"]) == (200, "Güncel not", 3)
    status, body = await call(client, "PATCH", path, who.ayse, {"version": 3, "priority": "low"})
    assert (status, body["error"]) == (403, "not_allowed")
    # One refused field refuses the whole edit: the good fields before it are not written either.
    for user, change, refusal in (
        (who.sema, {"version": 3, "notes": "yarım", "number": "183-2026-000042"}, (400, "invalid")),  # never
        (who.sema, {"version": 3, "notes": "yarım", "status": "closed"}, (400, "invalid")),  # workflow only
        (who.sema, {"version": 3, "notes": "yarım", "due_at": "2026-11-20T17:00:00"}, (400, "invalid")),
        (who.sema, {"version": 3, "notes": "yarım", "priority": "asap"}, (400, "invalid")),
        (who.sema, {"version": 3, "notes": "yarım", "related_to": "0" * 32}, (404, "not_found")),
        (who.ayse, {"version": 3, "notes": "yarım", "urgent": True}, (403, "not_allowed")),
        (who.sema, {"version": "3", "notes": "yarım"}, (400, "invalid")),
        (who.sema, {"version": 2, "notes": "yarım"}, (409, "conflict")),
        (who.sema, {"version": 3}, (400, "invalid")),  # nothing to change
    ):
        status, body = await call(client, "PATCH", path, user, change)
        assert (status, body["error"]) == refusal, change
    final = await tickets.get(store, ticket.id)
    assert (final.version, final.notes, final.priority, final.status) == (3, "Güncel not", "high", "new")
    assert len(await tickets.events(store, ticket.id)) == 5
    # Without a version the edit is made on the ticket as it is.
    status, body = await call(client, "PATCH", path, who.sema, {"language": "ku", "urgent": True})
    assert (status, body["language"], body["urgent"], body["version"]) == (200, "ku", True, 4)


# ---------------------------------------------------------------- the workflow


async def test_the_workflow_through_http_from_assignment_to_closing(
    client: Client, who: Who, store: Store, wall: Wall
) -> None:
    status, ticket = await call(
        client,
        "POST",
        "/api/tickets",
        who.sema,
        {"caller_number": "03125551234", "category": "social_assistance"},
    )
    assert status == 201
    path = f"/api/tickets/{ticket['id']}"

    async def step(user: dict[str, str], action: str, body: dict[str, Any]) -> tuple[int, Any]:
        wall.at += timedelta(minutes=1)
        return await call(client, "POST", f"{path}/{action}", user, body)

    status, body = await step(who.ayse, "status", {"to": "in_progress"})
    assert status == 404  # not hers yet
    status, body = await step(who.ayse, "assign", {"agent": AYSE})
    assert status == 404
    status, body = await step(who.sema, "assign", {"agent": AYSE, "comment": "Ankara bölgesi"})
    assert (status, body["status"], body["assigned_agent"]) == (200, "assigned", AYSE)
    status, body = await step(who.ayse, "assign", {"agent": MEHMET})  # agents do not assign
    assert (status, body["error"]) == (403, "not_allowed")
    status, body = await step(who.ayse, "status", {"to": "answered"})  # assigned -> answered is no step
    assert (status, body["error"]) == (409, "bad_transition")
    status, body = await step(who.ayse, "status", {"to": "in_progress"})
    assert (status, body["status"]) == (200, "in_progress")
    status, body = await step(who.ayse, "status", {"to": "answered"})
    assert (status, body["error"]) == (400, "invalid")  # no reply yet
    status, body = await step(who.ayse, "told", {"outcome": "phone"})
    assert (status, body["error"]) == (400, "invalid")  # nothing to tell yet
    status, body = await step(who.ayse, "reply", {"text": "İl müdürlüğü kömür yardımını onayladı."})
    assert (status, body["reply"]) == (200, "İl müdürlüğü kömür yardımını onayladı.")
    assert when(body["reply_at"]) == wall.at
    status, body = await step(who.ayse, "status", {"to": "answered"})
    assert (status, body["status"]) == (200, "answered")
    status, body = await step(who.sema, "status", {"to": "closed"})
    assert (status, body["error"]) == (400, "invalid")  # the citizen was not told yet
    status, body = await step(who.ayse, "told", {"outcome": "pigeon"})
    assert (status, body["error"]) == (400, "invalid")
    status, body = await step(who.ayse, "told", {"outcome": "phone"})
    assert (status, body["citizen_told"]) == (200, "phone")
    status, body = await step(who.ayse, "status", {"to": "closed"})
    assert (status, body["error"]) == (403, "not_allowed")  # closing is for supervisors
    status, body = await step(who.sema, "status", {"to": "done"})
    assert (status, body["error"]) == (400, "invalid")  # no such status
    status, body = await step(who.sema, "status", {"to": "assigned"})
    assert (status, body["error"]) == (409, "bad_transition")  # answered -> assigned is no step
    status, body = await step(who.sema, "status", {"to": "closed", "comment": "Vatandaş bilgilendirildi."})
    assert (status, body["status"]) == (200, "closed")
    closed_at = wall.at
    status, body = await step(who.ayse, "status", {"to": "in_progress"})
    assert (status, body["error"]) == (409, "bad_transition")
    status, body = await step(who.ayse, "reply", {"text": "Bir yanıt daha"})
    assert (status, body["error"]) == (409, "bad_transition")  # a closed ticket takes no reply

    status, read = await call(client, "GET", path, who.ayse)
    assert status == 200 and read["status"] == "closed"
    assert [(e["kind"], e["by"], e["field"], e["before"], e["after"]) for e in read["events"]] == [
        ("created", "sema", None, None, read["events"][0]["after"]),
        ("assigned", "sema", "assigned_agent", None, AYSE),
        ("status", "sema", "status", "new", "assigned"),
        ("status", "ayse", "status", "assigned", "in_progress"),
        ("reply", "ayse", "reply", None, "İl müdürlüğü kömür yardımını onayladı."),
        ("status", "ayse", "status", "in_progress", "answered"),
        ("told", "ayse", "citizen_told", None, "phone"),
        ("status", "sema", "status", "answered", "closed"),
    ]
    assert read["events"][1]["comment"] == "Ankara bölgesi"
    assert read["events"][-1]["comment"] == "Vatandaş bilgilendirildi."
    assert when(read["events"][-1]["at"]) == closed_at and when(read["updated_at"]) == closed_at

    # Actions carry the version too: a stale one is refused and changes nothing.
    status, body = await call(client, "POST", f"{path}/status", who.sema, {"to": "reopened", "version": 1})
    assert (status, body["error"]) == (409, "conflict")
    status, body = await call(
        client, "POST", f"{path}/status", who.sema, {"to": "reopened", "version": read["version"]}
    )
    assert (status, body["status"], body["version"]) == (200, "reopened", read["version"] + 1)


# ---------------------------------------------------------------- comments


async def test_comments_are_recorded_without_changing_the_ticket(
    client: Client, who: Who, store: Store, wall: Wall
) -> None:
    ticket = await call_ticket(store, wall, AYSE)
    path = f"/api/tickets/{ticket.number}/comments"
    wall.at += timedelta(minutes=3)
    status, body = await call(
        client, "POST", path, who.ayse, {"text": "Vatandaş tekrar arayacağını söyledi."}
    )
    assert (status, body["version"], body["id"]) == (200, 1, ticket.id)
    status, body = await call(client, "POST", path, who.sema, {"text": "Takipteyim."})
    assert status == 200
    for bad in ({"text": "   "}, {}, {"text": 7}):
        status, body = await call(client, "POST", path, who.ayse, bad)
        assert (status, body["error"]) == (400, "invalid"), bad
    status, body = await call(client, "POST", path, who.mehmet, {"text": "benim değil"})
    assert (status, body) == (404, NOT_FOUND)
    trail = await tickets.events(store, ticket.id)
    assert [(e.kind, e.by, e.comment, e.at) for e in trail[1:]] == [
        ("comment", "ayse", "Vatandaş tekrar arayacağını söyledi.", T0 + timedelta(minutes=3)),
        ("comment", "sema", "Takipteyim.", T0 + timedelta(minutes=3)),
    ]
    # A closed ticket still takes comments.
    await tickets.apply(store, ticket.id, Transition(Status.closed), SUPERVISOR, wall.at)
    status, body = await call(client, "POST", path, who.ayse, {"text": "Kapandıktan sonra arandı."})
    assert (status, body["status"]) == (200, "closed")
    assert (await tickets.events(store, ticket.id))[-1].comment == "Kapandıktan sonra arandı."


# ---------------------------------------------------------------- export


async def test_the_csv_export_has_one_row_per_visible_ticket_safe_from_formulas_in_utf8(
    client: Client, who: Who, store: Store, wall: Wall
) -> None:
    names = [
        '=HYPERLINK("http://evil","tıkla")',
        "Gülşen Çağlar İğdeli",
        "+90 sahte",
        "Mehmet'in arayanı",
        "\t=1+1",  # spreadsheets that drop the leading tab would run the rest
        "-2+3",
        "@SUM(A1)",
        "\r=1+1",
    ]
    made = []
    for i, name in enumerate(names):
        wall.at = T0 + timedelta(minutes=i)
        agent = MEHMET if i == 3 else AYSE
        made.append(
            await opened(store, wall, caller_name=name, caller_number=f"0532000000{i}", assigned_agent=agent)
        )
    raw, rows = await export(client, who.sema)
    assert rows[0] == list(CSV_FIELDS)
    assert raw.startswith(b"number,status,category")
    body = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [r["number"] for r in body] == [t.number for t in reversed(made)]  # one row each, newest first
    by_number = {r["number"]: r for r in body}
    first = by_number[made[0].number]
    assert first["caller_name"] == '\'=HYPERLINK("http://evil","tıkla")'  # text, not a formula
    assert by_number[made[2].number]["caller_name"] == "'+90 sahte"
    assert by_number[made[1].number]["caller_name"] == "Gülşen Çağlar İğdeli"
    assert [by_number[t.number]["caller_name"] for t in made[4:]] == [
        "'\t=1+1",
        "'-2+3",
        "'@SUM(A1)",
        "'\r=1+1",
    ]
    assert "Gülşen Çağlar İğdeli".encode() in raw  # UTF-8 on the wire
    assert (first["status"], first["source"], first["assigned_agent"], first["caller_number"]) == (
        "new",
        "walk_in",
        AYSE,
        "05320000000",
    )
    assert when(first["created_at"]) == T0 and first["due_at"] == "" and first["citizen_told"] == ""
    # An agent's export holds only their tickets; the list's filters apply.
    _, rows = await export(client, who.ayse)
    assert [r[0] for r in rows[1:]] == [t.number for t in reversed(made) if t.assigned_agent == AYSE]
    assert len(rows) == len(made)  # the header and every ticket but Mehmet's
    _, rows = await export(client, who.mehmet)
    assert [r[0] for r in rows[1:]] == [made[3].number]
    _, rows = await export(client, who.sema, status="closed")
    assert rows == [list(CSV_FIELDS)]


async def test_the_export_goes_past_one_page_of_the_list(
    client: Client, who: Who, store: Store, wall: Wall
) -> None:
    for i in range(205):
        wall.at = T0 + timedelta(seconds=i // 2)  # pairs share a creation time
        await opened(store, wall, caller_number=f"05321{i:06d}")
    _, rows = await export(client, who.sema)
    numbers = [r[0] for r in rows[1:]]
    assert len(numbers) == len(set(numbers)) == 205


# ---------------------------------------------------------------- malformed requests


async def test_a_body_that_is_not_a_json_object_is_a_400(
    client: Client, who: Who, store: Store, wall: Wall
) -> None:
    ticket = await opened(store, wall, assigned_agent=AYSE)
    for method, path in (
        ("POST", "/api/tickets"),
        ("PATCH", f"/api/tickets/{ticket.id}"),
        ("POST", f"/api/tickets/{ticket.id}/comments"),
        ("POST", f"/api/tickets/{ticket.id}/status"),
    ):
        for data in (b"{not json", b"[1, 2]", b'"text"', b'{"text": "\xff\xfe"}'):
            headers = {**who.sema, "Content-Type": "application/json"}
            async with client.request(method, path, headers=headers, data=data) as r:
                assert r.status == 400, (method, path, data)
                assert (await r.json())["error"] == "bad_json"
    _, page = await call(client, "GET", "/api/tickets", who.sema)
    assert [t["id"] for t in page["tickets"]] == [ticket.id]  # nothing was opened
    assert len(await tickets.events(store, ticket.id)) == 1
