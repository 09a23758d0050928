"""The menu state machine and the tree validator, on the shipped config/ivr.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.config import load_queues
from ivr.config import IvrConfig, IvrConfigError, load_ivr
from ivr.service import AgentOffer, Finished, MenuSession, Play, StopPrompt, WaitForKey

SHIPPED = Path("config/ivr.toml")
QUEUES = load_queues(Path("config/queues.toml"))


@pytest.fixture(scope="module")
def config() -> IvrConfig:
    return load_ivr(SHIPPED, QUEUES.queues)


def session(config: IvrConfig) -> MenuSession:
    ticks = iter(range(100))
    return MenuSession(config, language="tr", languages=("tr", "en", "ar"), clock=lambda: float(next(ticks)))


def in_main_menu(config: IvrConfig, language_key: str = "1") -> MenuSession:
    s = session(config)
    s.start()
    s.key(language_key)
    s.prompt_finished()
    return s


def test_start_plays_welcome_then_the_language_menu_in_every_language(config: IvrConfig) -> None:
    s = session(config)
    assert s.start() == [
        Play(
            (
                ("welcome", "tr"),
                ("choose_language", "tr"),
                ("choose_language", "en"),
                ("choose_language", "ar"),
            )
        )
    ]
    assert s.prompt_finished() == [WaitForKey(4.0)]  # the language menu's own timeout


@pytest.mark.parametrize(
    ("digit", "queue"),
    [("1", "violence_against_women"), ("2", "child_protection"), ("3", "elderly_disabled_care"),
     ("4", "social_assistance"), ("5", "martyrs_veterans"), ("6", "complaints"), ("0", "operator")],
)  # fmt: skip
def test_each_main_menu_key_reaches_its_queue(config: IvrConfig, digit: str, queue: str) -> None:
    s = in_main_menu(config, "2")
    assert s.key(digit) == [Finished(queue=queue, language="en", urgent=False, reason="choice")]
    assert s.key("1") == []  # nothing more once finished


def test_a_key_during_a_prompt_stops_it_and_acts_at_once(config: IvrConfig) -> None:
    s = session(config)
    s.start()
    actions = s.key("3")
    assert actions[0] == StopPrompt()
    assert actions[1] == Play((("main_menu", "ar"),))
    assert s.language == "ar"


def test_keys_typed_ahead_carry_through_the_menus(config: IvrConfig) -> None:
    s = session(config)
    s.start()
    s.key("1")  # language, while the welcome is still playing
    assert s.key("2") == [StopPrompt(), Finished("child_protection", "tr", False, "choice")]


def test_emergency_key_leaves_any_menu_immediately(config: IvrConfig) -> None:
    s = session(config)
    s.start()
    assert s.key("9") == [StopPrompt(), Finished("emergency", "tr", True, "emergency")]
    assert s.path[-1] == {"menu": "language", "queue": "emergency", "reason": "emergency", "t": 1.0}


def test_wrong_key_replays_with_a_notice_then_goes_to_the_operator(config: IvrConfig) -> None:
    s = in_main_menu(config)
    assert s.key("7") == [Play((("invalid", "tr"), ("main_menu", "tr")))]
    s.prompt_finished()
    assert s.key("8") == [Play((("invalid", "tr"), ("main_menu", "tr")))]
    s.prompt_finished()
    assert s.key("7") == [Finished("operator", "tr", False, "invalid")]


def test_silence_repeats_the_menu_then_goes_to_the_operator(config: IvrConfig) -> None:
    s = in_main_menu(config)
    assert s.timed_out() == [Play((("no_input", "tr"), ("main_menu", "tr")))]
    assert s.timed_out() == []  # the prompt is playing again: no timer runs meanwhile
    s.prompt_finished()
    s.timed_out()
    s.prompt_finished()
    assert s.timed_out() == [Finished("operator", "tr", False, "no_input")]


def test_silence_at_the_language_menu_carries_on_in_turkish(config: IvrConfig) -> None:
    s = session(config)
    s.start()
    s.prompt_finished()
    s.timed_out()  # one retry
    s.prompt_finished()
    assert s.timed_out() == [Play((("main_menu", "tr"),))]


def test_the_repeat_key_cannot_keep_a_caller_in_a_menu_forever(config: IvrConfig) -> None:
    s = in_main_menu(config)
    for _ in range(3):  # three free repeats
        assert s.key("#") == [Play((("main_menu", "tr"),))]
        s.prompt_finished()
    presses = 0
    while not s.result and presses < 10:
        s.key("#")
        s.prompt_finished()
        presses += 1
    assert s.result == Finished("operator", "tr", False, "repeat") and presses == 3  # the retries, spent


def test_hash_repeats_and_star_goes_back(config: IvrConfig) -> None:
    languages = Play((("choose_language", "tr"), ("choose_language", "en"), ("choose_language", "ar")))
    s = in_main_menu(config, "2")
    assert s.key("#") == [Play((("main_menu", "en"),))]
    s.prompt_finished()
    assert s.key("*") == [languages]  # back to the language menu
    s.prompt_finished()
    assert s.key("*") == [languages]  # nothing before the first menu: it is repeated


def test_the_path_is_recorded(config: IvrConfig) -> None:
    s = in_main_menu(config)
    s.key("7")
    s.prompt_finished()
    s.key("2")
    assert s.path == [  # with the time of each step, in seconds since the call was answered
        {"menu": "language", "key": "1", "t": 0.0},
        {"menu": "main", "key": "7", "t": 1.0},
        {"menu": "main", "key": "2", "t": 2.0},
        {"menu": "main", "queue": "child_protection", "reason": "choice", "t": 3.0},
    ]


# -- the validator ------------------------------------------------------------------------------


def broken(tmp_path: Path, old: str, new: str) -> str:
    text = SHIPPED.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "ivr.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(IvrConfigError) as caught:
        load_ivr(path, QUEUES.queues)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def test_unknown_queue(tmp_path: Path) -> None:
    message = broken(
        tmp_path, 'options."6" = { queue = "complaints" }', 'options."6" = { queue = "complaint" }'
    )
    assert message == "nodes.main.options.6.queue: no queue named 'complaint'"


def test_unknown_menu(tmp_path: Path) -> None:
    message = broken(tmp_path, 'on_fail = { language = "tr", goto = "main" }', 'on_fail = { goto = "mian" }')
    assert message == "nodes.language.on_fail.goto: no menu named 'mian'"


def test_unreachable_menu(tmp_path: Path) -> None:
    message = broken(tmp_path, "[nodes.main]", '[nodes.orphan]\nprompt = "invalid"\n\n[nodes.main]')
    assert message == "nodes.orphan: unreachable from menu.start 'language'"


def test_key_clashing_with_a_reserved_key(tmp_path: Path) -> None:
    message = broken(tmp_path, 'options."0" = { queue = "operator" }', 'options."#" = { queue = "operator" }')
    assert message == "nodes.main.options.#: # is the repeat key in every menu"


def test_target_needs_exactly_one_destination(tmp_path: Path) -> None:
    message = broken(
        tmp_path,
        'options."0" = { queue = "operator" }',
        'options."0" = { queue = "operator", goto = "main" }',
    )
    assert message == "nodes.main.options.0: needs exactly one of goto, queue or emergency = true"


def test_prompt_missing_a_language_callers_can_choose(tmp_path: Path) -> None:
    message = broken(tmp_path, 'ar = "هذا الاختيار غير صحيح."\n', "")
    assert message == "prompts.invalid: no 'ar' text, but callers can choose it"


def test_unknown_prompt_and_unknown_key(tmp_path: Path) -> None:
    assert (
        broken(tmp_path, 'prompt = "main_menu"', 'prompt = "main"')
        == "nodes.main.prompt: no prompt named 'main' in [prompts]"
    )
    assert broken(tmp_path, "retries = 2 ", "retry = 2 ") == "menu.retry: unknown key"


def test_an_open_case_is_read_out_after_the_welcome_digit_by_digit(config: IvrConfig) -> None:
    [play, *_] = session(config).start(ticket="183-2026-000405")
    assert isinstance(play, Play)
    assert play.prompts[:5] == (
        ("welcome", "tr"), ("open_ticket", "tr"), ("digit_4", "tr"), ("digit_0", "tr"), ("digit_5", "tr"),
    )  # fmt: skip
    assert play.prompts[5][0] == "choose_language"


def test_an_open_ticket_prompt_needs_every_digit(tmp_path: Path) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    start = text.index("[prompts.digit_7]")
    broken = tmp_path / "ivr.toml"
    broken.write_text(text[:start] + text[text.index("[prompts.digit_8]") :], encoding="utf-8")
    with pytest.raises(IvrConfigError, match=r"menu.open_ticket: no prompt named 'digit_7'"):
        load_ivr(broken, QUEUES.queues)


OFFER = AgentOffer(agent="9001", queue="child_protection", language="en")


def offered(config: IvrConfig) -> MenuSession:
    s = session(config)
    [play] = s.start(ticket="183-2026-000405", offer=OFFER)
    assert isinstance(play, Play)
    assert play.prompts[1:] == (
        ("open_ticket", "tr"), ("digit_4", "tr"), ("digit_0", "tr"), ("digit_5", "tr"),
        ("open_ticket_offer", "tr"),
    )  # fmt: skip
    assert s.prompt_finished() == [WaitForKey(4.0)]  # the offer's own wait, before any menu
    return s


def test_a_repeat_caller_who_accepts_is_put_through_to_their_agent_in_their_language(
    config: IvrConfig,
) -> None:
    s = offered(config)
    accepted = Finished("child_protection", "en", urgent=False, reason="open_ticket", agent="9001")
    assert s.key("1") == [accepted]
    assert [{k: v for k, v in step.items() if k != "t"} for step in s.path] == [
        {"menu": "open_ticket_offer", "key": "1"},
        {"menu": "open_ticket_offer", "queue": "child_protection", "reason": "open_ticket"},
    ]


def test_silence_or_another_key_declines_the_offer_and_the_menus_follow(config: IvrConfig) -> None:
    silent = offered(config)
    [play] = silent.timed_out()
    assert isinstance(play, Play) and play.prompts[0] == ("choose_language", "tr")
    other = offered(config)
    [play] = other.key("2")  # "2" here is no choice of language: the menu has not been heard yet
    assert isinstance(play, Play) and play.prompts[0] == ("choose_language", "tr")
    assert other.node == "language" and other.result is None
    other.prompt_finished()
    assert other.key("1")[0] == Play((("main_menu", "tr"),))  # the menus behave as for anyone


def test_the_emergency_key_wins_over_the_offer_and_a_prompt_is_cut_short(config: IvrConfig) -> None:
    s = session(config)
    s.start(ticket="183-2026-000405", offer=OFFER)
    assert s.key("9") == [StopPrompt(), Finished("emergency", "tr", urgent=True, reason="emergency")]


def test_no_offer_without_the_prompt_or_without_an_open_case(config: IvrConfig, tmp_path: Path) -> None:
    [play] = session(config).start(offer=OFFER)  # no case number: nothing to offer
    assert isinstance(play, Play) and ("open_ticket_offer", "tr") not in play.prompts
    text = SHIPPED.read_text(encoding="utf-8").replace('open_ticket_offer = "open_ticket_offer"', "")
    (tmp_path / "ivr.toml").write_text(text, encoding="utf-8")
    plain = load_ivr(tmp_path / "ivr.toml", QUEUES.queues)
    s = session(plain)
    [play] = s.start(ticket="183-2026-000405", offer=OFFER)
    assert isinstance(play, Play) and play.prompts[-1][0] == "choose_language" and s.offer is None


def test_the_offer_key_must_not_be_a_reserved_key_and_needs_the_case_prompt(tmp_path: Path) -> None:
    assert (
        broken(tmp_path, 'open_ticket_offer_digit = "1"', 'open_ticket_offer_digit = "#"')
        == "menu.open_ticket_offer_digit: # is the repeat key in every menu"
    )
    assert (
        broken(tmp_path, 'open_ticket = "open_ticket"  #', "#")
        == "menu.open_ticket_offer: needs menu.open_ticket (the offer follows the case number)"
    )


def test_the_silent_key_must_differ_from_the_emergency_key(tmp_path: Path) -> None:
    assert (
        broken(tmp_path, 'silent_digit = "5"', 'silent_digit = "9"')
        == "menu.silent_digit: must differ from emergency_digit (it follows it)"
    )
