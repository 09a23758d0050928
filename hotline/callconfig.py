"""The caller-facing configuration files, loaded together: queues first, then what sends callers to them."""

from __future__ import annotations

from pathlib import Path

from agents.config import QueuesConfig, load_queues
from hotline.settings import Settings, SettingsError
from hotline.workdays import Calendar
from ivr.config import IvrConfig, load_ivr


def load_call_config(settings: Settings, calendar: Calendar | None = None) -> tuple[QueuesConfig, IvrConfig]:
    """The queues (their schedules following ``calendar``, by default the site's from
    ``[hotline]``; reuse it as ``queues.calendar``) and the menus."""
    if calendar is None:
        calendar = Calendar.from_settings(settings.hotline)
    queues = load_queues(Path(settings.queues.file), calendar)
    check_numbers(settings, queues)
    menus = load_ivr(Path(settings.ivr.menus), queues.queues, settings.hotline.languages[0])
    return queues, menus


def check_numbers(settings: Settings, queues: QueuesConfig) -> None:
    """Every number dialled straight into a queue must name a queue that exists."""
    for key in ("direct", "app_queue"):
        numbers: dict[str, str] = getattr(settings.asterisk, key)
        for number, queue in numbers.items():
            if queue not in queues.queues:
                raise SettingsError(
                    f"{settings.source}: asterisk.{key}.{number}: no queue named {queue!r}"
                    f" in {settings.queues.file}"
                )
