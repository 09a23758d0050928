"""Tickets from real calls: a SIPp caller chooses child protection, talks to a SIPp agent phone
and hangs up; the case is opened, routed and due; the same caller's next call is linked to it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from agents.notifier import Subscription
from agents.service import Presence
from hotline.app import App, create_app
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


async def free(app: App, stream: Subscription, agent_id: str) -> None:
    """Until ``agent_id`` is available again (their wrap-up is over)."""
    async with asyncio.timeout(30):
        while app.queues.router.agents[agent_id].presence is not Presence.available:
            await stream.get()


async def test_a_repeat_caller_who_presses_1_is_put_through_to_the_agent_of_their_case(
    settings: Settings, hotline_settings: Settings, phone_port: int, second_phone_port: int
) -> None:
    two = [a for a in hotline_settings.agents if a.id in ("9001", "9002")]
    app = create_app(settings.model_copy(update={"agents": two}))
    await app.start(serve_web=False)
    try:
        async with (
            app.queues.notices.subscribe() as stream,
            sipp.phone(port=phone_port, calls=2, talk_ms=800),
            sipp.phone(port=second_phone_port, calls=2, talk_ms=800),
        ):
            made = asyncio.get_running_loop().create_future()
            app.calls.subscribe(
                lambda e: made.set_result(e) if e.kind == "ticket_created" and not made.done() else None
            )
            first = ended(app)
            assert (await sipp.call(settings, "183", digits="14", hold=30)).ok  # Türkçe, social assistance
            await asyncio.wait_for(first, 30)
            await asyncio.wait_for(made, 30)
            [ticket] = await tickets_of(app)
            theirs = ticket.assigned_agent
            assert theirs in ("9001", "9002")
            other = "9002" if theirs == "9001" else "9001"
            await free(app, stream, theirs)
            await free(app, stream, other)

            # By the queue's rule (longest idle) the other agent would take the next call.
            second = ended(app)
            assert (await sipp.call(settings, "183", digits="1", hold=30)).ok
            [end] = await asyncio.wait_for(second, 30)
        events = await app.calls.events(end.call_id)
        told = [e.data for e in events if e.kind == "open_ticket_told"]
        assert told == [{"ticket": ticket.number, "agent_offered": theirs}]
        first_prompt = next(e.data["prompts"] for e in events if e.kind == "prompt")
        assert first_prompt[-1] == "open_ticket_offer/tr"
        steps = [e.data["agent"] for e in events if e.kind in ("offered", "agent_connected")]
        assert steps == [theirs, theirs]
        call = await app.calls.get(end.call_id)
        assert call is not None and (call.queue, call.outcome) == ("social_assistance", "completed")
    finally:
        await app.close()
