"""The one clock of the process: queue, wrap-up, call-back and escalation logic read time and wait
through it, so tests drive time by hand instead of sleeping.

``now()`` is monotonic seconds (for waits and durations, immune to wall-clock jumps); ``utcnow()``
is the wall clock for what is stored; ``sleep()`` is how timers wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from hotline.models import utcnow as _utcnow

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Clock:
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = _utcnow
    sleep: Sleep = asyncio.sleep

    def now(self) -> float:
        return self.monotonic()

    def utcnow(self) -> datetime:
        return self.wall()

    def since(self, when: datetime) -> float:
        """Seconds from ``when`` (wall clock) to now, never negative; for waits stored in the database."""
        return max(0.0, (self.wall() - when).total_seconds())


SYSTEM = Clock()
