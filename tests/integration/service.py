"""`hotline run` in a subprocess, as an operator starts it, with its JSON log read line by line."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from hotline.settings import Settings


class Service:
    """`hotline run` in a subprocess, its JSON log lines read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    async def wait_for(self, event: str, timeout: float = 30.0) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            assert self.process.stdout is not None
            while True:
                raw = await self.process.stdout.readline()
                if not raw:
                    raise AssertionError(f"hotline exited before {event!r}:\n" + "".join(self.lines))
                line = raw.decode()
                self.lines.append(line)
                if line.startswith("{") and json.loads(line).get("event") == event:
                    return dict(json.loads(line))

        return await asyncio.wait_for(read(), timeout)

    async def stop(self) -> int:
        """SIGTERM, as an operator stops it: it writes what it holds and exits; its exit code."""
        if self.process.returncode is None:
            self.process.terminate()
        return await self.process.wait()

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def start_service(settings: Settings, **env: str) -> Service:
    """Start `hotline run` on the test settings (database and overrides from ``env``)."""
    environ = {
        **os.environ,
        "HOTLINE_DATABASE__URL": f'"{settings.database_url}"',
        "HOTLINE_LOGGING__FORMAT": '"json"',
        **env,
    }
    config = settings.state_path.parent / "hotline.toml"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hotline.cli", "--config", str(config), "run",
        env=environ, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    return Service(process)
