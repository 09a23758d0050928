"""Presence, strategies, priorities, tiers and wrap-up of the router, on a hand-driven clock."""

from __future__ import annotations

import pytest

from agents.service import (
    Agent,
    Presence,
    PresenceError,
    QueueRules,
    Router,
    Strategy,
    Tier,
    WaitingCall,
)

TR = frozenset({"tr"})


def router(*queues: QueueRules, agents: int = 3) -> Router:
    r = Router(queues or [QueueRules("q")])
    for n in range(1, agents + 1):
        r.add_agent(Agent(f"a{n}", frozenset(q.id for q in r.queues.values()), TR))
        r.login(f"a{n}", now=float(n))  # a1 has been idle longest
    return r


def call(
    call_id: str, queue: str = "q", since: float = 10.0, urgent: bool = False, language: str = "tr"
) -> WaitingCall:
    return WaitingCall(call_id, queue, language, urgent, since)


def test_longest_idle_agent_gets_the_call_and_is_reserved() -> None:
    r = router()
    r.enqueue(call("c1"))
    [offer] = r.offers(now=20)
    assert offer.agent_ids == ("a1",) and offer.timeout == 20.0
    assert r.agents["a1"].presence is Presence.reserved
    assert r.offers(now=21) == []  # already ringing: no second offer for the same call


def test_urgent_calls_overtake_the_queue() -> None:
    r = router(agents=1)
    r.enqueue(call("calm", since=1))
    r.enqueue(call("urgent", since=50, urgent=True))
    [offer] = r.offers(now=60)
    assert offer.call_id == "urgent"


def test_higher_priority_queue_first_then_longest_wait() -> None:
    r = router(QueueRules("low"), QueueRules("high", priority=5), agents=2)
    r.enqueue(call("old-low", "low", since=1))
    r.enqueue(call("new-high", "high", since=30))
    r.enqueue(call("older-high", "high", since=20))
    offers = r.offers(now=40)
    assert [o.call_id for o in offers] == ["older-high", "new-high"]


def test_language_must_match() -> None:
    r = router(agents=2)
    r.agents["a2"].languages = frozenset({"tr", "ar"})
    r.enqueue(call("c1", language="ar"))
    [offer] = r.offers(now=20)
    assert offer.agent_ids == ("a2",)


def test_a_caller_nobody_speaks_to_is_not_left_waiting_forever() -> None:
    r = router(QueueRules("q", language_wait=60), agents=1)
    r.enqueue(call("c1", language="ar", since=0))
    assert r.offers(now=59) == []
    assert r.offers(now=60)[0].agent_ids == ("a1",)


def test_round_robin_remembers_who_was_last() -> None:
    r = router(QueueRules("q", strategy=Strategy.round_robin))
    picked = []
    for n in range(4):
        r.enqueue(call(f"c{n}"))
        [offer] = r.offers(now=20 + n)
        picked.append(offer.agent_ids[0])
        r.answered(f"c{n}", offer.agent_ids[0], now=21 + n)
        r.call_ended(offer.agent_ids[0], now=22 + n)
        r.wrap_up_done(offer.agent_ids[0], now=22 + n)
    assert picked == ["a1", "a2", "a3", "a1"]


def test_fewest_calls() -> None:
    r = router(QueueRules("q", strategy=Strategy.fewest_calls))
    r.agents["a1"].calls, r.agents["a2"].calls, r.agents["a3"].calls = 5, 1, 3
    r.enqueue(call("c1"))
    assert r.offers(now=20)[0].agent_ids == ("a2",)


def test_ring_all_rings_everyone_and_the_first_answer_wins() -> None:
    r = router(QueueRules("q", strategy=Strategy.ring_all))
    r.enqueue(call("c1"))
    [offer] = r.offers(now=20)
    assert set(offer.agent_ids) == {"a1", "a2", "a3"}
    stop_ringing = r.answered("c1", "a2", now=21)
    assert sorted(stop_ringing) == ["a1", "a3"]
    assert [r.agents[a].presence for a in ("a1", "a2", "a3")] == [
        Presence.available,
        Presence.on_call,
        Presence.available,
    ]


def test_skills_weighted_prefers_the_most_proficient() -> None:
    r = router(QueueRules("q", strategy=Strategy.skills_weighted, skill="child"))
    r.agents["a1"].skills, r.agents["a2"].skills, r.agents["a3"].skills = {"child": 2}, {"child": 5}, {}
    r.enqueue(call("c1"))
    assert r.offers(now=20)[0].agent_ids == ("a2",)


def test_tiers_widen_the_pool_as_the_caller_waits() -> None:
    rules = QueueRules("q", skill="child", tiers=(Tier(0, 4), Tier(30, 2), Tier(60, 0)))
    r = router(rules, agents=2)
    r.agents["a1"].skills, r.agents["a2"].skills = {"child": 1}, {}
    r.enqueue(call("c1", since=0))
    assert r.offers(now=10) == []  # nobody at proficiency 4
    assert r.offers(now=40) == []  # nobody at proficiency 2 either
    assert r.offers(now=61)[0].agent_ids == ("a1",)  # after a minute anyone of the queue


def test_no_answer_releases_penalises_and_re_offers_to_another_agent() -> None:
    r = router()
    r.enqueue(call("c1"))
    [first] = r.offers(now=20)
    r.no_answer("c1", first.agent_ids[0], now=40)
    assert r.agents["a1"].presence is Presence.available  # never stuck reserved
    [second] = r.offers(now=40)
    assert second.agent_ids == ("a2",)  # a1 tried last for this call


def test_an_agent_missing_offers_in_a_row_is_paused() -> None:
    r = router(QueueRules("q", max_no_answer=2), agents=1)
    r.enqueue(call("c1"))
    for n in range(2):  # the only agent is offered the call again, and misses it again
        [offer] = r.offers(now=20 + n * 30)
        assert offer.agent_ids == ("a1",)
        r.no_answer("c1", "a1", now=40 + n * 30)
    agent = r.agents["a1"]
    assert agent.presence is Presence.paused and agent.reason == "no_answer"
    r.resume("a1", now=100)
    assert agent.presence is Presence.available and agent.missed_in_a_row == 0


def test_caller_hanging_up_while_an_agent_rings_leaves_no_ringing_agent() -> None:
    r = router(QueueRules("q", strategy=Strategy.ring_all), agents=2)
    r.enqueue(call("c1"))
    r.offers(now=20)
    assert sorted(r.abandon("c1", now=22)) == ["a1", "a2"]
    assert all(a.presence is Presence.available for a in r.agents.values())
    r.no_answer("c1", "a1", now=40)  # a late ring-out report changes nothing
    assert r.agents["a1"].missed_in_a_row == 0


def test_wrap_up_then_available_and_pause_requested_during_a_call_waits() -> None:
    r = router(QueueRules("q", wrap_up=45), agents=1)
    r.enqueue(call("c1"))
    r.offers(now=20)
    r.answered("c1", "a1", now=22)
    r.pause("a1", "break", now=30)  # asked during the call
    assert r.agents["a1"].presence is Presence.on_call
    assert r.call_ended("a1", now=100) == 45
    r.enqueue(call("c2"))
    assert r.offers(now=110) == []  # wrap-up is not over
    r.wrap_up_done("a1", now=145)
    assert r.agents["a1"].presence is Presence.paused and r.agents["a1"].reason == "break"


def test_every_transition_is_recorded_with_its_time() -> None:
    r = router(agents=1)
    r.enqueue(call("c1"))
    r.offers(now=20)
    r.answered("c1", "a1", now=25)
    r.call_ended("a1", now=90)
    r.wrap_up_done("a1", now=120)
    steps = [(t.before, t.after, t.at) for t in r.transitions]
    assert steps == [
        (Presence.offline, Presence.available, 1.0),
        (Presence.available, Presence.reserved, 20),
        (Presence.reserved, Presence.on_call, 25),
        (Presence.on_call, Presence.wrap_up, 90),
        (Presence.wrap_up, Presence.available, 120),
    ]


def test_presence_errors_and_unreachable_devices() -> None:
    r = router(agents=1)
    with pytest.raises(PresenceError):
        r.login("a1", now=5)
    with pytest.raises(PresenceError):
        r.resume("a1", now=5)
    r.device_unreachable("a1", now=6)
    r.enqueue(call("c1"))
    assert r.offers(now=20) == []
    assert r.agents["a1"].reason == "device_unreachable"
    r.device_reachable("a1", now=30)
    assert r.offers(now=30)[0].agent_ids == ("a1",)


def test_position_in_queue() -> None:
    r = router(agents=0)
    r.enqueue(call("c1", since=1))
    r.enqueue(call("c2", since=2))
    r.enqueue(call("c3", since=3, urgent=True))
    assert [r.position(c, now=10) for c in ("c1", "c2", "c3")] == [2, 3, 1]


def test_wrap_up_is_the_time_of_the_queue_the_call_came_from() -> None:
    r = router(QueueRules("slow", wrap_up=120), QueueRules("fast", wrap_up=5), agents=1)
    r.enqueue(call("c1", "fast"))
    r.offers(now=20)
    r.answered("c1", "a1", now=21)
    assert r.call_ended("a1", now=60) == 5


def test_a_waiting_call_moves_to_another_queue_keeping_its_wait() -> None:
    r = router(QueueRules("a"), QueueRules("b"), agents=0)
    r.enqueue(call("c1", "a", since=3))
    assert r.move("c1", "b") and r.waiting["c1"].queue == "b" and r.waiting["c1"].since == 3
    assert not r.move("c1", "nowhere")


def test_a_call_transferred_to_an_agent_waits_for_them_then_falls_back_to_the_queue() -> None:
    r = router()
    targeted = call("c1")
    targeted.only_agent = "a3"
    r.enqueue(targeted)
    [offer] = r.offers(now=20)
    assert offer.agent_ids == ("a3",)  # not a1, who has been idle longest
    r.no_answer("c1", "a3", now=40)
    [offer] = r.offers(now=41)
    assert offer.agent_ids == ("a1",)


def on_a_call(r: Router, agent_id: str, call_id: str, now: float) -> None:
    r.enqueue(WaitingCall(call_id, "q", "tr", False, now, only_agent=agent_id))
    r.offers(now=now)
    r.answered(call_id, agent_id, now=now)


def test_a_targeted_call_does_not_ring_anyone_else_while_its_agent_is_busy() -> None:
    r = router()
    on_a_call(r, "a2", "talking", now=5)
    targeted = call("c1", since=20)
    targeted.only_agent, targeted.only_until = "a2", 40.0
    r.enqueue(targeted)
    assert r.offers(now=20) == []
    r.call_ended("a2", now=21)
    r.wrap_up_done("a2", now=22)
    [offer] = r.offers(now=22)
    assert offer.agent_ids == ("a2",)


@pytest.mark.parametrize("away", ["paused", "logged_out"])
def test_a_call_for_a_colleague_who_is_away_goes_to_the_queue_at_once(away: str) -> None:
    r = router()
    if away == "paused":
        r.pause("a2", "break", now=5)
    else:
        r.logout("a2", now=5)
    targeted = call("c1")
    targeted.only_agent = "a2"
    r.enqueue(targeted)
    [offer] = r.offers(now=20)
    assert offer.agent_ids == ("a1",) and targeted.only_agent is None


def test_a_call_for_a_busy_colleague_goes_to_the_queue_once_its_wait_is_over() -> None:
    r = router()
    on_a_call(r, "a2", "talking", now=5)
    targeted = call("c1", since=20)
    targeted.only_agent, targeted.only_until = "a2", 40.0
    r.enqueue(targeted)
    assert r.offers(now=39) == []
    [offer] = r.offers(now=40)
    assert offer.agent_ids == ("a1",)


def test_a_supervisor_moves_a_caller_up_among_calls_of_equal_urgency() -> None:
    r = router(agents=1)
    r.enqueue(call("early", since=10))
    r.enqueue(call("late", since=15))
    r.enqueue(call("urgent", since=16, urgent=True))
    assert r.reprioritise("late", 5)
    assert not r.reprioritise("gone", 5)
    assert [r.position(c, now=20) for c in ("urgent", "late", "early")] == [1, 2, 3]


def test_transitions_are_kept_until_they_are_saved() -> None:
    r = router(agents=2)
    assert [(t.agent_id, t.after) for t in r.transitions] == [
        ("a1", Presence.available),
        ("a2", Presence.available),
    ]
    r.pause("a1", "meal", now=3)  # made while the first two were being stored
    r.saved(2)
    assert [(t.agent_id, t.reason) for t in r.transitions] == [("a1", "meal")]
    r.saved(1)
    assert r.transitions == []


def test_a_restored_agent_keeps_the_pause_asked_for_during_a_call_until_idle() -> None:
    r = Router([QueueRules("q")])
    r.add_agent(Agent("a1", frozenset({"q"}), TR))
    r.restore("a1", Presence.on_call, "answered", Presence.paused, "meal", now=1)
    assert (r.agents["a1"].presence, r.agents["a1"].pending) == (Presence.available, Presence.paused)
    r.adopt("a1", "c1", "q", now=2)  # the conversation from before the restart goes on
    r.settle("a1", now=3)  # not idle: nothing yet
    assert r.agents["a1"].presence is Presence.on_call
    r.call_ended("a1", now=4)
    r.wrap_up_done("a1", now=5)
    assert (r.agents["a1"].presence, r.agents["a1"].reason) == (Presence.paused, "meal")


def test_an_answered_agent_we_could_not_connect_is_free_again_without_penalty() -> None:
    r = router(agents=1)
    r.enqueue(call("c1"))
    r.offers(now=20)
    r.answered("c1", "a1", now=21)
    r.release("a1", "c1", now=22)
    agent = r.agents["a1"]
    assert (agent.presence, agent.call_id, agent.missed_in_a_row, agent.penalised_until) == (
        Presence.available,
        None,
        0,
        0.0,
    )
