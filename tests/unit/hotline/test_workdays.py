"""hotline.workdays: Türkiye's working days, from the holidays library plus the site's additions."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest

from hotline.callconfig import load_call_config
from hotline.settings import SettingsError
from hotline.workdays import Calendar
from tests.conftest import make_settings

IST = ZoneInfo("Europe/Istanbul")
TR = Calendar()


def span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=k) for k in range((last - first).days + 1)]


FIXED = [(1, 1), (4, 23), (5, 1), (5, 19), (7, 15), (8, 30), (10, 29)]
# Ramazan Bayramı and Kurban Bayramı (first and last day) as Diyanet announced them, with their eves.
MOVING = {
    2025: [(date(2025, 3, 30), date(2025, 4, 1)), (date(2025, 6, 6), date(2025, 6, 9))],
    2026: [(date(2026, 3, 20), date(2026, 3, 22)), (date(2026, 5, 27), date(2026, 5, 30))],
    2027: [(date(2027, 3, 9), date(2027, 3, 11)), (date(2027, 5, 16), date(2027, 5, 19))],
    2028: [(date(2028, 2, 26), date(2028, 2, 28)), (date(2028, 5, 5), date(2028, 5, 8))],
}
HOLIDAYS = [date(year, m, d) for year in MOVING for m, d in FIXED] + [
    day for bayrams in MOVING.values() for first, last in bayrams for day in span(first, last)
]
EVES = [date(year, 10, 28) for year in MOVING] + [
    first - timedelta(days=1) for bayrams in MOVING.values() for first, _ in bayrams
]


@pytest.mark.parametrize("day", HOLIDAYS, ids=str)
def test_public_holidays_fixed_and_moving(day: date) -> None:
    assert TR.is_holiday(day) and not TR.is_half_day(day) and not TR.is_working_day(day)
    assert TR.name(day)


@pytest.mark.parametrize("day", EVES, ids=str)
def test_eves_are_half_days_and_still_working_days(day: date) -> None:
    assert TR.is_half_day(day) and not TR.is_holiday(day)
    assert TR.is_working_day(day) is (day.weekday() < 5)  # 15 May 2027 and 28 Ekim 2028 are Saturdays
    assert TR.is_closed(day, time(13, 0)) and not TR.is_closed(day, time(12, 59))


def test_the_library_lists_nothing_else_as_a_holiday() -> None:
    listed = {day for year in MOVING for day in holidays.country_holidays("TR", years=year)}
    assert listed == set(HOLIDAYS)
    every_day = span(date(2025, 1, 1), date(2028, 12, 31))
    assert {d for d in every_day if TR.is_holiday(d)} == set(HOLIDAYS)
    assert {d for d in every_day if TR.is_half_day(d)} == set(EVES)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 3, 18), True),  # the Wednesday before Ramazan Bayramı's arife
        (date(2026, 3, 19), True),  # the arife: a half day, a working day
        (date(2026, 3, 20), False),  # Ramazan Bayramı, a Friday
        (date(2026, 3, 23), True),
        (date(2026, 11, 28), False),  # Saturday
        (date(2026, 11, 29), False),  # Sunday
        (date(2026, 8, 30), False),  # Zafer Bayramı on a Sunday: no day in lieu in Türkiye
        (date(2026, 8, 31), True),
        (date(2026, 12, 31), True),  # New Year's Eve is no holiday
        (date(2027, 1, 1), False),
    ],
    ids=str,
)
def test_working_days(day: date, working: bool) -> None:
    assert TR.is_working_day(day) is working


def test_names_for_display() -> None:
    assert TR.name(date(2026, 5, 27)) == "Kurban Bayramı"
    assert TR.name(date(2026, 5, 26)) == "Kurban Bayramı (saat 13.00'ten)"
    assert TR.name(date(2026, 10, 29)) == "Cumhuriyet Bayramı"
    assert TR.name(date(2026, 6, 2)) is None
    assert Calendar(language="en_US").name(date(2026, 3, 20)) == "Eid al-Fitr"


def due(calendar: Calendar, start: datetime, n: int) -> datetime:
    moment = calendar.add_working_days(start, n, IST)
    assert moment.tzinfo is IST and moment.time() == time.max  # the very end of a local day
    assert calendar.working_days_between(start.astimezone(IST).date(), moment.date()) == n
    return moment


def end_of(day: date) -> datetime:
    return datetime.combine(day, time.max, tzinfo=IST)


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        # CİMER's 15 working days from an ordinary Monday: three weeks.
        (datetime(2026, 11, 2, 10, 0, tzinfo=IST), 15, date(2026, 11, 23)),
        # Across the year's end: 1 January 2027 (a Friday) does not count.
        (datetime(2026, 12, 28, 10, 0, tzinfo=IST), 15, date(2027, 1, 19)),
        # Just before Kurban Bayramı 2026: the arife counts, 27-29 May do not.
        (datetime(2026, 5, 25, 10, 0, tzinfo=IST), 3, date(2026, 6, 2)),
        (datetime(2026, 5, 25, 10, 0, tzinfo=IST), 15, date(2026, 6, 18)),
        # Before Ramazan Bayramı 2026: Thursday's arife counts, Friday's Bayram does not.
        (datetime(2026, 3, 18, 16, 0, tzinfo=IST), 2, date(2026, 3, 23)),
        # The start's own day never counts, even at 08:00 on a working day.
        (datetime(2026, 11, 23, 8, 0, tzinfo=IST), 1, date(2026, 11, 24)),
        # A request on Friday evening counts from Monday.
        (datetime(2026, 11, 27, 19, 0, tzinfo=IST), 1, date(2026, 11, 30)),
        # ... and on a Saturday too.
        (datetime(2026, 11, 28, 11, 0, tzinfo=IST), 1, date(2026, 11, 30)),
    ],
    ids=str,
)
def test_deadlines_in_working_days(start: datetime, n: int, expected: date) -> None:
    assert due(TR, start, n) == end_of(expected)


def test_the_start_is_read_on_the_sites_clock() -> None:
    # Friday 23:30 in Istanbul is 20:30 UTC, still Friday: counts from Monday.
    assert due(TR, datetime(2026, 11, 27, 20, 30, tzinfo=UTC), 1) == end_of(date(2026, 11, 30))
    # Monday 01:00 in Istanbul is Sunday 22:00 UTC: Monday is the start's own day, so Tuesday is due.
    assert due(TR, datetime(2026, 11, 29, 22, 0, tzinfo=UTC), 1) == end_of(date(2026, 11, 24) + timedelta(7))
    # Sunday 23:30 in Istanbul is Sunday 20:30 UTC: Monday is the first working day.
    assert due(TR, datetime(2026, 11, 29, 20, 30, tzinfo=UTC), 1) == end_of(date(2026, 11, 30))
    # The due moment in UTC: 23:59:59.999999 local is 20:59:59.999999 UTC.
    assert due(TR, datetime(2026, 11, 27, 20, 30, tzinfo=UTC), 1).astimezone(UTC) == datetime(
        2026, 11, 30, 20, 59, 59, 999999, tzinfo=UTC
    )


def test_working_days_between() -> None:
    assert TR.working_days_between(date(2026, 12, 28), date(2027, 1, 19)) == 15
    assert TR.working_days_between(date(2027, 1, 19), date(2026, 12, 28)) == -15
    assert TR.working_days_between(date(2026, 11, 27), date(2026, 11, 30)) == 1  # Friday to Monday
    assert TR.working_days_between(date(2026, 11, 27), date(2026, 11, 27)) == 0
    assert TR.working_days_between(date(2026, 5, 25), date(2026, 5, 31)) == 1  # only the arife
    # 2026 has 261 weekdays, 10 of them holidays (1 January itself is one, and never counted).
    assert TR.working_days_between(date(2026, 1, 1), date(2026, 12, 31)) == 261 - 10


def test_site_additions_and_exceptions() -> None:
    site = Calendar(
        extra_holidays={date(2026, 12, 31): "İdari izin"},
        extra_half_days=[date(2026, 12, 30)],
        worked=[date(2026, 7, 15), date(2026, 10, 28)],
    )
    assert site.is_holiday(date(2026, 12, 31)) and site.name(date(2026, 12, 31)) == "İdari izin"
    assert site.is_half_day(date(2026, 12, 30)) and site.name(date(2026, 12, 30)) == "Yarım gün"
    assert site.is_working_day(date(2026, 7, 15)) and site.name(date(2026, 7, 15)) is None
    assert not site.is_half_day(date(2026, 10, 28)) and not site.is_closed(date(2026, 10, 28), time(15))
    assert site.is_holiday(date(2026, 10, 29))  # the rest of the library still holds
    # One more closed day in the deadline: 20 January instead of 19.
    assert due(site, datetime(2026, 12, 28, 10, 0, tzinfo=IST), 15) == end_of(date(2027, 1, 20))
    # A site's full holiday on a library eve closes the whole day.
    closed = Calendar(extra_holidays=[date(2026, 5, 26)])
    assert closed.is_holiday(date(2026, 5, 26)) and not closed.is_half_day(date(2026, 5, 26))
    assert closed.is_closed(date(2026, 5, 26), time(9))


def test_mistakes_are_refused() -> None:
    with pytest.raises(ValueError, match="extra_holidays and worked both list 2026-12-31"):
        Calendar(extra_holidays=[date(2026, 12, 31)], worked=[date(2026, 12, 31)])
    with pytest.raises(ValueError, match="extra_holidays and extra_half_days"):
        Calendar(extra_holidays=[date(2026, 12, 31)], extra_half_days=[date(2026, 12, 31)])
    with pytest.raises(TypeError, match="local date"):
        TR.is_holiday(datetime(2026, 10, 29, 10, 0, tzinfo=IST))  # would silently be "no holiday"
    with pytest.raises(ValueError, match="aware"):
        TR.add_working_days(datetime(2026, 11, 27, 23, 30), 1, IST)
    with pytest.raises(ValueError, match="at least 1"):
        TR.add_working_days(datetime(2026, 11, 27, 23, 30, tzinfo=IST), 0, IST)


def test_each_year_is_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = holidays.country_holidays

    def counting(*args: Any, **kwargs: Any) -> holidays.HolidayBase:
        calls.append(kwargs["years"])
        return real(*args, **kwargs)

    monkeypatch.setattr(holidays, "country_holidays", counting)  # as hotline.workdays calls it
    calendar = Calendar()
    assert calendar.working_days_between(date(2026, 1, 1), date(2026, 12, 31)) == 251
    calendar.add_working_days(datetime(2026, 12, 28, tzinfo=IST), 15, IST)
    assert sorted(calls) == [2026, 2026, 2027, 2027]  # public holidays and half days, per year


def test_the_site_calendar_comes_from_the_settings(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        "holidays_extra = [2026-12-31]\nholidays_worked = [2026-07-15]\n"
        'half_days_extra = [2026-12-30]\nhalf_day_until = "12:30"\n',
    )
    calendar = Calendar.from_settings(settings.hotline)
    assert calendar.is_holiday(date(2026, 12, 31)) and calendar.is_half_day(date(2026, 12, 30))
    assert not calendar.is_holiday(date(2026, 7, 15)) and calendar.half_day_until == time(12, 30)
    assert calendar.name(date(2026, 3, 20)) == "Ramazan Bayramı"  # the first caller language, tr
    queues, _ = load_call_config(settings)
    assert queues.calendar.is_holiday(date(2026, 12, 31))  # the queues follow the site's calendar
    assert load_call_config(settings, calendar)[0].calendar is calendar  # or the one handed in
    defaults = Calendar.from_settings(make_settings(tmp_path / "plain").hotline)
    assert defaults.half_day_until == time(13, 0) and not defaults.is_holiday(date(2026, 12, 31))


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        ("holidays_extra = [2026-07-15]\nholidays_worked = [2026-07-15]\n", "both list 2026-07-15"),
        ('half_day_until = "25:00"\n', "hotline.half_day_until"),
        ('holidays_extra = ["2026-12-31"]\n', "hotline.holidays_extra"),
    ],
)
def test_bad_calendar_settings_stop_start_up(tmp_path: Path, keys: str, reason: str) -> None:
    with pytest.raises(SettingsError, match=reason):
        make_settings(tmp_path, keys)
