"""Call backs when something breaks: a crash between the request and the hang-up, and a bridge
that cannot be made once the caller answers."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import select

from agents.models import Callback
from hotline.models import CallOutcome, utcnow
from tests.unit.agents.harness import QUEUES, Desk, client_for, new_flow, running_flow

DIALLING = QUEUES.model_copy(update={"callback_dial": "PJSIP/{number}@carrier"})


async def a_stored_call_back(desk: Desk, status: str, attempts: int = 0) -> tuple[str, str, str]:
    """A caller of 5 minutes ago who asked to be called back; returns call, channel and row ids."""
    channel = desk.fake.make_channel(caller="05329876543")
    call, _ = await desk.calls.open(channel["id"], caller_number="05329876543", queue="operator")
    row = Callback(
        call_id=call.id,
        number="05329876543",
        queue="operator",
        language="tr",
        waiting_since=utcnow() - timedelta(minutes=5),
        status=status,
        attempts=attempts,
    )
    async with desk.store.session() as session:
        session.add(row)
        await session.commit()
    return call.id, channel["id"], row.id


async def test_a_crash_between_the_request_and_the_hang_up_leaves_the_caller_waiting_once(desk: Desk) -> None:
    await desk.flow.desk.pause("a1", "meal")  # nobody free: the call back waits
    call_id, line, row_id = await a_stored_call_back(desk, "waiting")
    await desk.client.close()  # died before letting the caller go: they are still on the line
    client = desk.client = client_for(desk.fake)
    flow = desk.flow = new_flow(desk, client)
    async with client:
        await flow.start()
        client.on_event(flow.handle)
        runner = asyncio.create_task(client.run())
        await flow.synced()
        # The new process's IVR hands the caller (still on the line) over again.
        await flow.enqueue(call_id, line, "operator", "tr", False, ("", "05329876543"))
        await desk.until("callback_resumed")
        await desk.fake.wait_for(lambda: line not in desk.fake.channels)  # let go, as they were told
        assert flow.live_calls == 1 and list(flow.router.waiting) == [call_id]
        async with desk.store.session() as session:
            [row] = (await session.exec(select(Callback))).all()
        assert (row.id, row.status) == (row_id, "waiting")
        await flow.close(tidy=False)
    await runner


async def test_a_called_back_caller_whose_bridge_fails_is_put_back_and_connected_next(desk: Desk) -> None:
    await desk.flow.desk.pause("a1", "meal")
    origin, _, row_id = await a_stored_call_back(desk, "waiting")
    await desk.calls.close(origin, CallOutcome.callback)
    await desk.client.close()
    async with running_flow(desk.fake, desk.store, desk.calls, desk.timers, DIALLING) as (_, flow):
        desk.fake.fail("POST", "/bridges", 500, "no bridge today")
        await flow.desk.resume("a1")  # the agent takes the call back; the caller answers
        await desk.until("callback_connected")
        await desk.count("agent_connected", 1)
        async with desk.store.session() as session:
            row = await session.get(Callback, row_id)
        assert row is not None and row.outbound_call_id
        # The new call (the answered line) failed to bridge once, went back to the queue with
        # music, and was offered and connected again: never left in silence.
        kinds = [e.kind for e in desk.timeline if e.call_id == row.outbound_call_id]
        assert kinds.index("step_failed") < kinds.index("step_recovered") < kinds.index("agent_connected")
        [line] = [c for c in desk.fake.channels if c.startswith("hotline-callback-")]
        [mixing] = [b for b in desk.fake.bridges.values() if b["bridge_type"] == "mixing"]
        assert line in mixing["channels"] and len(mixing["channels"]) == 2


async def test_a_call_back_left_by_a_previous_run_keeps_its_place_and_is_dialled(desk: Desk) -> None:
    # A caller asked for a call back 5 minutes ago; the process died while their number rang.
    call_id, _, row_id = await a_stored_call_back(desk, "dialling", attempts=1)
    await desk.calls.close(call_id, CallOutcome.callback)
    await desk.client.close()
    async with running_flow(desk.fake, desk.store, desk.calls, desk.timers, DIALLING) as (_, flow):
        await desk.until("callback_connected")  # the agent (available) took it and the caller answered
        [answered] = [
            c["name"] for c in desk.fake.channels.values() if c["id"].startswith("hotline-callback-")
        ]
        assert answered.startswith("PJSIP/05329876543@carrier")
        assert flow.desk.agent_state("a1")["call"]["callback"] is True
    async with desk.store.session() as session:
        stored = await session.get(Callback, row_id)
    assert stored is not None and (stored.status, stored.attempts) == ("connected", 2)
    back = await desk.calls.get(stored.outbound_call_id or "")
    assert back is not None and back.extension == "callback" and back.caller_number == "05329876543"


async def test_a_caller_whose_number_may_not_be_dialled_cannot_ask_for_a_call_back(desk: Desk) -> None:
    await desk.flow.desk.pause("a1", "meal")  # nobody free: the caller waits
    channel = desk.fake.make_channel(caller="09001234567")  # premium rate: toll fraud if dialled
    call, _ = await desk.calls.open(channel["id"], caller_number="09001234567", queue="operator")
    await desk.flow.enqueue(call.id, channel["id"], "operator", "tr", False, ("", "09001234567"))
    desk.flow.ctx.live.callers[call.id].callback_offered = True  # as if it had been offered
    await desk.fake.send_dtmf(channel["id"], "1")
    refused = await desk.until("callback_refused")
    assert refused.data == {"number": "09001234567"}
    async with desk.store.session() as session:
        assert (await session.exec(select(Callback))).all() == []
    assert call.id in desk.flow.router.waiting


async def test_a_duty_of_care_call_back_waits_urgent_in_its_queue_once_and_never_for_a_foreign_number(
    desk: Desk,
) -> None:
    await desk.flow.desk.pause("a1", "meal")  # nobody free: the call back waits
    call, _ = await desk.calls.open("gone-1", caller_number="05329876543", queue="emergency")
    callback = await desk.flow.call_back(call.id, "05329876543", "emergency", "tr", "duty_of_care")
    assert callback is not None
    waiting = desk.flow.router.waiting[call.id]
    assert (waiting.queue, waiting.urgent) == ("emergency", True)
    requested = await desk.until("callback_requested")
    assert requested.data == {"queue": "emergency", "callback": callback, "reason": "duty_of_care"}
    assert await desk.flow.call_back(call.id, "05329876543", "emergency", "tr", "duty_of_care") is None
    foreign, _ = await desk.calls.open("gone-2", caller_number="00881234567", queue="emergency")
    assert await desk.flow.call_back(foreign.id, "00881234567", "emergency", "tr", "duty_of_care") is None
    refused = await desk.until("callback_refused")
    assert refused.call_id == foreign.id and foreign.id not in desk.flow.router.waiting
    async with desk.store.session() as session:
        [row] = (await session.exec(select(Callback))).all()
    assert (row.id, row.status, row.urgent) == (callback, "waiting", True)
