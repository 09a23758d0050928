"""Escalation at run time, on SQLite and PostgreSQL: ``Escalations`` started with fake voice and
webhook senders and a wall clock moved by hand. A signal pages at once, a sender's exception is a
try to repeat, desks accept or pass, and a restart resumes the tries a dead process left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from escalation import store as incidents
from escalation.channels import ChannelKind, Delivery
from escalation.config import EscalationConfig
from escalation.flow import Escalations
from escalation.models import Page, Severity
from escalation.store import Signal
from hotline import db
from hotline.clock import Clock
from tests.unit.escalation.conftest import FakeSender, Notice, Seen, WallClock, new_call

VOICE, WEBHOOK = ChannelKind.voice, ChannelKind.webhook

CONFIG = EscalationConfig.model_validate(
    {
        "targets": {
            "police": {
                "label": {"en": "Police duty desk"},
                "language": "en",
                "voice": {"dial": "PJSIP/155@trunk"},
                "webhook": {"url": "https://police.example/pages"},
            },
            "gendarmerie": {
                "label": {"en": "Gendarmerie duty desk"},
                "webhook": {"url": "https://gendarmerie.example/pages"},
            },
        },
        "policies": [
            {
                "id": "everything",
                "categories": ["*"],
                "repeat": 0,
                "ack_expiry": 600.0,
                "levels": [
                    {"targets": ["police"], "ack_timeout": 60.0},
                    {"targets": ["gendarmerie"], "ack_timeout": 60.0},
                ],
            }
        ],
    }
)


@dataclass
class Run:
    """One running ``Escalations`` with what it sent and published."""

    escalations: Escalations
    voice: FakeSender
    webhook: FakeSender
    notices: Seen[Notice]

    async def page_notice(self, page_id: str, state: str) -> None:
        await self.notices.until(
            lambda seen: any(n.get("page") == page_id and n.get("state") == state for n in seen)
        )


def links(page: Page) -> dict[str, str]:
    return {"ack": f"https://hotline.example/ack/{page.token}"}


async def started(store: db.Store, wall: WallClock, voice: FakeSender, webhook: FakeSender) -> Run:
    notices: Seen[Notice] = Seen()
    escalations = Escalations(
        store,
        CONFIG,
        {VOICE: voice, WEBHOOK: webhook},
        address=lambda target, channel: f"{channel}:{target}",
        links=links,
        province=lambda _number: "Ankara",
        publish=notices.add,
        clock=Clock(wall=wall),
    )
    await escalations.start()
    return Run(escalations, voice, webhook, notices)


@pytest.fixture
async def run(store: db.Store, wall: WallClock) -> AsyncIterator[Run]:
    running = await started(store, wall, FakeSender(), FakeSender())
    yield running
    await running.escalations.close()


async def urgent(store: db.Store, severity: Severity = Severity.high) -> Signal:
    call_id = await new_call(store)
    return Signal("ivr_key", "violence", severity, call_id=call_id, caller_number="05321234567")


async def page_for(store: db.Store, incident_id: str, target: str, channel: str) -> Page:
    pages = [
        p for p in await incidents.pages_of(store, incident_id) if (p.target, p.channel) == (target, channel)
    ]
    assert len(pages) == 1
    return pages[0]


async def test_a_signal_pages_the_first_level_at_once(store: db.Store, run: Run) -> None:
    incident = await run.escalations.signal(await urgent(store))

    # The outbox was woken: its next tick is 30 s away, the wait here is 5 s at most.
    (voice,) = await run.voice.received(1)
    (hook,) = await run.webhook.received(1)
    page = await page_for(store, incident.id, "police", "voice")
    assert (voice.page_id, voice.key, voice.attempt) == (page.id, f"{incident.id}:1:police:voice", 1)
    assert (voice.address, voice.language, voice.ack_code) == ("voice:police", "en", page.code)
    assert voice.ack_url == f"https://hotline.example/ack/{page.token}"
    assert voice.incident["id"] == incident.id and voice.incident["location"]["province"] == "Ankara"
    assert voice.text.startswith("Alo one eight three emergency page.")
    assert hook.key == f"{incident.id}:1:police:webhook"

    await run.page_notice(voice.page_id, "sent")
    await run.page_notice(hook.page_id, "sent")
    assert {p.state for p in await incidents.pages_of(store, incident.id)} == {"sent"}
    opened = [n for n in run.notices.items if n["event"] == "incident"]
    assert opened == [
        {
            "type": "incident",
            "event": "incident",
            "incident_id": incident.id,
            "call_id": incident.call_id,
            "category": "violence",
            "severity": "high",
            "status": "triggered",
            "silent": False,
            "signal": "ivr_key",
        }
    ]
    assert all(n["type"] == "incident" for n in run.notices.items)


async def test_another_signal_for_the_call_pages_nobody_again(store: db.Store, run: Run) -> None:
    signal = await urgent(store)
    first = await run.escalations.signal(signal)
    await run.voice.received(1)
    await run.webhook.received(1)

    second = await run.escalations.signal(
        Signal("keyword", "weapons", Severity.critical, call_id=signal.call_id)
    )

    assert second.id == first.id and second.severity == "critical"
    await run.notices.until(lambda seen: sum(n["event"] == "incident" for n in seen) == 2)
    assert len(await incidents.pages_of(store, first.id)) == 2
    assert len(run.voice.messages) == len(run.webhook.messages) == 1


async def test_a_sender_that_raises_is_a_failed_try_tried_again(
    store: db.Store, wall: WallClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(incidents, "BACKOFF", (0.0, 0.0, 0.0, 0.0))  # the waits: see test_outbox
    gone = Delivery(False, retry=False, detail="HTTP 410")  # a permanent failure: never again
    run = await started(store, wall, FakeSender(RuntimeError("bug in the sender")), FakeSender(gone))
    try:
        incident = await run.escalations.signal(await urgent(store))
        first, second = await run.voice.received(2)
        assert (first.key, first.attempt, second.attempt) == (second.key, 1, 2)
        await run.page_notice(first.page_id, "sent")
        (hook,) = await run.webhook.received(1)
        await run.page_notice(hook.page_id, "failed")
    finally:
        await run.escalations.close()

    page = await page_for(store, incident.id, "police", "voice")
    assert (page.state, page.tries) == ("sent", 2)
    failed = [e for e in await incidents.timeline(store, incident.id) if e.kind == "failed"]
    assert sorted((e.data["channel"], e.data["detail"], e.data["retry"]) for e in failed) == [
        ("voice", "error: RuntimeError", True),
        ("webhook", "HTTP 410", False),
    ]
    assert len(run.voice.messages) == 2 and len(run.webhook.messages) == 1
    assert (await page_for(store, incident.id, "police", "webhook")).state == "failed"


async def test_a_desk_that_accepts_acknowledges_the_incident(
    store: db.Store, wall: WallClock, run: Run
) -> None:
    incident = await run.escalations.signal(await urgent(store))
    (voice,) = await run.voice.received(1)
    await run.page_notice(voice.page_id, "sent")
    wall.advance(20)

    await run.escalations.page_outcome(voice.page_id, "accept")

    now = await incidents.get_incident(store, incident.id)
    expiry = wall.now + timedelta(seconds=600)
    assert (now.status, now.acked_by, now.acked_at, now.next_at) == (
        "acknowledged",
        "police",
        wall.now,
        expiry,
    )
    (acked,) = [n for n in run.notices.items if n["event"] == "acknowledged"]
    assert (acked["incident_id"], acked["status"], acked["by"]) == (incident.id, "acknowledged", "police")

    # Its ack timeout passes: nobody else is paged.
    wall.advance(60)
    await run.escalations.advance(incident.id)
    assert [p.level for p in await incidents.pages_of(store, incident.id)] == [0, 0]


async def test_a_desk_that_passes_pages_the_next_level(store: db.Store, run: Run) -> None:
    incident = await run.escalations.signal(await urgent(store))
    (voice,) = await run.voice.received(1)

    await run.escalations.page_outcome(voice.page_id, "pass")

    _, hook = await run.webhook.received(2)
    assert (hook.key, hook.address) == (f"{incident.id}:2:gendarmerie:webhook", "webhook:gendarmerie")
    now = await incidents.get_incident(store, incident.id)
    assert (now.status, now.level, now.round) == ("triggered", 1, 2)
    assert (await page_for(store, incident.id, "police", "voice")).state == "passed"


async def test_a_level_nobody_acknowledges_moves_on_after_its_ack_timeout(
    store: db.Store, wall: WallClock, run: Run
) -> None:
    incident = await run.escalations.signal(await urgent(store))
    await run.webhook.received(1)

    wall.advance(59)
    await run.escalations.advance(incident.id)
    assert len(await incidents.pages_of(store, incident.id)) == 2
    wall.advance(1)
    await run.escalations.advance(incident.id)

    _, hook = await run.webhook.received(2)
    assert hook.key == f"{incident.id}:2:gendarmerie:webhook"
    assert len(run.voice.messages) == 1


async def test_an_acknowledgement_link_or_code_acknowledges_by_its_token(store: db.Store, run: Run) -> None:
    incident = await run.escalations.signal(await urgent(store))
    (hook,) = await run.webhook.received(1)
    page = await page_for(store, incident.id, "police", "webhook")

    assert await run.escalations.acknowledge_token("not-a-token") is None
    assert (await incidents.get_incident(store, incident.id)).status == "triggered"

    acked = await run.escalations.acknowledge_token(page.token)
    assert acked is not None and (acked.id, acked.status, acked.acked_by) == (
        incident.id,
        "acknowledged",
        "police/webhook",
    )
    assert hook.ack_url.endswith(page.token)


async def test_resolving_stops_the_timers_and_publishes_it(store: db.Store, run: Run) -> None:
    incident = await run.escalations.signal(await urgent(store))
    await run.webhook.received(1)

    done = await run.escalations.resolve(incident.id, "supervisor", note="handled")

    assert (done.status, done.next_at) == ("resolved", None)
    assert await incidents.next_due(store) is None
    (resolved,) = [n for n in run.notices.items if n["event"] == "resolved"]
    assert (resolved["status"], resolved["by"]) == ("resolved", "supervisor")


async def test_a_restart_sends_a_try_left_unfinished_once_more_with_the_same_key(
    store: db.Store, wall: WallClock
) -> None:
    stuck = FakeSender()
    stuck.hold = asyncio.Event()  # never set: the process dies during this try
    first = await started(store, wall, stuck, FakeSender())
    incident = await first.escalations.signal(await urgent(store))
    (lost,) = await stuck.received(1)
    (hook,) = await first.webhook.received(1)
    await first.page_notice(hook.page_id, "sent")
    await first.escalations.close()
    assert (await page_for(store, incident.id, "police", "voice")).state == "sending"

    wall.advance(30)
    second = await started(store, wall, FakeSender(), FakeSender())
    try:
        (again,) = await second.voice.received(1)
        await second.page_notice(again.page_id, "sent")
    finally:
        await second.escalations.close()

    assert (again.page_id, again.key, again.attempt) == (lost.page_id, lost.key, 2)
    assert len(second.voice.messages) == 1 and second.webhook.messages == []  # the sent one stays sent
    page = await page_for(store, incident.id, "police", "voice")
    assert (page.state, page.tries) == ("sent", 2)
    notes = [e.data for e in await incidents.timeline(store, incident.id) if e.kind == "note"]
    assert notes == [{"page": lost.page_id, "resumed": True}]
