"""Tickets opened from the call timeline: which calls get one, what it starts with, and the
sweep that makes those a dead process never made."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from hotline import db
from hotline.calls import CallLog
from hotline.clock import Clock
from hotline.models import CallEventKind, CallOutcome
from hotline.workdays import Calendar
from tickets.config import TicketsConfigError, load_tickets
from tickets.flow import TicketFlow
from tickets.models import Priority, Source, Ticket

ISTANBUL = ZoneInfo("Europe/Istanbul")
CONFIG = load_tickets(Path("config/tickets.toml"))
# A Friday afternoon before Kurban Bayramı 2026 (27-30 May; 26 May is its half-day eve).
START = datetime(2026, 5, 22, 11, 0, tzinfo=UTC)


def flow_for(store: db.Store, calls: CallLog, said: dict[str, str] | None = None) -> TicketFlow:
    async def hint(call_id: str) -> str:
        return (said or {}).get(call_id, "")

    clock = Clock(wall=lambda: START)
    return TicketFlow(store, calls, CONFIG, Calendar(), ISTANBUL, said=hint, clock=clock)


async def call(
    calls: CallLog,
    number: str = "05321234567",
    *,
    category: str | None = "child_protection",
    agent: str | None = "9001",
    outcome: CallOutcome = CallOutcome.completed,
    urgent: bool = False,
    voicemail: str | None = None,
) -> str:
    """A call through the IVR to a queue (taken by ``agent``), ended with ``outcome``."""
    opened, _ = await calls.open(f"chan-{number}-{outcome}-{agent}", caller_number=number, caller_name="Ayşe")
    calls._clock = Clock(wall=lambda: START)  # the call started at START
    await calls.route(opened.id, queue="q", category=category, language="tr", path=["1", "2"])
    if urgent:
        await calls.mark_urgent(opened.id, "key")
    if agent:
        await calls.record(opened.id, CallEventKind.agent_connected, agent=agent, agent_channel="x")
    if voicemail:  # as the IVR does: the message is stored, then the call ends
        await calls.voicemail(opened.id, voicemail, 12)
    await calls.close(opened.id, outcome)
    return opened.id


async def tickets_of(store: db.Store) -> list[Ticket]:
    async with store.session() as session:
        return list((await session.exec(select(Ticket).order_by(Ticket.seq))).all())


async def ended(flow: TicketFlow, step: Callable[[], Awaitable[str]]) -> str:
    """Run ``step`` (a call that ends) and wait for the tickets its end makes."""
    call_id = await step()
    await flow.close()
    return call_id


async def test_an_answered_call_becomes_a_routed_ticket_due_in_working_days(store: db.Store) -> None:
    calls = CallLog(store, Clock(wall=lambda: START))
    flow = flow_for(store, calls)
    calls.subscribe(flow.on_call_event)
    call_id = await ended(flow, lambda: call(calls))
    [ticket] = await tickets_of(store)
    assert (ticket.call_id, ticket.source, ticket.number) == (call_id, Source.call, "183-2026-000001")
    assert (ticket.category, ticket.unit) == ("child_protection", "child_protection_unit")
    assert (ticket.priority, ticket.assigned_agent, ticket.ivr_path) == (Priority.urgent, "9001", ["1", "2"])
    assert (ticket.caller_number, ticket.caller_name, ticket.language) == ("05321234567", "Ayşe", "tr")
    # One working day after Friday 22 May: Monday 25 May, to its end in Istanbul.
    assert ticket.due_at == datetime(2026, 5, 25, 23, 59, 59, 999999, tzinfo=ISTANBUL)
    events = await calls.events(call_id)
    assert [e.data for e in events if e.kind == "ticket_created"] == [{"ticket": "183-2026-000001"}]


async def test_which_calls_become_tickets(store: db.Store) -> None:
    calls = CallLog(store, Clock(wall=lambda: START))
    flow = flow_for(store, calls)
    calls.subscribe(flow.on_call_event)
    await call(calls, "05320000001", agent=None, outcome=CallOutcome.abandoned)  # an ordinary caller gave up
    urgent = await call(calls, "05320000002", agent=None, outcome=CallOutcome.abandoned, urgent=True)
    await call(calls, "05320000003", agent=None, outcome=CallOutcome.abandoned_in_ivr)
    message = await call(calls, "05320000004", agent=None, outcome=CallOutcome.voicemail, voicemail="vm-1")
    await flow.close()
    made = {t.call_id: t.source for t in await tickets_of(store)}
    assert made == {urgent: Source.abandoned_urgent, message: Source.voicemail}


async def test_a_call_to_the_operator_gets_its_category_from_what_was_said(store: db.Store) -> None:
    calls = CallLog(store, Clock(wall=lambda: START))
    said: dict[str, str] = {}
    flow = flow_for(store, calls, said)
    opened = await call(calls, "03121234567", category=None)
    said[opened] = "Komşunun çocuğu sokakta, ihmal ediliyor"
    await flow.ticket_for(opened)
    [ticket] = await tickets_of(store)
    assert (ticket.category, ticket.unit) == ("child_protection", "child_protection_unit")
    # No words of any category: none, and the unit follows the caller's province (Ankara's 0312).
    other = await call(calls, "03129999999", category=None, agent="9002")
    said[other] = "merhaba"
    await flow.ticket_for(other)
    assert [(t.category, t.unit) for t in await tickets_of(store)][1] == (None, "ankara_social_services")


async def test_a_repeat_caller_is_linked_and_an_end_seen_twice_makes_one_ticket(store: db.Store) -> None:
    calls = CallLog(store, Clock(wall=lambda: START))
    flow = flow_for(store, calls)
    first = await call(calls, "05325555555")
    second = await call(calls, "05325555555", agent="9002")
    await asyncio.gather(flow.ticket_for(first), flow.ticket_for(first))
    await flow.ticket_for(second)
    one, two = await tickets_of(store)
    assert (one.call_id, two.call_id, two.related_to) == (first, second, one.id)


async def test_the_sweep_makes_the_tickets_a_dead_process_never_made(store: db.Store) -> None:
    calls = CallLog(store, Clock(wall=lambda: START))
    made = await call(calls)  # ended with no flow listening: the process died at that moment
    await call(calls, "05320000009", agent=None, outcome=CallOutcome.abandoned)  # needs none
    flow = flow_for(store, calls)
    assert await flow.sweep() == 1
    assert [t.call_id for t in await tickets_of(store)] == [made]
    assert await flow.sweep() == 0


def test_a_routing_rule_naming_an_unknown_unit_stops_start_up(tmp_path: Path) -> None:
    bad = tmp_path / "tickets.toml"
    bad.write_text(
        Path("config/tickets.toml")
        .read_text(encoding="utf-8")
        .replace('unit = "police_liaison"', 'unit = "polis"')
    )
    with pytest.raises(TicketsConfigError, match=r"tickets.toml: routing.*unknown unit 'polis'"):
        load_tickets(bad)
