"""Twenty callers and five agents at once, end to end: real SIP callers on the direct line, real
SIPp desk phones (one never answers), the router's promises checked on the phones and the store."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from agents.models import AgentEvent
from agents.service import Presence
from hotline.app import App, create_app
from hotline.models import CallEvent
from hotline.settings import QueuesSection, Settings
from tests.harness import sipp
from tests.integration.conftest import QUICK_QUEUES, calls_and_events, ended, leftovers, quick

PATIENT, IMPATIENT = 18, 2  # the impatient ones join last and give up while still waiting
ANSWERING = ("9001", "9002", "9003", "9004")
SLEEPY = "9005"  # rings until the offer times out, every time
OPERATOR = '[queues.operator]\nlabel = { tr = "Operatör", en = "Operator" }\n'
# The direct line's queue for this test: spread by fewest calls, anyone may answer, quick
# rings and wrap-up, and one miss pauses an agent.
LOAD_OPERATOR = """strategy = "fewest_calls"
language_required = false
ring_timeout = 2.0
max_no_answer = 1
wrap_up = 0.5
"""


@pytest.fixture
async def five_agents(settings: Settings, hotline_settings: Settings, tmp_path: Path) -> AsyncIterator[App]:
    """The quick configuration with agents 9001-9005 at work and the load test's operator queue."""
    assert OPERATOR in QUICK_QUEUES
    queues = tmp_path / "load-queues.toml"
    queues.write_text(QUICK_QUEUES.replace(OPERATOR, OPERATOR + LOAD_OPERATOR), encoding="utf-8")
    desks = [a for a in hotline_settings.agents if a.contact]  # 9001-9005, the agents with a phone
    quick_settings = quick(settings, tmp_path, agents=desks)
    app = create_app(quick_settings.model_copy(update={"queues": QueuesSection(file=str(queues))}))
    await app.start(serve_web=False)
    yield app
    await app.close()


def everyone_waiting(app: App, count: int) -> asyncio.Future[None]:
    """Resolves once ``count`` callers have joined a queue."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen = 0

    def listener(event: CallEvent) -> None:
        nonlocal seen
        seen += event.kind == "queued"
        if seen == count and not future.done():
            future.set_result(None)

    app.calls.subscribe(listener)
    return future


async def presence_log(app: App, agent_id: str) -> list[AgentEvent]:
    async with app.store.session() as session:
        rows = await session.exec(
            select(AgentEvent).where(AgentEvent.agent_id == agent_id).order_by(col(AgentEvent.id))
        )
        return list(rows.all())


async def test_twenty_callers_five_agents_one_never_answers(
    five_agents: App,
    settings: Settings,
    phone_port: int,
    second_phone_port: int,
    more_phone_ports: list[int],
) -> None:
    app, callers = five_agents, PATIENT + IMPATIENT
    ports = dict(zip((*ANSWERING, SLEEPY), (phone_port, second_phone_port, *more_phone_ports), strict=True))
    all_ended, patient_waiting = ended(app, count=callers), everyone_waiting(app, PATIENT)

    async with contextlib.AsyncExitStack() as stack:
        desks = {
            agent: await stack.enter_async_context(
                sipp.phone(port=ports[agent], calls=callers, ring_ms=200, talk_ms=1000, timeout=90)
            )
            for agent in ANSWERING
        }
        desks[SLEEPY] = await stack.enter_async_context(
            sipp.phone(port=ports[SLEEPY], calls=callers, mode="never", timeout=90)
        )
        patient = asyncio.create_task(sipp.crowd(settings, "1830", PATIENT, hold=45))
        await asyncio.wait_for(patient_waiting, 30)
        impatient = asyncio.create_task(
            sipp.crowd(settings, "1830", IMPATIENT, hold=1.5, first_caller=5320000100)
        )
        results = await asyncio.wait_for(asyncio.gather(patient, impatient), 60)
        await asyncio.wait_for(all_ended, 30)
        # Every call is over: a phone with nothing ringing any more takes no time to finish.
        phones = {agent: await desk.finish(timeout=10) for agent, desk in desks.items()}

    # Every caller was answered by a person or hung up themselves; nobody was hung up on or dropped.
    assert all(r.ok for r in results), [r.errors[-2000:] for r in results if not r.ok]
    hung_up = Counter(line for r in results for line in r.log.splitlines() if line.startswith("hangup="))
    assert hung_up["hangup=remote"] + hung_up["hangup=local"] == callers, hung_up
    assert results[0].log.count("hangup=remote") == PATIENT  # those who wait are all served

    # No call left open, and the store agrees with what the callers lived through.
    connected: Counter[str] = Counter()
    missed_by_sleepy = []
    for call, events in await calls_and_events(app):
        kinds = [e.kind for e in events]
        agents = [e.data["agent"] for e in events if e.kind == "agent_connected"]
        assert call.outcome in ("completed", "abandoned"), (call.outcome, kinds)
        # The call's own story ends with its end; its ticket is noted after it.
        assert [k for k in kinds if k != "ticket_created"][-1] == "ended" and "direct" in kinds
        assert (call.outcome == "completed") == (len(agents) == 1), kinds
        connected.update(agents)
        if any(e.kind == "agent_no_answer" and e.data["agent"] == SLEEPY for e in events):
            missed_by_sleepy.append((call.outcome, agents))
    assert sum(connected.values()) == hung_up["hangup=remote"]

    # The phones saw the same: every offer answered or cancelled, none left ringing.
    for agent, result in phones.items():
        assert result.ok, (agent, result.errors)
        offered, answered = result.log.count("offered from"), result.log.count("answered")
        assert offered == answered + result.log.count("cancelled"), (agent, result.log)
        assert answered == connected[agent], (agent, answered, connected)
    channels, _ = await leftovers(settings)
    assert channels == []

    # The sleepy agent's caller went on to someone else, and the sleepy agent is paused for it.
    assert missed_by_sleepy and all(
        outcome == "abandoned" or (outcome == "completed" and agents[0] != SLEEPY)
        for outcome, agents in missed_by_sleepy
    ), missed_by_sleepy
    assert any(outcome == "completed" for outcome, _ in missed_by_sleepy)
    assert app.queues.router.agents[SLEEPY].presence is Presence.paused
    last = (await presence_log(app, SLEEPY))[-1]
    assert (last.before, last.after, last.reason) == ("reserved", "paused", "no_answer")

    # Fewest calls: the agents who answer end up within one call of each other.
    counts = [connected[agent] for agent in ANSWERING]
    assert max(counts) - min(counts) <= 1, counts
