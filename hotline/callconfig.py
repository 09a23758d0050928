"""The caller-facing configuration files, loaded together: queues first, then the menus that use them."""

from __future__ import annotations

from pathlib import Path

from agents.config import QueuesConfig, load_queues
from hotline.settings import Settings
from ivr.config import IvrConfig, load_ivr


def load_call_config(settings: Settings) -> tuple[QueuesConfig, IvrConfig]:
    queues = load_queues(Path(settings.queues.file))
    menus = load_ivr(Path(settings.ivr.menus), queues.queues, settings.hotline.languages[0])
    return queues, menus
