"""config/queues.toml: queues, schedules and their validation."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agents.config import QueuesConfig, QueuesConfigError, Schedule, load_queues
from agents.service import Strategy, Tier
from hotline.workdays import Calendar

SHIPPED = Path("config/queues.toml")


@pytest.fixture(scope="module")
def config() -> QueuesConfig:
    return load_queues(SHIPPED)


def test_shipped_queues_are_always_open_and_route_emergencies_to_everyone(config: QueuesConfig) -> None:
    assert config.is_open("complaints", datetime(2026, 10, 29, 3, 0, tzinfo=UTC))  # a holiday, at night
    rules = config.queues["emergency"].rules("emergency")
    assert rules.strategy is Strategy.ring_all and not rules.language_required
    child = config.queues["child_protection"].rules("child_protection")
    assert child.skill == "child" and child.tiers == (Tier(0, 3), Tier(30, 1), Tier(90, 0))
    assert (
        config.label("operator")["tr"] == "Operatör"
        and config.category("child_protection") == "child_protection"
    )


def test_office_schedule_knows_hours_and_holidays(config: QueuesConfig) -> None:
    office, calendar = config.schedules["office"], config.calendar
    assert office.is_open(datetime(2026, 11, 23, 7, 0, tzinfo=UTC), calendar)  # Monday 10:00 in Istanbul
    assert not office.is_open(datetime(2026, 11, 23, 9, 45, tzinfo=UTC), calendar)  # lunch
    assert not office.is_open(datetime(2026, 11, 22, 7, 0, tzinfo=UTC), calendar)  # Sunday
    assert not office.is_open(datetime(2026, 10, 29, 7, 0, tzinfo=UTC), calendar)  # Republic Day, a Thursday


def test_religious_holidays_close_the_office_without_being_listed(config: QueuesConfig) -> None:
    office, calendar = config.schedules["office"], config.calendar
    assert office.holidays == []  # the shipped file lists none: they come from the calendar
    # Ramazan Bayramı 2027 (Tuesday 9 to Thursday 11 March), Kurban Bayramı 2027 (16 to 19 May).
    for day in (9, 10, 11):
        assert not office.is_open(datetime(2027, 3, day, 7, 0, tzinfo=UTC), calendar), day  # 10:00 local
    assert office.is_open(datetime(2027, 3, 12, 7, 0, tzinfo=UTC), calendar)  # the Friday after
    assert not office.is_open(datetime(2027, 5, 17, 7, 0, tzinfo=UTC), calendar)  # Kurban Bayramı, Monday
    assert not office.is_open(datetime(2026, 5, 27, 7, 0, tzinfo=UTC), calendar)  # Kurban Bayramı 2026


def test_an_eve_closes_the_office_from_the_cut_off(config: QueuesConfig) -> None:
    office, calendar = config.schedules["office"], config.calendar
    # Tuesday 26 May 2026, the arife of Kurban Bayramı: the morning as usual, no afternoon.
    assert office.is_open(datetime(2026, 5, 26, 7, 0, tzinfo=UTC), calendar)  # 10:00 local
    assert not office.is_open(datetime(2026, 5, 26, 11, 0, tzinfo=UTC), calendar)  # 14:00 local
    assert office.is_open(datetime(2026, 6, 2, 11, 0, tzinfo=UTC), calendar)  # an ordinary Tuesday, 14:00
    # 28 Ekim 2026 (a Wednesday), the eve of Cumhuriyet Bayramı, and the arife of Ramazan Bayramı 2027.
    assert not office.is_open(datetime(2026, 10, 28, 11, 0, tzinfo=UTC), calendar)
    assert not office.is_open(datetime(2027, 3, 8, 11, 0, tzinfo=UTC), calendar)


def test_the_half_day_cut_off_is_the_calendars() -> None:
    # Open 08:00-18:00 straight through, so only the cut-off closes it on an eve (Wednesday 28 Ekim 2026).
    schedule = Schedule(hours={"wed": ["08:00-18:00"]})
    by_law, at_half_past_twelve = Calendar(), Calendar(half_day_until=time(12, 30))
    local = ZoneInfo("Europe/Istanbul")

    def at(hour: int, minute: int) -> datetime:
        return datetime(2026, 10, 28, hour, minute, tzinfo=local)

    assert schedule.is_open(at(12, 29), at_half_past_twelve)
    assert not schedule.is_open(at(12, 30), at_half_past_twelve)
    assert not schedule.is_open(at(15, 0), at_half_past_twelve)
    assert schedule.is_open(at(12, 45), by_law)  # law 2429: the holiday starts at 13:00
    assert not schedule.is_open(at(13, 0), by_law)
    assert schedule.is_open(datetime(2026, 10, 21, 15, 0, tzinfo=local), at_half_past_twelve)  # a week before


def test_queues_follow_the_calendar_they_are_loaded_with(tmp_path: Path) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    old = 'category = "complaints"\n'
    assert old in text
    text = text.replace(old, old + 'schedule = "office"\n', 1)
    text = text.replace("holidays = []", "holidays = [2026-12-30]")  # the schedule's own addition
    path = tmp_path / "queues.toml"
    path.write_text(text, encoding="utf-8")
    calendar = Calendar(extra_holidays=[date(2026, 12, 31)], worked=[date(2026, 10, 29)])
    queues = load_queues(path, calendar)
    assert queues.calendar is calendar

    def open_at(day: date) -> bool:
        return queues.is_open("complaints", datetime.combine(day, time(7, 0), tzinfo=UTC))  # 10:00 local

    assert open_at(date(2026, 12, 29))
    assert not open_at(date(2026, 12, 30))  # the schedule's own addition
    assert not open_at(date(2026, 12, 31))  # the site's extra holiday
    assert open_at(date(2026, 10, 29))  # Republic Day, which this site works
    assert not open_at(date(2026, 3, 20))  # Ramazan Bayramı, from the library
    assert not load_queues(path).is_open("complaints", datetime(2026, 10, 29, 7, 0, tzinfo=UTC))  # default


def broken(tmp_path: Path, old: str, new: str) -> str:
    text = SHIPPED.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "queues.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(QueuesConfigError) as caught:
        load_queues(path)
    return str(caught.value).removeprefix(f"{path}: ")


def test_bad_hours(tmp_path: Path) -> None:
    message = broken(tmp_path, 'hours.mon = ["08:30-12:30"', 'hours.mon = ["12:30-08:30"')
    assert message == "schedules.office: hours.mon: 12:30-08:30 ends before it starts"


def test_unknown_strategy_and_overflow(tmp_path: Path) -> None:
    assert broken(tmp_path, 'strategy = "fewest_calls"', 'strategy = "fastest"').startswith(
        "queues.complaints.strategy: Input should be"
    )
    assert broken(tmp_path, 'overflow = "operator"', 'overflow = "nobody"') == (
        "queues.complaints.overflow: no queue named 'nobody'"
    )


def test_first_tier_starts_at_zero(tmp_path: Path) -> None:
    message = broken(
        tmp_path, "tiers = [{ after = 0, min_proficiency = 3 }", "tiers = [{ after = 5, min_proficiency = 3 }"
    )
    assert message == "queues.violence_against_women: tiers: the first tier must start at after = 0"


def test_overflow_must_not_loop(tmp_path: Path) -> None:
    message = broken(
        tmp_path,
        '[queues.operator]\nlabel = { tr = "Operatör", en = "Operator", ar = "الموظف" }\n',
        '[queues.operator]\nlabel = { tr = "Operatör", en = "Operator", ar = "الموظف" }\n'
        'max_wait = 60.0\noverflow = "complaints"\n',
    )
    assert message == "queues.complaints.overflow: callers would go round in circles"


def test_announcements_speak_the_place_then_the_wait_rounded_up(config: QueuesConfig) -> None:
    spoken = config.announcements
    assert spoken.say(3, None) == ["queue_position_3"]  # nothing answered yet: no estimate
    assert spoken.say(3, 130) == ["queue_position_3", "queue_wait_3"]  # 2 min 10 s -> "3 minutes"
    assert spoken.say(11, 400) == ["queue_wait_10"]  # too far back to count the place out loud
    assert spoken.say(1, 7200) == ["queue_position_1", "queue_wait_30"]  # no promise beyond the last
    texts = spoken.prompts()
    assert texts["queue_position_3"]["tr"] == "Sırada 3. kişisiniz."
    assert texts["queue_wait_5"]["en"] == "Your estimated wait is 5 minutes."
    assert len(texts) == spoken.positions + len(spoken.minutes) + 2  # and the call back offer, confirmation
    assert config.queues["emergency"].announce_period is None  # urgent callers are not kept talking


def test_announcement_texts_need_their_number(tmp_path: Path) -> None:
    message = broken(tmp_path, 'en = "You are number {n} in line."', 'en = "You are in line."')
    assert message == "announcements: position.en: the text needs {n}"


@pytest.mark.parametrize(
    ("number", "allowed"),
    [
        ("05321234567", True),  # a mobile
        ("02121234567", True),  # a landline in Istanbul
        ("+905321234567", True),
        ("09001234567", False),  # premium rate
        ("00441234567890", False),  # international
        ("112", False),
        ("Ayşe", False),  # a name, not a number
    ],
)
def test_only_national_landlines_and_mobiles_are_ever_called_back(number: str, allowed: bool) -> None:
    assert load_queues(Path("config/queues.toml")).may_call_back(number) is allowed
