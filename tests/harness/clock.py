"""A stand-in for ``asyncio.sleep`` (``hotline.clock.Clock(sleep=...)``): a wait ends only when the
test says so, so timers are driven without sleeping."""

from __future__ import annotations

import asyncio


class ManualSleep:
    def __init__(self) -> None:
        self.pending: list[tuple[float, asyncio.Future[None]]] = []
        self.armed = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((seconds, future))
        self.armed.set()
        await future

    def running(self, seconds: float | None = None) -> list[tuple[float, asyncio.Future[None]]]:
        """Waits not yet over (a wait whose task was cancelled is over), of ``seconds`` if given."""
        return [(s, f) for s, f in self.pending if not f.done() and seconds in (None, s)]

    async def expire(self, seconds: float | None = None) -> float:
        """Wait until a wait (of ``seconds``, if given) is running, then end it: every wait of
        that length, or without ``seconds`` the newest one. Returns the length ended."""
        async with asyncio.timeout(5):
            while not (running := self.running(seconds)):
                self.armed.clear()
                await self.armed.wait()
        ended = running if seconds is not None else running[-1:]
        for _, future in ended:
            future.set_result(None)
        self.pending = self.running()
        return ended[-1][0]
