"""Türkiye's working-day calendar: one source for the queues' opening hours and the tickets' deadlines.

The public holidays and half-day eves come from the ``holidays`` library (country ``TR``), which
knows the fixed national days and the moving religious ones (Ramazan Bayramı, Kurban Bayramı,
from the Diyanet tables; years past its tables are marked "tahmini", estimated). What a site adds
or works anyway comes from its configuration:

- ``extra_holidays``: more closed days (e.g. an administrative leave day declared by circular);
- ``extra_half_days``: more eves, closed from the cut-off on;
- ``worked``: days the library lists that this site works anyway (neither holiday nor eve here).

A half day ("arife": the afternoon before Ramazan and Kurban Bayramı, and 28 Ekim before
Cumhuriyet Bayramı) is open until ``half_day_until``; by law 2429 the holiday starts at 13:00.
For deadlines it counts as a working day.

Pure: no I/O, no clock; each year's table is built on first use and kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING

import holidays

if TYPE_CHECKING:
    from hotline.settings import HotlineSection

COUNTRY = "TR"
HALF_DAY_UNTIL = time(13, 0)  # law 2429: the eves' holiday starts at 13:00
_EXTRA_NAMES = {"tr": ("Ek tatil", "Yarım gün"), "en_US": ("Site holiday", "Half day")}

Days = Mapping[date, str] | Iterable[date]


@dataclass(frozen=True, slots=True)
class _Year:
    holidays: dict[date, str]
    half_days: dict[date, str]


def _named(days: Days, default: str) -> dict[date, str]:
    named = dict(days) if isinstance(days, Mapping) else dict.fromkeys(days, default)
    for day in named:
        _check_day(day)
    return named


def _check_day(d: date) -> date:
    # A datetime is a date to Python, but never equal to one: it would never be found.
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"expected a local date, got {d!r}")
    return d


class Calendar:
    """Working days in Türkiye: the library's holidays for ``TR`` plus this site's additions.

    A working day is Monday to Friday and not a full holiday; a half day is a working day.
    ``language`` names the holidays (``tr`` or ``en_US``; the library's own translations).
    """

    __slots__ = ("_extra_half_days", "_extra_holidays", "_language", "_worked", "_years", "half_day_until")

    def __init__(
        self,
        *,
        extra_holidays: Days = (),
        extra_half_days: Days = (),
        worked: Iterable[date] = (),
        half_day_until: time = HALF_DAY_UNTIL,
        language: str = "tr",
    ) -> None:
        holiday_name, half_name = _EXTRA_NAMES.get(language, _EXTRA_NAMES["en_US"])
        self._extra_holidays = _named(extra_holidays, holiday_name)
        self._extra_half_days = _named(extra_half_days, half_name)
        self._worked = frozenset(_check_day(d) for d in worked)
        extras = (("extra_holidays", self._extra_holidays), ("extra_half_days", self._extra_half_days))
        for label, days in extras:
            both = sorted(self._worked & days.keys())
            if both:
                raise ValueError(f"{label} and worked both list {', '.join(map(str, both))}")
        both = sorted(self._extra_holidays.keys() & self._extra_half_days.keys())
        if both:
            raise ValueError(f"extra_holidays and extra_half_days both list {', '.join(map(str, both))}")
        if half_day_until.tzinfo is not None:
            raise ValueError("half_day_until is a local time of day, without a time zone")
        self.half_day_until = half_day_until
        self._language = language
        self._years: dict[int, _Year] = {}

    @classmethod
    def from_settings(cls, section: HotlineSection) -> Calendar:
        """The site's calendar from ``[hotline]`` (``holidays_extra``, ``half_days_extra``,
        ``holidays_worked``, ``half_day_until``), naming holidays in the first caller language
        the library knows, else English."""
        language = next((lang for lang in section.languages if lang in _EXTRA_NAMES), "en_US")
        return cls(
            extra_holidays=section.holidays_extra,
            extra_half_days=section.half_days_extra,
            worked=section.holidays_worked,
            half_day_until=time.fromisoformat(section.half_day_until),
            language=language,
        )

    def _year(self, year: int) -> _Year:
        table = self._years.get(year)
        if table is None:
            table = self._years[year] = self._build(year)
        return table

    def _build(self, year: int) -> _Year:
        def library(category: str) -> dict[date, str]:
            found = holidays.country_holidays(
                COUNTRY, years=year, categories=category, language=self._language, expand=False
            )
            return {d: str(name) for d, name in found.items()}

        full = library(holidays.PUBLIC)
        full.update((d, n) for d, n in self._extra_holidays.items() if d.year == year)
        half = library(holidays.HALF_DAY)
        half.update((d, n) for d, n in self._extra_half_days.items() if d.year == year)
        for d in self._worked:
            full.pop(d, None)
            half.pop(d, None)
        for d in full:
            half.pop(d, None)  # a site's full holiday on an eve closes the whole day
        return _Year(full, half)

    def is_holiday(self, d: date) -> bool:
        """A full holiday (any weekday): closed all day."""
        return _check_day(d) in self._year(d.year).holidays

    def is_half_day(self, d: date) -> bool:
        """An eve: open until ``half_day_until``, closed from then on (even on a weekend date)."""
        return _check_day(d) in self._year(d.year).half_days

    def is_working_day(self, d: date) -> bool:
        """Monday to Friday and not a full holiday; a half day is a working day."""
        return _check_day(d).weekday() < 5 and not self.is_holiday(d)

    def is_closed(self, d: date, at: time) -> bool:
        """Closed at local time ``at`` of day ``d`` for the calendar's sake: all day on a holiday,
        from ``half_day_until`` on an eve. Weekends and opening hours are the caller's business."""
        return self.is_holiday(d) or (self.is_half_day(d) and at >= self.half_day_until)

    def name(self, d: date) -> str | None:
        """The holiday's or eve's name, for display (e.g. "Kurban Bayramı (saat 13.00'ten)")."""
        table = self._year(_check_day(d).year)
        return table.holidays.get(d) or table.half_days.get(d)

    def add_working_days(self, start: datetime, n: int, tz: tzinfo) -> datetime:
        """The due moment of something that must be done within ``n`` working days of ``start``.

        The rule: take ``start``'s date in ``tz`` (the site's time zone); that day itself never
        counts, whatever the hour; count the following working days (``is_working_day``: half
        days count, weekends and full holidays do not); the due moment is the very end
        (23:59:59.999999, in ``tz``) of the ``n``-th of them. So a request on Friday evening, or
        at 23:30 on Friday local time, counts from Monday: with ``n`` = 1 it is due at the end of
        Monday. A request at 00:30 on Saturday local time (still Friday in UTC) counts from Monday
        too. CİMER (law 4982 and its regulation) answers within 15 working days: ``n`` = 15.

        ``start`` must be time-zone aware and ``n`` at least 1. Overdue means ``now > due``.
        """
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("start must be time-zone aware")
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        day = start.astimezone(tz).date()
        counted = 0
        while counted < n:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return datetime.combine(day, time.max, tzinfo=tz)

    def working_days_between(self, a: date, b: date) -> int:
        """The working days after ``a`` up to and including ``b`` (negative when ``b`` is before
        ``a``), so that ``working_days_between(start, due)`` is ``n`` for the local dates of
        ``start`` and ``add_working_days(start, n, tz)``."""
        _check_day(a)
        _check_day(b)
        if b < a:
            return -self.working_days_between(b, a)
        return sum(self.is_working_day(a + timedelta(days=k)) for k in range(1, (b - a).days + 1))
