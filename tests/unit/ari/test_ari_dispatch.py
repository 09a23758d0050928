"""Ordered dispatch: per-channel order, isolation of slow or failing handlers, bounded queues."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import structlog

from ari import events as ev
from ari.dispatch import Dispatcher
from ari.events import parse_event
from ari.testing import FakeAri

from .conftest import LogWatch, Recorder, RunClient, Running


def dtmf(channel_id: str, seq: int) -> dict[str, Any]:
    return {
        "type": "ChannelDtmfReceived",
        "digit": str(seq % 10),
        "duration_ms": 100,
        "channel": {"id": channel_id, "name": f"PJSIP/{channel_id}", "state": "Up"},
        "seq": seq,
    }


def lane_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("ari-lane:")]


async def test_order_per_channel_across_50_channels(fake: FakeAri, running: Running) -> None:
    channels = [f"ch-{i}" for i in range(50)]
    per_channel = 1000
    seen: dict[str, list[int]] = defaultdict(list)
    active: dict[str, int] = defaultdict(int)
    peak = {"same_channel": 0, "channels": 0}
    done = asyncio.Event()
    total = len(channels) * per_channel
    count = 0

    async def handler(event: ev.Event) -> None:
        nonlocal count
        if not isinstance(event, ev.ChannelDtmfReceived):
            return
        cid = event.channel.id
        active[cid] += 1
        peak["same_channel"] = max(peak["same_channel"], active[cid])
        peak["channels"] = max(peak["channels"], sum(1 for v in active.values() if v))
        await asyncio.sleep(0)  # yield, so other channels' workers interleave with this one
        seen[cid].append(event.raw["seq"])
        active[cid] -= 1
        count += 1
        if count == total:
            done.set()

    running.client.on_event(handler)
    # Interleaved on the wire exactly as Asterisk would send concurrent calls' digits.
    await fake.emit_many(dtmf(cid, seq) for seq in range(per_channel) for cid in channels)
    await asyncio.wait_for(done.wait(), 15)
    assert sorted(seen) == sorted(channels)
    for cid in channels:
        assert seen[cid] == list(range(per_channel)), cid
    assert peak["same_channel"] == 1  # one at a time per channel
    assert peak["channels"] > 1  # different channels ran concurrently
    await running.client._dispatcher.wait_idle()
    assert lane_tasks()  # workers linger a moment, so a busy call does not pay a new task per burst
    await asyncio.wait_for(running.client._dispatcher.wait_no_lanes(), 5)
    assert running.client._dispatcher.lane_count == 0
    assert lane_tasks() == []  # idle workers went away


async def test_failing_handler_affects_only_its_channel(
    fake: FakeAri, running: Running, logs: LogWatch
) -> None:
    async def explode(event: ev.Event) -> None:
        if isinstance(event, ev.ChannelDtmfReceived) and event.channel.id == "bad" and event.digit == "1":
            raise RuntimeError("handler bug")

    after = Recorder()
    running.client.on_event(explode)
    running.client.on_event(after)  # runs after the failing handler, for the same event
    await fake.emit_many([dtmf("bad", 1), dtmf("good", 1), dtmf("bad", 2), dtmf("good", 2)])
    await after.wait_for(lambda: len(after.of(ev.ChannelDtmfReceived)) == 4)
    # The failure neither stopped later handlers for that event nor the bad channel's next event.
    got = [(e.channel.id, e.raw["seq"]) for e in after.of(ev.ChannelDtmfReceived)]
    assert sorted(got) == [("bad", 1), ("bad", 2), ("good", 1), ("good", 2)]
    failures = logs.named("ari.handler_failed")
    assert len(failures) == 1
    assert failures[0]["key"] == "channel:bad"
    assert failures[0]["event_type"] == "ChannelDtmfReceived"
    assert failures[0]["ari_event"]["seq"] == 1
    assert failures[0]["log_level"] == "error" and failures[0]["exc_info"]


async def test_slow_handler_affects_only_its_channel(fake: FakeAri, running: Running) -> None:
    release = asyncio.Event()

    async def handler(event: ev.Event) -> None:
        if isinstance(event, ev.ChannelDtmfReceived) and event.channel.id == "slow" and event.raw["seq"] == 0:
            await release.wait()

    after = Recorder()
    running.client.on_event(handler)
    running.client.on_event(after)

    def handled(cid: str) -> list[int]:
        return [e.raw["seq"] for e in after.of(ev.ChannelDtmfReceived) if e.channel.id == cid]

    await fake.emit_many([dtmf("slow", 0), dtmf("slow", 1), *(dtmf("fast", i) for i in range(20))])
    # The fast channel is fully handled while the slow one is still blocked on its first event.
    await after.wait_for(lambda: len(handled("fast")) == 20)
    assert handled("slow") == []
    assert handled("fast") == list(range(20))
    release.set()
    await after.wait_for(lambda: len(handled("slow")) == 2)
    assert handled("slow") == [0, 1]


async def test_stuck_handler_is_reported(fake: FakeAri, run_client: RunClient, logs: LogWatch) -> None:
    running = await run_client(slow_handler_warning=0.05)
    release = asyncio.Event()

    async def handler(event: ev.Event) -> None:
        if isinstance(event, ev.ChannelDtmfReceived):
            await release.wait()

    running.client.on_event(handler)
    await fake.emit(dtmf("stuck", 7))
    stuck = await logs.wait("ari.handler_stuck")  # reported while still running
    assert stuck["key"] == "channel:stuck" and stuck["ari_event"]["seq"] == 7
    release.set()
    slow = await logs.wait("ari.handler_slow")  # and again, with its duration, when it ends
    assert slow["key"] == "channel:stuck" and slow["seconds"] >= 0.05


async def test_unknown_events_are_delivered(fake: FakeAri, running: Running) -> None:
    await fake.emit({"type": "ChannelCallerId", "caller_presentation": 0, "channel": {"id": "c1"}})
    await fake.emit({"type": "SomethingNew", "detail": {"x": 1}})
    await fake.emit({"type": "StasisStart", "channel": 5})  # known type, broken body
    await fake.emit({"type": "StasisEnd", "channel": {"id": 5}})  # no string id to key it on
    unknown = await running.rec.wait_type(ev.UnknownEvent, 4)
    assert [e.type for e in unknown] == ["ChannelCallerId", "SomethingNew", "StasisStart", "StasisEnd"]
    assert unknown[1].raw["detail"] == {"x": 1}


async def test_non_event_frames_do_not_break_the_reader(fake: FakeAri, running: Running) -> None:
    for sock in fake._sockets:
        await sock.ws.send_str("not json")
        await sock.ws.send_str("[1, 2]")
        await sock.ws.send_bytes(b"\x00\x01")
    await fake.start_call("c1")
    (start,) = await running.rec.wait_type(ev.StasisStart)
    assert start.channel.id == "c1"
    assert running.client.generation == 1  # same connection: nothing reconnected


async def test_bounded_queue_makes_the_submitter_wait() -> None:
    release = asyncio.Event()
    handled: list[int] = []

    async def handler(event: ev.Event) -> None:
        await release.wait()
        handled.append(event.raw["seq"])

    dispatcher = Dispatcher([handler], max_queue=3, slow_handler_warning=0)
    for seq in range(3):
        await dispatcher.submit(parse_event(dtmf("c", seq)))  # the worker holds #0, two wait in the lane
    blocked = asyncio.create_task(dispatcher.submit(parse_event(dtmf("c", 3))))
    other = asyncio.create_task(dispatcher.submit(parse_event(dtmf("d", 0))))
    await asyncio.wait_for(other, 5)  # another key is not full (and "c"'s submit has run meanwhile)
    assert not blocked.done()  # lane "c" is full: memory stays bounded, the reader waits
    release.set()
    await asyncio.wait_for(blocked, 5)
    await asyncio.wait_for(dispatcher.wait_idle(), 5)
    assert sorted(handled) == [0, 0, 1, 2, 3]
    assert [s for s in handled if s != 0] == [1, 2, 3]  # lane "c" kept its order
    await dispatcher.aclose(1)


async def test_deliver_waits_for_handlers_and_close_cancels_leftovers() -> None:
    started = asyncio.Event()
    never = asyncio.Event()
    order: list[str] = []

    async def handler(event: ev.Event) -> None:
        order.append(event.type)
        if event.type == "Block":
            started.set()
            await never.wait()

    dispatcher = Dispatcher([handler], slow_handler_warning=0)
    await dispatcher.deliver(parse_event({"type": "First"}))
    assert order == ["First"]  # deliver returned only after the handler ran
    await dispatcher.submit(parse_event({"type": "Block"}))
    await asyncio.wait_for(started.wait(), 5)
    with structlog.testing.capture_logs() as entries:
        await dispatcher.aclose(0.01)
    assert any(e["event"] == "ari.dispatch_close_timeout" for e in entries)
    assert lane_tasks() == []


async def test_idle_worker_is_reused_then_retired() -> None:
    seen: list[int] = []

    async def handler(event: ev.Event) -> None:
        seen.append(event.raw["seq"])

    dispatcher = Dispatcher([handler], slow_handler_warning=0, linger=0.05)
    dispatcher.start()
    await dispatcher.submit(parse_event(dtmf("c", 0)))
    await dispatcher.wait_idle()
    (worker,) = lane_tasks()
    await dispatcher.submit(parse_event(dtmf("c", 1)))  # within linger: the parked worker takes it
    await dispatcher.wait_idle()
    assert lane_tasks() == [worker] and seen == [0, 1]
    await asyncio.wait_for(dispatcher.wait_no_lanes(), 5)  # then it is retired
    assert lane_tasks() == [] and worker.done()
    await dispatcher.submit(parse_event(dtmf("c", 2)))  # and a later event starts a fresh one
    await dispatcher.wait_idle()
    assert seen == [0, 1, 2]
    await dispatcher.aclose(1)
    assert lane_tasks() == []
