"""Incidents and the page outbox in the database, on SQLite and PostgreSQL: one page per target and
channel, tries counted before they start, retries with backoff, pages nobody wants any more
cancelled, a dead process's tries resumed, and acknowledging, passing on and resolving."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from escalation import store as incidents
from escalation.channels import ChannelKind, Delivery
from escalation.models import Incident, IncidentEvent, Page, Severity, Status
from escalation.service import Level, PageLevel, Policy
from escalation.store import BACKOFF, MAX_TRIES, Signal
from hotline import db
from tests.unit.escalation.conftest import T0, at, new_call

VOICE, WEBHOOK, SMS = ChannelKind.voice, ChannelKind.webhook, ChannelKind.sms
CHANNELS = {"police": (VOICE, WEBHOOK), "gendarmerie": (WEBHOOK,), "ambulance": (SMS,)}


def policy(delay: float = 0.0) -> Policy:
    return Policy(
        "danger",
        levels=(
            Level(("police", "gendarmerie"), ack_timeout=60),
            Level(("ambulance",), delay=delay, ack_timeout=60),
            Level(("gendarmerie",), ack_timeout=60),
        ),
        repeat=0,
        ack_expiry=600,
    )


POLICY = policy()


def reach(incident: Incident, action: PageLevel) -> list[tuple[str, ChannelKind]]:
    level = POLICY.levels[action.level]
    return [(target, channel) for target in level.targets for channel in CHANNELS[target]]


def signal(call_id: str | None, severity: Severity = Severity.high, **more: Any) -> Signal:
    return Signal("ivr_key", "violence", severity, call_id=call_id, caller_number="05321234567", **more)


async def opened(store: db.Store, the_policy: Policy = POLICY) -> tuple[Incident, list[Page]]:
    """A new incident with its first level paged at T0."""
    incident, new = await incidents.open_or_add(store, signal(await new_call(store)), (the_policy,), None, T0)
    assert new
    pages = await incidents.advance(store, incident.id, the_policy, reach, T0)
    return await incidents.get_incident(store, incident.id), pages


async def page(store: db.Store, page_id: str) -> Page:
    (found,) = await incidents.pages_by_id(store, [page_id])
    return found


async def kinds(store: db.Store, incident_id: str) -> list[str]:
    return [str(e.kind) for e in await incidents.timeline(store, incident_id)]


async def events(store: db.Store, incident_id: str, kind: str) -> list[IncidentEvent]:
    return [e for e in await incidents.timeline(store, incident_id) if e.kind == kind]


def by_target(pages: list[Page]) -> dict[tuple[str, str], Page]:
    return {(p.target, p.channel): p for p in pages}


# -- the outbox ------------------------------------------------------------------------------------


async def test_a_new_incident_pages_its_first_level_once_per_target_and_channel(store: db.Store) -> None:
    incident, pages = await opened(store)

    assert sorted((p.target, p.channel) for p in pages) == [
        ("gendarmerie", "webhook"),
        ("police", "voice"),
        ("police", "webhook"),
    ]
    for p in pages:
        assert p.key == f"{incident.id}:1:{p.target}:{p.channel}"
        assert (p.state, p.tries, p.round, p.level, p.loop, p.next_try_at) == ("pending", 0, 1, 0, 0, T0)
    assert len({p.token for p in pages}) == 3 and all(len(p.code) == 4 for p in pages)
    assert (incident.round, incident.paged_at, incident.next_at) == (1, T0, at(60))
    assert await kinds(store, incident.id) == ["opened", "signal", "paged"]
    (paged,) = await events(store, incident.id, "paged")
    assert paged.data["pages"] == ["police/voice", "police/webhook", "gendarmerie/webhook"]

    # Asked again with nothing due: no second round, no duplicate page.
    assert await incidents.advance(store, incident.id, POLICY, reach, at(59)) == []
    assert {p.id for p in await incidents.pages_of(store, incident.id)} == {p.id for p in pages}
    assert sorted(await incidents.due_pages(store, T0)) == sorted(p.id for p in pages)
    assert await incidents.next_page_at(store) == T0


async def test_the_same_key_can_never_be_queued_twice(store: db.Store) -> None:
    incident, pages = await opened(store)
    twin = Page(
        incident_id=incident.id,
        key=pages[0].key,
        round=1,
        level=0,
        loop=0,
        target="x",
        channel="sms",
        token="another-token",
        code="0000",
    )
    with pytest.raises(sa.exc.IntegrityError):
        async with store.session() as session:
            session.add(twin)
            await session.commit()


async def test_claim_counts_the_try_and_commits_it_before_the_send(store: db.Store) -> None:
    incident, pages = await opened(store)
    first = pages[0]

    claimed = await incidents.claim(store, first.id, at(1))
    assert claimed is not None
    got, of = claimed
    assert (got.id, got.state, got.tries, got.key) == (first.id, "sending", 1, first.key)
    assert (of.id, of.status) == (incident.id, "triggered")
    stored = await page(store, first.id)  # committed: another session sees the try
    assert (stored.state, stored.tries) == ("sending", 1)

    assert await incidents.claim(store, first.id, at(1)) is None  # taken already
    assert (await page(store, first.id)).tries == 1
    assert first.id not in await incidents.due_pages(store, at(1))


async def test_a_delivered_page_is_sent_with_an_entry_on_the_timeline(store: db.Store) -> None:
    incident, pages = await opened(store)
    await incidents.claim(store, pages[0].id, at(1))

    done = await incidents.finish(store, pages[0].id, Delivery(True, detail="HTTP 200"), at(2))

    assert (done.state, done.sent_at, done.detail, done.tries) == ("sent", at(2), "HTTP 200", 1)
    (sent,) = await events(store, incident.id, "sent")
    assert sent.at == at(2)
    assert sent.data == {"target": done.target, "channel": done.channel, "try": 1, "detail": "HTTP 200"}
    assert pages[0].id not in await incidents.due_pages(store, at(1000))


async def test_a_temporary_failure_is_tried_again_after_the_backoff_then_given_up(store: db.Store) -> None:
    incident, pages = await opened(store)
    first = pages[0]
    now = T0
    for attempt in range(1, MAX_TRIES + 1):
        assert first.id in await incidents.due_pages(store, now)
        claimed = await incidents.claim(store, first.id, now)
        assert claimed is not None and claimed[0].tries == attempt and claimed[0].key == first.key
        done = await incidents.finish(store, first.id, Delivery(False, retry=True, detail="HTTP 503"), now)
        if attempt < MAX_TRIES:
            wait = timedelta(seconds=BACKOFF[attempt - 1])
            assert (done.state, done.next_try_at, done.done_at) == ("pending", now + wait, None)
            assert first.id not in await incidents.due_pages(store, now + wait - timedelta(seconds=1))
            now += wait
        else:
            assert (done.state, done.done_at, done.tries) == ("failed", now, MAX_TRIES)
    assert await incidents.claim(store, first.id, now) is None

    failed = await events(store, incident.id, "failed")
    assert [(e.data["try"], e.data["retry"]) for e in failed] == [
        *((n, True) for n in range(1, MAX_TRIES)),
        (MAX_TRIES, False),
    ]
    assert BACKOFF == (5.0, 10.0, 20.0, 40.0) and MAX_TRIES == 5  # what the waits above were


async def test_a_permanent_failure_is_given_up_at_once(store: db.Store) -> None:
    incident, pages = await opened(store)
    await incidents.claim(store, pages[0].id, at(1))

    done = await incidents.finish(store, pages[0].id, Delivery(False, retry=False, detail="HTTP 410"), at(2))

    assert (done.state, done.done_at, done.tries, done.detail) == ("failed", at(2), 1, "HTTP 410")
    (failed,) = await events(store, incident.id, "failed")
    assert failed.data["retry"] is False
    assert pages[0].id not in await incidents.due_pages(store, at(1000))


# -- pages nobody wants any more --------------------------------------------------------------------


async def test_a_page_of_an_earlier_level_not_yet_delivered_is_still_tried(store: db.Store) -> None:
    incident, pages = await opened(store)
    old = pages[0]
    later = await incidents.advance(store, incident.id, POLICY, reach, at(60))  # level 1, round 2
    assert [(p.target, p.round) for p in later] == [("ambulance", 2)]

    claimed = await incidents.claim(store, old.id, at(61))  # the first team is still told
    assert claimed is not None and (claimed[0].state, claimed[0].tries, claimed[0].round) == ("sending", 1, 1)
    assert await incidents.claim(store, later[0].id, at(61)) is not None


async def test_a_page_of_an_incident_no_longer_triggered_is_never_tried(store: db.Store) -> None:
    incident, pages = await opened(store)
    for status in (Status.acknowledged, Status.resolved):
        # Whatever left the page pending, the incident's state decides at claim.
        async with store.session() as session:
            row = await session.get(Incident, incident.id)
            assert row is not None
            row.status = status
            session.add(row)
            await session.commit()
        p = pages.pop()
        assert await incidents.claim(store, p.id, at(1)) is None
        assert ((await page(store, p.id)).state, (await page(store, p.id)).tries) == ("cancelled", 0)


async def test_acknowledging_or_resolving_cancels_the_pending_pages(store: db.Store) -> None:
    _, pages = await opened(store)
    await incidents.acknowledge_page(store, pages[0].id, "desk", at(5), POLICY)
    for p in pages[1:]:
        assert await incidents.claim(store, p.id, at(6)) is None
        assert (await page(store, p.id)).state == "cancelled"

    resolved, pages = await opened(store)
    await incidents.resolve_incident(store, resolved.id, "supervisor", at(5))
    for p in pages:
        assert await incidents.claim(store, p.id, at(6)) is None
        assert (await page(store, p.id)).state == "cancelled"
    assert await incidents.due_pages(store, at(1000)) == []


async def test_a_try_that_ends_after_its_page_was_settled_keeps_the_settlement(store: db.Store) -> None:
    incident, pages = await opened(store)
    voice, hook = by_target(pages)[("police", "voice")], by_target(pages)[("police", "webhook")]
    await incidents.claim(store, voice.id, at(1))
    await incidents.claim(store, hook.id, at(1))
    await incidents.acknowledge_page(store, voice.id, "police", at(2), POLICY)  # pressed 1 in the call

    assert (await incidents.finish(store, voice.id, Delivery(True), at(3))).state == "acknowledged"
    # The webhook's try was under way: its outcome is what happened, not a cancellation.
    assert (await incidents.finish(store, hook.id, Delivery(True), at(3))).state == "sent"
    assert [e.data["channel"] for e in await events(store, incident.id, "sent")] == ["webhook"]


# -- a process that died mid-try ----------------------------------------------------------------------


async def test_tries_left_sending_by_a_dead_process_are_resumed_with_the_same_key(store: db.Store) -> None:
    incident, pages = await opened(store)
    sending, sent, waiting = pages
    await incidents.claim(store, sending.id, at(1))  # the process died during this try
    await incidents.claim(store, sent.id, at(1))
    await incidents.finish(store, sent.id, Delivery(True), at(2))

    resumed = await incidents.interrupted(store, at(100))

    assert [p.id for p in resumed] == [sending.id]
    again = await page(store, sending.id)
    assert (again.state, again.next_try_at, again.tries, again.key) == ("pending", at(100), 1, sending.key)
    assert ((await page(store, sent.id)).state, (await page(store, waiting.id)).state) == ("sent", "pending")
    notes = await events(store, incident.id, "note")
    assert [(n.at, n.data) for n in notes] == [(at(100), {"page": sending.id, "resumed": True})]

    claimed = await incidents.claim(store, sending.id, at(100))
    assert claimed is not None and (claimed[0].tries, claimed[0].key) == (2, sending.key)
    assert [p.id for p in await incidents.interrupted(store, at(101))] == [sending.id]  # its new try
    assert await incidents.interrupted(store, at(102)) == []


# -- acknowledging, passing on, resolving ------------------------------------------------------------------


async def test_an_acknowledgement_stops_escalation_until_it_expires(store: db.Store) -> None:
    incident, pages = await opened(store)
    voice = by_target(pages)[("police", "voice")]
    await incidents.claim(store, voice.id, at(1))
    await incidents.finish(store, voice.id, Delivery(True), at(2))

    acked = await incidents.acknowledge_page(store, voice.id, "Polis 155", at(10), POLICY)

    assert acked is not None
    assert (acked.status, acked.acked_at, acked.acked_by, acked.next_at) == (
        "acknowledged",
        at(10),
        "Polis 155",
        at(610),
    )
    states = {(p.target, p.channel): p.state for p in await incidents.pages_of(store, incident.id)}
    assert states == {
        ("police", "voice"): "acknowledged",
        ("police", "webhook"): "cancelled",
        ("gendarmerie", "webhook"): "cancelled",
    }
    (entry,) = await events(store, incident.id, "acknowledged")
    assert (entry.by, entry.data) == ("Polis 155", {"target": "police", "channel": "voice", "page": voice.id})
    assert await incidents.acknowledge_page(store, voice.id, "again", at(11), POLICY) is None

    # The level's ack timeout passes: nothing moves.
    assert await incidents.due_incidents(store, at(609)) == []
    assert await incidents.advance(store, incident.id, POLICY, reach, at(300)) == []
    # Not resolved by the expiry: the level where it stood is paged again.
    assert await incidents.due_incidents(store, at(610)) == [(incident.id, "danger")]
    again = await incidents.advance(store, incident.id, POLICY, reach, at(610))
    assert {(p.target, p.round) for p in again} == {("police", 2), ("gendarmerie", 2)}
    assert (await incidents.get_incident(store, incident.id)).status == "triggered"


async def test_a_pass_pages_the_next_level_at_once_and_only_once_per_round(store: db.Store) -> None:
    incident, pages = await opened(store)
    police, gendarmerie = by_target(pages)[("police", "voice")], by_target(pages)[("gendarmerie", "webhook")]

    moved = await incidents.pass_page(store, police.id, "police", at(5), POLICY, reach)

    assert [(p.target, p.channel, p.round, p.level) for p in moved] == [("ambulance", "sms", 2, 1)]
    assert moved[0].key == f"{incident.id}:2:ambulance:sms"
    now = await incidents.get_incident(store, incident.id)
    assert (now.status, now.level, now.round, now.paged_at, now.next_at) == ("triggered", 1, 2, at(5), at(65))
    assert (await page(store, police.id)).state == "passed"
    assert (await kinds(store, incident.id))[-3:] == ["passed", "escalated", "paged"]
    (escalated,) = await events(store, incident.id, "escalated")
    assert escalated.data == {"from": 0, "to": 1, "loop": 0, "reason": "passed"}

    # Another desk of the same round passes too: changes nothing.
    assert await incidents.pass_page(store, gendarmerie.id, "gendarmerie", at(6), POLICY, reach) == []
    assert await incidents.pass_page(store, police.id, "police", at(6), POLICY, reach) == []
    after = await incidents.get_incident(store, incident.id)
    assert (after.level, after.round, after.version) == (1, 2, now.version)
    assert len(await events(store, incident.id, "passed")) == 1
    assert (await page(store, gendarmerie.id)).state == "pending"


async def test_a_second_pass_changes_nothing_while_the_next_level_waits_its_delay(store: db.Store) -> None:
    delayed = policy(delay=30)
    incident, pages = await opened(store, delayed)
    police, gendarmerie = by_target(pages)[("police", "voice")], by_target(pages)[("gendarmerie", "webhook")]

    assert await incidents.pass_page(store, police.id, "police", at(5), delayed, reach) == []  # in 30 s
    now = await incidents.get_incident(store, incident.id)
    assert (now.level, now.round, now.paged_at, now.next_at) == (1, 1, None, at(35))

    assert await incidents.pass_page(store, gendarmerie.id, "gendarmerie", at(6), delayed, reach) == []
    after = await incidents.get_incident(store, incident.id)
    assert (after.level, after.round, after.next_at, after.version) == (1, 1, at(35), now.version)
    assert len(await events(store, incident.id, "passed")) == 1
    paged = await incidents.advance(store, incident.id, delayed, reach, at(35))
    assert [(p.target, p.level, p.round) for p in paged] == [("ambulance", 1, 2)]


async def test_resolving_cancels_what_is_waiting_and_stops_the_timers(store: db.Store) -> None:
    incident, pages = await opened(store)
    sent, sending, pending = pages
    await incidents.claim(store, sent.id, at(1))
    await incidents.finish(store, sent.id, Delivery(True), at(2))
    await incidents.claim(store, sending.id, at(3))

    done = await incidents.resolve_incident(store, incident.id, "supervisor", at(10), note="police on site")

    assert (done.status, done.resolved_at, done.resolved_by, done.next_at) == (
        "resolved",
        at(10),
        "supervisor",
        None,
    )
    states = [(await page(store, p.id)).state for p in (sent, sending, pending)]
    assert states == ["sent", "sending", "cancelled"]  # a try under way keeps its outcome
    (entry,) = await events(store, incident.id, "resolved")
    assert (entry.by, entry.data) == ("supervisor", {"note": "police on site"})
    assert await incidents.due_incidents(store, at(100_000)) == []
    assert await incidents.next_due(store) is None
    assert await incidents.due_pages(store, at(100_000)) == []
    assert await incidents.open_incidents(store) == []
    assert (await incidents.resolve_incident(store, incident.id, "other", at(20))).resolved_by == "supervisor"
    assert len(await events(store, incident.id, "resolved")) == 1


# -- signals ---------------------------------------------------------------------------------------------


async def test_more_signals_for_a_call_go_to_its_open_incident(store: db.Store) -> None:
    call_id = await new_call(store)
    first, new = await incidents.open_or_add(store, signal(call_id, silent=True), (POLICY,), "Ankara", T0)
    assert new and (first.severity, first.silent, first.province) == ("high", True, "Ankara")
    await incidents.advance(store, first.id, POLICY, reach, T0)

    graver, new = await incidents.open_or_add(
        store, signal(call_id, Severity.critical, evidence={"words": ["silah"]}), (POLICY,), None, at(5)
    )
    assert not new and graver.id == first.id
    assert (graver.severity, graver.silent) == ("critical", True)  # raised; still cannot speak

    milder, new = await incidents.open_or_add(store, signal(call_id, Severity.low), (POLICY,), None, at(6))
    assert not new and (milder.id, milder.severity) == (first.id, "critical")

    assert [i.id for i in await incidents.open_incidents(store)] == [first.id]
    signals = await events(store, first.id, "signal")
    assert [(e.at, e.data["severity"]) for e in signals] == [
        (T0, "high"),
        (at(5), "critical"),
        (at(6), "low"),
    ]
    assert signals[1].data["evidence"] == {"words": ["silah"]}
    assert len(await incidents.pages_of(store, first.id)) == 3  # no second paging round

    await incidents.resolve_incident(store, first.id, "supervisor", at(10))
    again, new = await incidents.open_or_add(store, signal(call_id), (POLICY,), None, at(20))
    assert new and again.id != first.id and (again.status, again.opened_at) == ("triggered", at(20))


async def test_signals_without_a_call_open_an_incident_each(store: db.Store) -> None:
    one, new_one = await incidents.open_or_add(store, signal(None), (POLICY,), None, T0)
    two, new_two = await incidents.open_or_add(store, signal(None), (POLICY,), None, T0)
    assert new_one and new_two and one.id != two.id
