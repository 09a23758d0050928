"""Direct lines: ``Stasis(hotline,queue,<id>)`` skips the menus and hands the caller to that queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.config import IvrConfig, load_ivr
from ivr.flow import Handoff
from tests.unit.ivr.test_flow import QUEUES, SUNDAY_NOON, Harness, make_harness


@pytest.fixture
def ivr() -> IvrConfig:
    return load_ivr(Path("config/ivr.toml"), QUEUES.queues)


@pytest.fixture
async def harness(tmp_path: Path, ivr: IvrConfig) -> AsyncIterator[Harness]:
    async for h in make_harness(tmp_path, ivr):
        yield h


async def test_a_direct_line_hands_the_caller_to_its_queue_without_menus(harness: Harness) -> None:
    fake = harness.fake
    await fake.start_call("d1", caller="05551112233", exten="1830", args=["queue", "operator"])
    await harness.wait(lambda k: "handed_to_queue" in k)

    call_id = harness.timeline[0].call_id
    assert harness.handoffs == [Handoff(call_id, "d1", "operator", "tr", False, "", "05551112233")]
    assert harness.kinds == ["stasis_start", "answered", "direct", "handed_to_queue"]
    assert harness.prompts() == []  # straight through: no welcome, no menu, no "connecting"
    assert fake.requests_to("POST", "/ari/channels/d1/answer")
    [direct] = [e for e in harness.timeline if e.kind == "direct"]
    assert direct.data == {"queue": "operator", "known": True}
    call = await harness.call()
    assert (call.queue, call.language, call.extension, call.urgent) == ("operator", "tr", "1830", False)
    assert call.ended_at is None  # the call goes on in the queue
    assert harness.flow.live_calls == 0


async def test_a_direct_line_to_the_emergency_queue_is_urgent(harness: Harness) -> None:
    await harness.fake.start_call("d2", args=["queue", "emergency"])
    kinds = await harness.wait(lambda k: "handed_to_queue" in k)
    assert kinds.index("urgent") < kinds.index("handed_to_queue")
    assert harness.handoffs[0].urgent and harness.handoffs[0].queue == "emergency"
    call = await harness.call()
    assert call.urgent and call.category is None


async def test_a_direct_line_to_an_unknown_queue_goes_to_the_fallback(harness: Harness) -> None:
    fake = harness.fake
    await fake.start_call("d3", args=["queue", "nosuch"])
    kinds = await harness.wait(lambda k: "ended" in k)
    assert harness.handoffs == []
    [cont] = fake.requests_to("POST", "/ari/channels/d3/continue")
    assert cont.query["label"] == "fallback" and cont.query["extension"] == "183"
    assert [e.data for e in harness.timeline if e.kind == "direct"] == [{"queue": "nosuch", "known": False}]
    call = await harness.call()
    assert call.outcome == "failed" and call.queue is None
    assert kinds[-2:] == ["stasis_end", "ended"]


async def test_a_caller_gone_before_the_answer_leaves_no_open_call(harness: Harness) -> None:
    fake = harness.fake
    fake.fail("POST", "/channels/d4/answer", 404, "Channel not found")
    await fake.start_call("d4", args=["queue", "operator"])
    await fake.caller_hangup("d4")
    await harness.wait(lambda k: "ended" in k)
    assert harness.handoffs == []
    assert (await harness.call()).outcome is not None
    assert harness.flow.live_calls == 0


@pytest.fixture
async def office_harness(tmp_path: Path, ivr: IvrConfig) -> AsyncIterator[Harness]:
    """Complaints keep office hours, and it is Sunday."""
    complaints = QUEUES.queues["complaints"].model_copy(update={"schedule": "office"})
    office = QUEUES.model_copy(update={"queues": {**QUEUES.queues, "complaints": complaints}})
    async for h in make_harness(tmp_path, ivr, clock=SUNDAY_NOON, queues=office):
        yield h


async def test_a_direct_line_to_a_closed_queue_takes_a_voicemail(office_harness: Harness) -> None:
    harness, fake = office_harness, office_harness.fake
    await fake.start_call("d5", args=["queue", "complaints"])
    await fake.wait_for(lambda: bool(fake.live_recordings))
    await harness.calls.flush()  # the timeline is written behind the call
    assert harness.prompts() == [["closed/tr"]]
    assert harness.handoffs == []
    call_id = harness.timeline[0].call_id
    [record] = fake.requests_to("POST", "/ari/channels/d5/record")
    assert record.query["name"] == f"voicemail-{call_id}"
