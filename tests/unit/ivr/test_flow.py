"""The IVR flow on the fake ARI server, a SQLite store and a hand-driven key timer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agents.config import QueuesConfig, load_queues
from ari import AriClient
from ari.testing import FakeAri
from hotline import db
from hotline.callflow import Fallback, Guard
from hotline.calls import CallLog
from hotline.clock import Clock
from hotline.models import Call, CallEvent
from ivr.config import IvrConfig, load_ivr
from ivr.flow import FlowConfig, Handoff, IvrFlow, OpenCase, OpenTicket
from ivr.service import AgentOffer
from tests.harness.clock import ManualSleep

LANGUAGES = ("tr", "en", "ar")
SUNDAY_NOON = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


class Harness:
    def __init__(self, fake: FakeAri, calls: CallLog, flow: IvrFlow, timer: ManualSleep) -> None:
        self.fake, self.calls, self.flow, self.timer = fake, calls, flow, timer
        self.handoffs: list[Handoff] = []
        self.timeline: list[CallEvent] = []
        self._changed = asyncio.Condition()
        calls.subscribe(self._on_event)

    def _on_event(self, event: CallEvent) -> None:
        self.timeline.append(event)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    @property
    def kinds(self) -> list[str]:
        return [e.kind for e in self.timeline]

    async def wait(self, predicate: Callable[[list[str]], bool], timeout: float = 5) -> list[str]:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self.kinds))
        return self.kinds

    async def wait_count(self, kind: str, count: int) -> None:
        await self.wait(lambda k: k.count(kind) >= count)

    def prompts(self) -> list[list[str]]:
        return [e.data["prompts"] for e in self.timeline if e.kind == "prompt"]

    async def call(self) -> Call:
        found = await self.calls.get(self.timeline[0].call_id)
        assert found is not None
        return found


def sounds(ivr: IvrConfig) -> dict[tuple[str, str], str]:
    return {(name, lang): f"sound:/p/{name}-{lang}" for name, texts in ivr.prompts.items() for lang in texts}


QUEUES = load_queues(Path("config/queues.toml"))


def guard_for(client: AriClient, calls: CallLog) -> Guard:
    """The guard as the app builds it: failures go to the dialplan's fallback label of 183."""
    return Guard(calls, Fallback(client, context="from-caller", extension="183", label="fallback"))


@pytest.fixture
def ivr() -> IvrConfig:
    return load_ivr(Path("config/ivr.toml"), QUEUES.queues)


async def make_harness(
    tmp_path: Path,
    ivr: IvrConfig,
    clock: datetime = SUNDAY_NOON,
    queues: QueuesConfig = QUEUES,
    open_ticket: OpenTicket | None = None,
) -> AsyncIterator[Harness]:
    url = f"sqlite:///{tmp_path / 'flow.db'}"
    await db.upgrade_async(url)
    store = db.Store(url)
    timer = ManualSleep()
    async with FakeAri(username="hotline", password="pw") as fake:
        client = AriClient(fake.base_url, "hotline", "pw", "hotline", backoff_base=0.01, backoff_max=0.05)
        calls = CallLog(store)
        handoffs: list[Handoff] = []

        async def handoff(h: Handoff) -> None:
            handoffs.append(h)

        flow = IvrFlow(
            client,
            calls,
            ivr,
            queues,
            sounds(ivr),
            FlowConfig("183", LANGUAGES),
            handoff,
            guard_for(client, calls),
            clock=Clock(wall=lambda: clock, sleep=timer),
            open_ticket=open_ticket,
        )
        async with client:
            client.on_event(flow.handle)
            runner = asyncio.create_task(client.run())
            await client.wait_connected(5)
            harness = Harness(fake, calls, flow, timer)
            harness.handoffs = handoffs
            yield harness
            flow.close()
        await runner
    await store.close()


@pytest.fixture
async def harness(tmp_path: Path, ivr: IvrConfig) -> AsyncIterator[Harness]:
    async for h in make_harness(tmp_path, ivr):
        yield h


async def nowhere(h: Handoff) -> None:
    raise AssertionError(f"no hand-off expected: {h}")


async def key_timer_running(harness: Harness) -> None:
    await asyncio.wait_for(harness.timer.armed.wait(), 5)
    harness.timer.armed.clear()


async def test_a_caller_chooses_english_then_child_protection(harness: Harness) -> None:
    fake = harness.fake
    await fake.start_call("c1", caller="05551112233")
    await key_timer_running(harness)
    await fake.send_dtmf("c1", "2")
    await key_timer_running(harness)
    await fake.send_dtmf("c1", "2")
    await harness.wait(lambda k: "handed_to_queue" in k)

    assert harness.prompts() == [
        ["welcome/tr", "choose_language/tr", "choose_language/en", "choose_language/ar"],
        ["main_menu/en"],
        ["connecting/en"],
    ]
    call_id = harness.timeline[0].call_id
    assert harness.handoffs == [Handoff(call_id, "c1", "child_protection", "en", False, "", "05551112233")]
    call = await harness.call()
    assert (call.queue, call.category, call.language) == ("child_protection", "child_protection", "en")
    assert not call.urgent
    assert call.ended_at is None  # the call goes on in the queue
    assert harness.flow.live_calls == 0  # and the IVR no longer owns it
    [done] = [e for e in harness.timeline if e.kind == "ivr_done"]
    steps = [{k: v for k, v in step.items() if k != "t"} for step in done.data["path"]]
    assert steps == [
        {"menu": "language", "key": "2"},
        {"menu": "main", "key": "2"},
        {"menu": "main", "queue": "child_protection", "reason": "choice"},
    ]
    times = [step["t"] for step in done.data["path"]]
    assert times == sorted(times) and times[0] >= 0


async def test_emergency_key_mid_prompt_stops_it_and_marks_the_call_urgent(harness: Harness) -> None:
    fake = harness.fake
    fake.auto_finish_playbacks = False
    await fake.start_call("c2")
    await harness.wait_count("prompt", 1)
    await fake.send_dtmf("c2", "9")
    kinds = await harness.wait(lambda k: k.count("prompt") == 2)
    assert kinds.index("urgent") < kinds.index("ivr_done")
    [first_playback] = [r.path for r in fake.requests if r.method == "DELETE" and "/playbacks/" in r.path]
    assert first_playback.endswith("-1")  # the welcome was cut off at once
    assert harness.prompts()[-1] == ["emergency/tr"]
    call = await harness.call()
    assert call.urgent and call.queue == "emergency"


async def test_the_silent_sos_cuts_the_emergency_notice_and_hands_the_caller_on_without_a_word(
    harness: Harness,
) -> None:
    fake = harness.fake
    fake.auto_finish_playbacks = False
    await fake.start_call("c9", caller="05550000009")
    await harness.wait_count("prompt", 1)
    await fake.send_dtmf("c9", "9")  # "connecting you to the emergency team; if you cannot speak, press 5"
    await harness.wait_count("prompt", 2)
    await fake.send_dtmf("c9", "5")
    await harness.wait(lambda k: "handed_to_queue" in k)
    urgent = [e.data["reason"] for e in harness.timeline if e.kind == "urgent"]
    assert urgent == ["emergency", "silent_sos"]
    stopped = [r.path for r in fake.requests if r.method == "DELETE" and "/playbacks/" in r.path]
    assert stopped[-1].endswith("-2")  # the emergency notice itself was cut off
    assert harness.prompts()[-1] == ["emergency/tr"]  # and nothing was said after it
    [handoff] = harness.handoffs
    assert (handoff.queue, handoff.urgent) == ("emergency", True)
    await fake.send_dtmf("c9", "5")  # the IVR is done with the call: a second 5 changes nothing
    assert [e.data["reason"] for e in harness.timeline if e.kind == "urgent"] == urgent


async def test_5_outside_the_emergency_notice_is_an_ordinary_key(harness: Harness) -> None:
    fake = harness.fake
    await fake.start_call("c10")
    await key_timer_running(harness)
    await fake.send_dtmf("c10", "1")  # Türkçe
    await key_timer_running(harness)
    await fake.send_dtmf("c10", "5")  # martyrs' families and veterans
    await harness.wait(lambda k: "handed_to_queue" in k)
    assert "urgent" not in harness.kinds and harness.handoffs[0].queue == "martyrs_veterans"


async def test_silence_repeats_then_sends_the_caller_to_the_operator(harness: Harness) -> None:
    fake = harness.fake
    await fake.start_call("c3")
    assert await harness.timer.expire() == 4.0  # language menu: one retry, then Turkish
    assert await harness.timer.expire() == 4.0
    for _ in range(3):  # main menu: the prompt and two retries
        assert await harness.timer.expire() == 5.0
    await harness.wait(lambda k: "handed_to_queue" in k)
    assert harness.prompts() == [
        ["welcome/tr", "choose_language/tr", "choose_language/en", "choose_language/ar"],
        ["no_input/tr", "choose_language/tr", "choose_language/en", "choose_language/ar"],
        ["main_menu/tr"],
        ["no_input/tr", "main_menu/tr"],
        ["no_input/tr", "main_menu/tr"],
        ["connecting/tr"],
    ]
    assert harness.handoffs[0].queue == "operator"


async def test_wrong_keys_get_the_invalid_notice_then_the_operator(harness: Harness) -> None:
    fake = harness.fake
    await fake.start_call("c4")
    await key_timer_running(harness)
    await fake.send_dtmf("c4", "1")
    for _ in range(3):
        await key_timer_running(harness)
        await fake.send_dtmf("c4", "7")
    await harness.wait(lambda k: "handed_to_queue" in k)
    assert harness.prompts()[2:] == [
        ["invalid/tr", "main_menu/tr"],
        ["invalid/tr", "main_menu/tr"],
        ["connecting/tr"],
    ]
    assert (await harness.call()).queue == "operator"


async def test_hanging_up_in_the_menu_is_abandoned_in_ivr_and_stops_the_timer(harness: Harness) -> None:
    fake = harness.fake
    await fake.start_call("c5")
    await key_timer_running(harness)
    await fake.caller_hangup("c5")
    await harness.wait(lambda k: "ended" in k)
    assert (await harness.call()).outcome == "abandoned_in_ivr"
    assert all(future.cancelled() for _, future in harness.timer.pending)
    assert harness.flow.live_calls == 0


async def test_a_repeat_caller_is_noted(harness: Harness) -> None:
    fake = harness.fake
    await fake.start_call("c6", caller="05550000001")
    await key_timer_running(harness)
    await fake.caller_hangup("c6")
    await harness.wait(lambda k: "ended" in k)
    await fake.start_call("c7", caller="05550000001")
    await harness.wait(lambda k: "repeat_caller" in k)
    [note] = [e for e in harness.timeline if e.kind == "repeat_caller"]
    assert note.data["previous_calls"] == 1 and note.data["last_call"] == harness.timeline[0].call_id


@pytest.fixture
async def office_harness(tmp_path: Path, ivr: IvrConfig) -> AsyncIterator[Harness]:
    """Complaints keep office hours, and it is Sunday."""
    complaints = QUEUES.queues["complaints"].model_copy(update={"schedule": "office"})
    office = QUEUES.model_copy(update={"queues": {**QUEUES.queues, "complaints": complaints}})
    async for h in make_harness(tmp_path, ivr, clock=SUNDAY_NOON, queues=office):
        yield h


async def test_a_closed_queue_takes_a_voicemail(office_harness: Harness) -> None:
    harness, fake = office_harness, office_harness.fake
    await fake.start_call("c8")
    await key_timer_running(harness)
    await fake.send_dtmf("c8", "16")  # Turkish, complaints: closed on Sunday
    await fake.wait_for(lambda: bool(fake.live_recordings))
    await harness.calls.flush()  # the timeline is written behind the call
    assert harness.prompts()[-1] == ["closed/tr"]
    call_id = harness.timeline[0].call_id
    [record] = fake.requests_to("POST", "/ari/channels/c8/record")
    assert record.query["name"] == f"voicemail-{call_id}"
    assert record.query["terminateOn"] == "#" and record.query["beep"] == "true"
    recording = {"name": f"voicemail-{call_id}", "format": "wav", "target_uri": "channel:c8", "state": "done"}
    await fake.emit({"type": "RecordingFinished", "recording": {**recording, "duration": 12}})
    await harness.wait(lambda k: "ended" in k)
    call = await harness.call()
    assert call.outcome == "voicemail" and call.voicemail == f"voicemail-{call_id}"
    assert fake.requests_to("DELETE", "/ari/channels/c8")


async def test_a_failure_of_ours_sends_the_caller_to_the_dialplan_fallback(harness: Harness) -> None:
    fake = harness.fake
    fake.fail("POST", "/channels/c9/play", 500, "boom")
    await fake.start_call("c9")
    kinds = await harness.wait(lambda k: "ended" in k)
    assert "step_failed" in kinds and "handed_to_fallback" in kinds
    assert (await harness.call()).outcome == "failed"
    [cont] = fake.requests_to("POST", "/ari/channels/c9/continue")
    assert cont.query["label"] == "fallback"


async def test_hand_over_all_sends_every_live_call_to_the_fallback(harness: Harness) -> None:
    fake = harness.fake
    fake.auto_finish_playbacks = False
    await fake.start_call("c10")
    await fake.start_call("c11")
    await harness.wait_count("prompt", 2)
    assert await harness.flow.hand_over_all() == 2
    for channel in ("c10", "c11"):
        [cont] = fake.requests_to("POST", f"/ari/channels/{channel}/continue")
        assert cont.query["label"] == "fallback"
    ended = [e for e in harness.timeline if e.kind == "ended"]
    assert {e.data["outcome"] for e in ended} == {"fallback"} and len(ended) == 2


async def test_a_call_left_unanswered_by_a_crash_is_answered_and_its_menu_restarted(
    tmp_path: Path, ivr: IvrConfig
) -> None:
    url = f"sqlite:///{tmp_path / 'flow.db'}"
    await db.upgrade_async(url)
    store = db.Store(url)
    calls = CallLog(store)
    await calls.open("c12", caller_number="0555")  # the previous run died before answering
    async with FakeAri(username="hotline", password="pw") as fake:
        fake.auto_finish_playbacks = False
        fake.make_channel("c12", state="Ring")
        client = AriClient(fake.base_url, "hotline", "pw", "hotline")
        flow = IvrFlow(
            client,
            calls,
            ivr,
            QUEUES,
            sounds(ivr),
            FlowConfig("183", LANGUAGES),
            nowhere,
            guard_for(client, calls),
            clock=Clock(sleep=ManualSleep()),
        )
        harness = Harness(fake, calls, flow, ManualSleep())
        async with client:
            client.on_event(flow.handle)
            runner = asyncio.create_task(client.run())
            kinds = await harness.wait(lambda k: "prompt" in k)
        await runner
    await store.close()
    assert kinds == ["readopted", "answered", "prompt"]
    assert fake.requests_to("POST", "/ari/channels/c12/answer")


async def test_a_caller_with_an_open_case_hears_its_number_after_the_welcome(
    tmp_path: Path, ivr: IvrConfig
) -> None:
    async def lookup(number: str) -> OpenCase | None:
        return OpenCase("183-2026-000042") if number == "05550000042" else None

    async for harness in make_harness(tmp_path, ivr, open_ticket=lookup):
        await harness.fake.start_call("c1", caller="05550000042")
        await harness.wait_count("prompt", 1)
        first = harness.prompts()[0]
        assert first[:4] == ["welcome/tr", "open_ticket/tr", "digit_4/tr", "digit_2/tr"]
        assert first[4].startswith("choose_language/")  # then the menus, as for anyone
        [told] = [e for e in harness.timeline if e.kind == "open_ticket_told"]
        assert told.data == {"ticket": "183-2026-000042"}
        await harness.fake.start_call("c2", caller="05550000001")  # no open case: nothing said
        await harness.wait_count("prompt", 2)
        assert harness.prompts()[-1][:2] == ["welcome/tr", "choose_language/tr"]


async def test_a_slow_or_failing_case_look_up_never_holds_up_the_welcome(
    tmp_path: Path, ivr: IvrConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ivr.flow.OPEN_TICKET_WAIT", 0.05)
    never = asyncio.Event()

    async def slow(_number: str) -> OpenCase | None:
        await never.wait()
        return OpenCase("183-2026-000001")

    async for harness in make_harness(tmp_path, ivr, open_ticket=slow):
        await harness.fake.start_call("c1", caller="05550000042")
        await harness.wait_count("prompt", 1)
        assert harness.prompts()[0][:2] == ["welcome/tr", "choose_language/tr"]

    async def broken(_number: str) -> OpenCase | None:
        raise RuntimeError("database away")

    async for harness in make_harness(tmp_path / "b", ivr, open_ticket=broken):
        await harness.fake.start_call("c1", caller="05550000042")
        await harness.wait_count("prompt", 1)
        assert harness.prompts()[0][:2] == ["welcome/tr", "choose_language/tr"]
        assert "open_ticket_told" not in harness.kinds


async def test_a_repeat_caller_who_presses_1_is_handed_on_for_the_agent_of_their_case(
    tmp_path: Path, ivr: IvrConfig
) -> None:
    async def lookup(number: str) -> OpenCase | None:
        queue = {"05550000042": "child_protection", "05550000043": "no_such_queue"}[number]
        return OpenCase("183-2026-000042", AgentOffer("9001", queue, "en"))

    async for harness in make_harness(tmp_path, ivr, open_ticket=lookup):
        fake = harness.fake
        await fake.start_call("c1", caller="05550000042")
        await key_timer_running(harness)
        await harness.wait_count("prompt", 1)
        assert harness.prompts()[0][-1] == "open_ticket_offer/tr"
        await fake.send_dtmf("c1", "1")
        await harness.wait(lambda k: "handed_to_queue" in k)
        call_id = harness.timeline[0].call_id
        assert harness.handoffs == [
            Handoff(call_id, "c1", "child_protection", "en", False, "", "05550000042", agent="9001")
        ]
        [told] = [e for e in harness.timeline if e.kind == "open_ticket_told"]
        assert told.data == {"ticket": "183-2026-000042", "agent_offered": "9001"}
        call = await harness.call()
        assert (call.queue, call.category, call.language) == ("child_protection", "child_protection", "en")
        # A queue the configuration no longer has: the number is told, nothing is offered.
        await fake.start_call("c2", caller="05550000043")
        await harness.wait_count("open_ticket_told", 2)
        told = [e for e in harness.timeline if e.kind == "open_ticket_told"][-1]
        assert told.data == {"ticket": "183-2026-000042"}
        await harness.wait_count("prompt", 3)
        assert harness.prompts()[-1][-1].startswith("choose_language/")
