"""The tickets API: list with filters or full-text search, read with the audit trail, open by hand
(a walk-in, an e-mail), edit, move through the workflow, comment, assign, record the unit's
reply and how the citizen was told, export as CSV.

Who sees what: an agent the tickets of their calls and those assigned to them (any other answers
404, as an unknown one does); supervisors and admins every ticket. What each may change is the
workflow's rule (``tickets.service``); its refusals come back as 403 or 409 with the reason.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeVar

from aiohttp import web

from hotline.auth import Principal, Role
from hotline.clock import SYSTEM, Clock
from hotline.db import Store
from hotline.web import ApiError, current_user, json_object
from hotline.workdays import Calendar
from tickets import errors
from tickets import store as tickets
from tickets.config import TicketsConfig
from tickets.models import Source, Status, Ticket, Told
from tickets.queries import Cursor, Page, TicketFilter, list_tickets
from tickets.search import search
from tickets.service import (
    Assign,
    Change,
    Comment,
    Edit,
    NewTicket,
    Reply,
    TellCitizen,
    Transition,
    is_own,
)

T = TypeVar("T")
EXPORT_LIMIT = 10_000  # rows in one CSV export
CSV_FIELDS = (
    "number", "status", "category", "unit", "urgent", "priority", "caller_number", "caller_name",
    "language", "source", "assigned_agent", "created_at", "due_at", "reply_at", "citizen_told",
)  # fmt: skip
_ERRORS: dict[type[errors.TicketError], tuple[int, str]] = {
    errors.NotFound: (404, "not_found"),
    errors.NotAllowed: (403, "not_allowed"),
    errors.BadTransition: (409, "bad_transition"),
    errors.Conflict: (409, "conflict"),
    errors.Invalid: (400, "invalid"),
}


@dataclass
class TicketRoutes:
    store: Store
    config: TicketsConfig
    calendar: Calendar
    zone: tzinfo
    clock: Clock = SYSTEM

    def install(self, webapp: web.Application) -> None:
        add = webapp.router
        add.add_get("/api/tickets", self.listing)
        add.add_post("/api/tickets", self.create)
        add.add_get("/api/tickets.csv", self.export)
        add.add_get("/api/tickets/{ticket}", self.read)
        add.add_patch("/api/tickets/{ticket}", self.edit)
        for action in ("status", "comments", "assign", "reply", "told"):
            add.add_post(f"/api/tickets/{{ticket}}/{action}", self._action(action))

    # -- reading ------------------------------------------------------------------------------------

    async def listing(self, request: web.Request) -> web.Response:
        page = await _run(self._page(request, current_user(request)))
        return web.json_response(
            {"tickets": [shown(t) for t in page.tickets], "next": _cursor_out(page.next)}, dumps=_dumps
        )

    async def export(self, request: web.Request) -> web.Response:
        user, rows = current_user(request), io.StringIO()
        writer = csv.writer(rows)
        writer.writerow(CSV_FIELDS)
        flt = _filter(request, user, limit=200)
        written = 0
        while written < EXPORT_LIMIT:
            page = await _run(list_tickets(self.store, flt, self.clock.utcnow()))
            for ticket in page.tickets:
                writer.writerow([_cell(getattr(ticket, name)) for name in CSV_FIELDS])
            written += len(page.tickets)
            if page.next is None:
                break
            flt = _filter(request, user, limit=200, after=page.next)
        return web.Response(
            text=rows.getvalue(),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": 'attachment; filename="tickets.csv"'},
        )

    async def read(self, request: web.Request) -> web.Response:
        ticket = await self._visible(request)
        trail = await tickets.events(self.store, ticket.id)
        body = shown(ticket)
        body["events"] = [e.model_dump(mode="json", warnings=False) for e in trail]
        if ticket.call_id:
            body["transcript"] = f"/api/calls/{ticket.call_id}/transcript"
        return web.json_response(body, dumps=_dumps)

    # -- writing ------------------------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        user, data = current_user(request), await json_object(request)
        try:
            source = Source(data.get("source", Source.walk_in))
        except ValueError:
            raise ApiError(400, "invalid", "source: walk_in or email") from None
        if source not in (Source.walk_in, Source.email):
            raise ApiError(400, "invalid", "source: only walk_in and email tickets are opened by hand")
        category = _opt_text(data, "category")
        if category is not None and category not in self.config.categories:
            raise ApiError(400, "invalid", f"category: one of {sorted(self.config.categories)}")
        urgent = data.get("urgent", False)
        if not isinstance(urgent, bool):
            raise ApiError(400, "invalid", "urgent: true or false")
        number, now = _opt_text(data, "caller_number") or "", self.clock.utcnow()
        if not (number or _opt_text(data, "caller_name") or _opt_text(data, "notes")):
            raise ApiError(400, "invalid", "a case needs who asks (caller_number or caller_name) or notes")
        days = self.config.due_working_days(category)
        new = NewTicket(
            source=source,
            caller_number=number,
            caller_name=_opt_text(data, "caller_name") or "",
            language=_opt_text(data, "language") or "tr",
            category=category,
            unit=self.config.unit_for(category, self.config.province(number)),
            urgent=urgent,
            priority=self.config.priority(category, urgent),
            notes=_opt_text(data, "notes") or "",
            assigned_agent=user.agent_id,
            due_at=self.calendar.add_working_days(now, days, self.zone).astimezone(UTC),
        )
        ticket = await _run(tickets.create(self.store, new, user.username, now, self.zone))
        return web.json_response(shown(ticket), status=201, dumps=_dumps)

    async def edit(self, request: web.Request) -> web.Response:
        """``{"version": n, "<field>": value, ...}``: each field an audited edit, in one go
        (a ticket changed since version ``n`` was read is refused with 409)."""
        ticket, data = await self._visible(request), await json_object(request)
        version = data.pop("version", None)
        if not data:
            raise ApiError(400, "invalid", "nothing to change")
        edits = [
            Edit(name, _when(v, "due_at") if name == "due_at" and isinstance(v, str) else v)
            for name, v in data.items()
        ]
        user, expected = current_user(request), _version(version)
        ticket = await _run(
            tickets.apply_all(self.store, ticket.id, edits, user, self.clock.utcnow(), expected)
        )
        return web.json_response(shown(ticket), dumps=_dumps)

    def _action(self, action: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            ticket, data = await self._visible(request), await json_object(request)
            ticket = await self._apply(request, ticket, _change(action, data), data.get("version"))
            return web.json_response(shown(ticket), dumps=_dumps)

        return handle

    # -- plumbing -----------------------------------------------------------------------------------

    async def _page(self, request: web.Request, user: Principal) -> Page:
        text = request.query.get("q", "").strip()
        now = self.clock.utcnow()
        if text:
            return await search(self.store, text, _filter(request, user), now)
        return await list_tickets(self.store, _filter(request, user, after=_cursor_in(request)), now)

    async def _visible(self, request: web.Request) -> Ticket:
        key, user = request.match_info["ticket"], current_user(request)
        ticket: Ticket | None = None
        try:
            ticket = await (
                tickets.by_number(self.store, key) if key.startswith("183-") else tickets.get(self.store, key)
            )
        except errors.NotFound:
            ticket = None
        if ticket is None or not (user.has(Role.supervisor) or is_own(ticket, user)):
            raise ApiError(404, "not_found", "no such ticket among yours")
        return ticket

    async def _apply(self, request: web.Request, ticket: Ticket, change: Change, version: object) -> Ticket:
        user, expected = current_user(request), _version(version)
        return await _run(tickets.apply(self.store, ticket.id, change, user, self.clock.utcnow(), expected))


def shown(ticket: Ticket) -> dict[str, Any]:
    # Enum columns come back from the database as plain strings: the same JSON, no warning.
    return ticket.model_dump(mode="json", warnings=False)


def _change(action: str, data: dict[str, Any]) -> Change:
    comment = _opt_text(data, "comment")
    match action:
        case "status":
            try:
                return Transition(Status(str(data.get("to"))), comment=comment)
            except ValueError:
                raise ApiError(400, "invalid", f"to: one of {[s.value for s in Status]}") from None
        case "comments":
            return Comment(_need_text(data, "text"))
        case "assign":
            return Assign(_opt_text(data, "agent"), comment=comment)
        case "reply":
            return Reply(_need_text(data, "text"))
        case _:
            try:
                return TellCitizen(Told(str(data.get("outcome"))))
            except ValueError:
                raise ApiError(400, "invalid", f"outcome: one of {[t.value for t in Told]}") from None


def _filter(
    request: web.Request, user: Principal, limit: int | None = None, after: Cursor | None = None
) -> TicketFilter:
    q = request.query
    try:
        return TicketFilter(
            statuses=_statuses(q.get("status", "")),
            category=q.get("category") or None,
            unit=q.get("unit") or None,
            urgent=_flag(q.get("urgent")),
            overdue=_flag(q.get("overdue")) is True,
            created_from=_when(q["from"], "from") if q.get("from") else None,
            created_to=_when(q["to"], "to") if q.get("to") else None,
            caller_number=q.get("caller") or None,
            assigned_agent=q.get("agent") or None,
            visible_to=None if user.has(Role.supervisor) else user,
            limit=limit or _int(q.get("limit", "50"), "limit"),
            after=after,
        )
    except errors.Invalid as exc:
        raise ApiError(400, "invalid", str(exc)) from None


def _statuses(value: str) -> frozenset[Status]:
    try:
        return frozenset(Status(s) for s in value.split(",") if s)
    except ValueError:
        raise ApiError(400, "invalid", f"status: any of {[s.value for s in Status]}") from None


def _flag(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    if value not in ("true", "false"):
        raise ApiError(400, "invalid", "a flag is true or false")
    return value == "true"


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, "invalid", f"{name}: a whole number") from None


def _when(value: str, name: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(400, "invalid", f"{name}: an ISO 8601 date and time with its zone") from None
    if when.tzinfo is None:
        raise ApiError(400, "invalid", f"{name}: give the time zone (e.g. +03:00)")
    return when.astimezone(UTC)


def _cursor_out(cursor: Cursor | None) -> str | None:
    if cursor is None:
        return None
    raw = json.dumps([cursor.created_at.isoformat(), cursor.id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _cursor_in(request: web.Request) -> Cursor | None:
    token = request.query.get("after")
    if not token:
        return None
    try:
        created_at, ticket_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return Cursor(datetime.fromisoformat(created_at), str(ticket_id))
    except (ValueError, TypeError):
        raise ApiError(400, "invalid", "after: a cursor from a previous page") from None


def _opt_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, "invalid", f"{key}: a string")
    return value


def _need_text(data: dict[str, Any], key: str) -> str:
    value = _opt_text(data, key)
    if not value or not value.strip():
        raise ApiError(400, "invalid", f"{key}: a non-empty string is required")
    return value


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    # A cell a spreadsheet would run as a formula is quoted as text (CSV injection; a leading tab
    # or carriage return is dropped by some spreadsheets, which then see the formula after it).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _version(version: object) -> int | None:
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int):
        raise ApiError(400, "invalid", "version: the ticket's version as read")
    return version


def _refused(exc: errors.TicketError) -> ApiError:
    status, code = next((v for k, v in _ERRORS.items() if isinstance(exc, k)), (400, "invalid"))
    return ApiError(status, code, str(exc))


async def _run(step: Awaitable[T]) -> T:
    try:
        return await step
    except errors.TicketError as exc:
        raise _refused(exc) from None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
