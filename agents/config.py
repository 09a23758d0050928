"""Queues and their opening hours (``config/queues.toml``), validated at start-up.

A queue is where callers wait for an agent: what agents and reports call it, the case category
it starts, when it is open, and how its calls are routed (strategy, priority, the skill it
needs and how that requirement relaxes while a caller waits, ring and wrap-up times).

Opening hours follow the site's working-day calendar (``hotline.workdays.Calendar``, handed to
``load_queues`` once): a schedule is closed on Türkiye's public holidays and from the cut-off on
half-day eves without listing them; a schedule's own ``holidays`` are only its additions.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from agents.service import QueueRules, Strategy, Tier
from hotline.settings import SettingsError, describe_error, read_toml
from hotline.workdays import Calendar

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Seconds = Annotated[float, Field(gt=0, le=3600)]


class QueuesConfigError(SettingsError):
    """The queue configuration is wrong; ``str()`` names file, key and reason."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Schedule(_Model):
    """Weekly opening hours, e.g. ``mon = ["08:30-12:00", "13:00-17:30"]``.

    Closed on the calendar's holidays and from its cut-off on half-day eves (national and
    religious, from ``hotline.workdays``), and on this schedule's own ``holidays`` (additions
    only: the national ones need not be listed). ``always_open`` ignores every holiday.
    """

    always_open: bool = False
    hours: dict[str, list[Annotated[str, Field(pattern=r"^\d\d:\d\d-\d\d:\d\d$")]]] = Field(
        default_factory=dict
    )
    holidays: list[date] = Field(default_factory=list)
    timezone: str = "Europe/Istanbul"

    @model_validator(mode="after")
    def _check(self) -> Schedule:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from None
        unknown = set(self.hours) - set(WEEKDAYS)
        if unknown:
            raise ValueError(f"hours: unknown day(s) {sorted(unknown)}; use {', '.join(WEEKDAYS)}")
        for day, spans in self.hours.items():
            for span in spans:
                start, end = (time.fromisoformat(part) for part in span.split("-"))
                if end <= start:
                    raise ValueError(f"hours.{day}: {span} ends before it starts")
        return self

    def is_open(self, when: datetime, calendar: Calendar) -> bool:
        """Open at ``when`` (an aware datetime), judged on the schedule's local clock."""
        if self.always_open:
            return True
        local = when.astimezone(ZoneInfo(self.timezone))
        now = local.time()
        if local.date() in self.holidays or calendar.is_closed(local.date(), now):
            return False
        for span in self.hours.get(WEEKDAYS[local.weekday()], []):
            start, end = (time.fromisoformat(part) for part in span.split("-"))
            if start <= now < end:
                return True
        return False


class TierConfig(_Model):
    after: Annotated[float, Field(ge=0)]
    min_proficiency: Annotated[int, Field(ge=0, le=5)]


class QueueConfig(_Model):
    label: dict[str, str]  # what agents and reports call it, per language
    category: str | None = None  # the case category a call to this queue starts with
    schedule: str = "always"
    strategy: Annotated[Strategy, Field(strict=False)] = Strategy.longest_idle  # read from a string
    priority: int = 0  # higher is served first (urgent calls always come before any queue)
    skill: str | None = None
    language_required: bool = True
    language_wait: Seconds = 60.0  # then any agent, rather than nobody
    tiers: list[TierConfig] = Field(
        default_factory=lambda: [TierConfig(after=0, min_proficiency=0)], min_length=1
    )
    ring_timeout: Seconds = 20.0
    wrap_up: Annotated[float, Field(ge=0, le=3600)] = 30.0
    max_no_answer: Annotated[int, Field(ge=1, le=20)] = 3
    no_answer_penalty: Annotated[float, Field(ge=0, le=3600)] = 60.0
    max_wait: Seconds | None = None  # then the caller moves to ``overflow``
    max_length: Annotated[int, Field(ge=1, le=10000)] | None = None  # callers beyond go to ``overflow``
    announce_period: Seconds | None = None  # tell waiting callers their place and wait this often
    # Offer a call back that keeps the caller's place once they have waited callback_after;
    # a number that does not answer is tried callback_attempts times, callback_retry apart.
    callback: bool = False
    callback_after: Seconds = 60.0
    callback_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    callback_retry: Seconds = 120.0
    overflow: str | None = None
    moh_class: str = "default"
    service_level: Seconds = 20.0  # answered within this many seconds counts as served in time

    @model_validator(mode="after")
    def _check(self) -> QueueConfig:
        if self.tiers[0].after != 0:
            raise ValueError("tiers: the first tier must start at after = 0")
        if (self.max_wait is not None or self.max_length is not None) != (self.overflow is not None):
            raise ValueError("overflow needs max_wait or max_length, and they need overflow")
        return self

    def rules(self, queue_id: str) -> QueueRules:
        return QueueRules(
            id=queue_id,
            strategy=self.strategy,
            priority=self.priority,
            skill=self.skill,
            language_required=self.language_required,
            language_wait=self.language_wait,
            tiers=tuple(Tier(t.after, t.min_proficiency) for t in self.tiers),
            wrap_up=self.wrap_up,
            ring_timeout=self.ring_timeout,
            max_no_answer=self.max_no_answer,
            no_answer_penalty=self.no_answer_penalty,
        )


class Announcements(_Model):
    """What a waiting caller hears every ``announce_period``: their place in the queue (up to
    ``positions``) and, once the queue has answered calls, the estimated wait in whole minutes,
    rounded up to the next of ``minutes``. Texts per language with ``{n}`` and ``{minutes}``."""

    position: dict[str, str] = Field(
        default_factory=lambda: {
            "tr": "Sırada {n}. kişisiniz.",
            "en": "You are number {n} in line.",
            "ar": "أنت رقم {n} في الانتظار.",
        }
    )
    wait: dict[str, str] = Field(
        default_factory=lambda: {
            "tr": "Tahmini bekleme süreniz {minutes} dakika.",
            "en": "Your estimated wait is {minutes} minutes.",
            "ar": "مدة الانتظار المتوقعة {minutes} دقائق.",
        }
    )
    callback_offer: dict[str, str] = Field(
        default_factory=lambda: {
            "tr": "Sıranızı kaybetmeden sizi geri aramamızı isterseniz 1'e basın.",
            "en": "To keep your place and be called back, press 1.",
            "ar": "للاحتفاظ بدورك ومعاودة الاتصال بك، اضغط 1.",
        }
    )
    callback_confirm: dict[str, str] = Field(
        default_factory=lambda: {
            "tr": "Teşekkürler. Sıranız geldiğinde bu numaradan sizi arayacağız. İyi günler.",
            "en": "Thank you. We will call you back on this number when it is your turn. Goodbye.",
            "ar": "شكراً لك. سنعاود الاتصال بك على هذا الرقم عندما يحين دورك. مع السلامة.",
        }
    )
    positions: Annotated[int, Field(ge=1, le=50)] = 10
    minutes: list[Annotated[int, Field(ge=1, le=120)]] = Field(
        default_factory=lambda: [1, 2, 3, 5, 10, 15, 20, 30], min_length=1
    )

    @model_validator(mode="after")
    def _check(self) -> Announcements:
        for key, field in (("position", "{n}"), ("wait", "{minutes}")):
            for language, text in getattr(self, key).items():
                if field not in text:
                    raise ValueError(f"{key}.{language}: the text needs {field}")
        if sorted(set(self.minutes)) != self.minutes:
            raise ValueError("minutes: list them once each, smallest first")
        return self

    def prompts(self) -> dict[str, dict[str, str]]:
        """Every sentence a caller may hear, as prompt name -> language -> text."""
        texts = {
            f"queue_position_{n}": {lang: text.format(n=n) for lang, text in self.position.items()}
            for n in range(1, self.positions + 1)
        }
        for m in self.minutes:
            texts[f"queue_wait_{m}"] = {lang: text.format(minutes=m) for lang, text in self.wait.items()}
        texts["callback_offer"] = dict(self.callback_offer)
        texts["callback_confirm"] = dict(self.callback_confirm)
        return texts

    def say(self, position: int, wait: float | None) -> list[str]:
        """The prompt names for a caller at ``position`` with an estimated ``wait`` in seconds."""
        names = [f"queue_position_{position}"] if position <= self.positions else []
        if wait is not None:
            minutes = next((m for m in self.minutes if m * 60 >= wait), self.minutes[-1])
            names.append(f"queue_wait_{minutes}")
        return names


class QueuesConfig(_Model):
    queues: dict[str, QueueConfig] = Field(min_length=1)
    schedules: dict[str, Schedule] = Field(default_factory=lambda: {"always": Schedule(always_open=True)})
    pause_reasons: list[str] = Field(default_factory=lambda: ["break", "meal", "training", "meeting"])
    announcements: Announcements = Field(default_factory=Announcements)
    # How a caller is dialled back, {number} being their number: e.g. "PJSIP/{number}@carrier".
    # Empty: no queue offers call backs.
    callback_dial: str = ""
    # The only numbers ever dialled back (regular expressions matched against the whole number):
    # the caller id is the caller's claim, and dialling whatever it says invites toll fraud
    # (premium and international numbers). Default: Turkish landlines and mobiles.
    callback_numbers: list[str] = Field(default_factory=lambda: [r"0[2-5][0-9]{9}", r"\+90[2-5][0-9]{9}"])
    # The site's working-day calendar (not a key of the file): ``load_queues`` hands it in.
    _calendar: Calendar = PrivateAttr(default_factory=Calendar)

    @model_validator(mode="after")
    def _references(self) -> QueuesConfig:
        if self.callback_dial and "{number}" not in self.callback_dial:
            raise ValueError("callback_dial: needs {number} where the caller's number goes")
        for n, pattern in enumerate(self.callback_numbers):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"callback_numbers[{n}]: not a regular expression: {exc}") from None
        for queue_id, queue in self.queues.items():
            if queue.callback and not self.callback_dial:
                raise ValueError(f"queues.{queue_id}.callback: set callback_dial to say how to call back")
            if queue.schedule not in self.schedules:
                raise ValueError(f"queues.{queue_id}.schedule: no schedule named {queue.schedule!r}")
            if queue.overflow is not None and queue.overflow not in self.queues:
                raise ValueError(f"queues.{queue_id}.overflow: no queue named {queue.overflow!r}")
            seen, hop = {queue_id}, queue.overflow
            while hop is not None:
                if hop in seen:
                    raise ValueError(f"queues.{queue_id}.overflow: callers would go round in circles")
                seen.add(hop)
                hop = self.queues[hop].overflow
        return self

    # What the IVR asks about a queue (ivr.flow.QueueDirectory).
    def has_queue(self, queue_id: str) -> bool:
        return queue_id in self.queues

    def label(self, queue_id: str) -> dict[str, str]:
        return self.queues[queue_id].label

    def category(self, queue_id: str) -> str | None:
        return self.queues[queue_id].category

    @property
    def calendar(self) -> Calendar:
        """The working-day calendar the schedules follow."""
        return self._calendar

    def is_open(self, queue_id: str, when: datetime) -> bool:
        return self.schedules[self.queues[queue_id].schedule].is_open(when, self._calendar)

    def may_call_back(self, number: str) -> bool:
        """Whether ``number`` is one the hotline may dial back (``callback_numbers``)."""
        return any(re.fullmatch(pattern, number) for pattern in self.callback_numbers)


def load_queues(path: Path, calendar: Calendar | None = None) -> QueuesConfig:
    """The queues in ``path``, their schedules following ``calendar`` (the site's, built once
    from ``[hotline]``; by default Türkiye's public holidays without site additions)."""
    data = read_toml(path, QueuesConfigError)
    try:
        config = QueuesConfig.model_validate(data)
    except ValidationError as exc:
        raise QueuesConfigError(f"{path}: {describe_error(exc.errors()[0])}") from None
    if calendar is not None:
        config._calendar = calendar
    return config
