"""Tickets from real calls: a SIPp caller chooses child protection, talks to a SIPp agent phone
and hangs up; the case is opened, routed and due; the same caller's next call is linked to it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from hotline.app import App
from hotline.settings import Settings
from tests.harness import sipp
from tests.integration.conftest import ended
from tickets.models import Priority, Source, Status, Ticket


async def tickets_of(app: App) -> list[Ticket]:
    async with app.store.session() as session:
        return list((await session.exec(select(Ticket).order_by(col(Ticket.seq)))).all())


async def test_a_child_protection_call_becomes_a_routed_ticket_and_the_next_call_links_to_it(
    app: App, settings: Settings, phone_port: int
) -> None:
    made = asyncio.get_running_loop().create_future()
    app.calls.subscribe(
        lambda e: made.set_result(e) if e.kind == "ticket_created" and not made.done() else None
    )
    done = ended(app)
    async with sipp.phone(port=phone_port, talk_ms=1500) as desk:
        result = await sipp.call(settings, "183", digits="12", hold=30)  # Türkçe, child protection
        assert "answered" in (await desk.result()).log
    assert result.ok, result.errors
    [end] = await asyncio.wait_for(done, 30)
    await asyncio.wait_for(made, 30)
    [ticket] = await tickets_of(app)
    call = await app.calls.get(end.call_id)
    assert call is not None
    assert (ticket.call_id, ticket.source, ticket.status) == (call.id, Source.call, Status.new)
    assert ticket.number.startswith(f"183-{call.started_at.astimezone(ZoneInfo('Europe/Istanbul')).year}-")
    assert (ticket.category, ticket.unit) == ("child_protection", "child_protection_unit")
    assert (ticket.priority, ticket.assigned_agent) == (Priority.urgent, "9001")
    assert ticket.ivr_path and ticket.caller_number == "05321234567"
    # One working day to answer: due no later than four calendar days on (a weekend, an eve).
    assert ticket.due_at is not None and call.started_at < ticket.due_at < call.started_at + timedelta(days=6)

    again = ended(app)
    async with sipp.phone(port=phone_port, talk_ms=500) as desk:
        assert (await sipp.call(settings, "183", digits="12", hold=30)).ok
        assert "answered" in (await desk.result()).log
    [second_end] = await asyncio.wait_for(again, 30)
    # The repeat caller heard their open case's number right after the welcome.
    events = await app.calls.events(second_end.call_id)
    assert [e.data for e in events if e.kind == "open_ticket_told"] == [{"ticket": ticket.number}]
    first_prompt = next(e.data["prompts"] for e in events if e.kind == "prompt")
    digits = [f"digit_{d}/tr" for d in ticket.number.rsplit("-", 1)[-1].lstrip("0")]
    assert first_prompt[: 2 + len(digits)] == ["welcome/tr", "open_ticket/tr", *digits]
    assert app.tickets is not None
    await app.tickets.close()  # the second ticket is written
    first, second = await tickets_of(app)
    assert (first.id, second.related_to) == (ticket.id, ticket.id)  # a repeat caller's open case
