"""How fast the IVR answers a key: from the caller's key to the next prompt starting.

    .venv/bin/python bench/ivr_latency.py [--calls 200] [--concurrency 10]

Starts its own Asterisk (on free loopback ports, in a temporary state folder) and the hotline
in this process, then places ``--calls`` SIPp calls, ``--concurrency`` at a time. Each caller
listens to the welcome for a second, presses 1 (Turkish) and hangs up shortly after the main
menu starts. Per call, the latency is Asterisk's own timestamps: ``ChannelDtmfReceived`` (the
key has ended) to ``PlaybackStarted`` of the main menu, so it covers the event reaching us,
stopping the welcome, starting the menu and Asterisk opening the file; SIP and RTP transit of
the key itself are not in it. Cleans up after itself. Last line:
``calls=N p50_ms=X p99_ms=X failed=N``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ari import events as ev  # noqa: E402
from hotline import asterisk, db, sipp  # noqa: E402
from hotline.app import create_app  # noqa: E402
from hotline.logging import configure_logging  # noqa: E402
from hotline.models import CallEvent  # noqa: E402
from hotline.settings import Settings, load_settings  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def bench_settings(folder: Path) -> Settings:
    config = folder / "hotline.toml"
    rtp = 30000
    config.write_text(
        f"""
[hotline]
state_dir = "{folder / "state"}"
[ari]
url = "http://127.0.0.1:{sipp.free_port(kind=1)}"
[asterisk]
sip_port = {sipp.free_port()}
rtp_start = {rtp}
rtp_end = {rtp + 2000}
[ivr]
menus = "{REPO / "config" / "ivr.toml"}"
[prompts]
recordings = "{REPO / "config" / "prompts"}"
[logging]
level = "warning"
"""
    )
    return load_settings(config, environ={})


class KeyToPrompt:
    """Collects, per channel, when the key ended and when the next prompt started (Asterisk's clock)."""

    def __init__(self) -> None:
        self.key_at: dict[str, datetime] = {}
        self.latency_ms: dict[str, float] = {}
        self.seen: defaultdict[str, int] = defaultdict(int)

    async def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.ChannelDtmfReceived) and event.channel.id not in self.key_at:
            self.key_at[event.channel.id] = datetime.fromisoformat(event.timestamp)
        elif isinstance(event, ev.PlaybackStarted):
            channel = event.playback.target_uri.removeprefix("channel:")
            key = self.key_at.get(channel)
            if key is not None and channel not in self.latency_ms:
                started = datetime.fromisoformat(event.timestamp)
                self.latency_ms[channel] = (started - key).total_seconds() * 1000


async def run(calls: int, concurrency: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="hotline-bench-ivr-"))
    settings = bench_settings(folder)
    print(f"starting Asterisk in {folder} ...", flush=True)
    instance = await asyncio.to_thread(asterisk.up, settings, lambda *_: None)
    app = None
    try:
        await db.upgrade_async(settings.database_url)
        app = create_app(settings)
        probe = KeyToPrompt()
        app.ari.on_event(probe)
        await app.start(serve_web=False)
        print(f"Asterisk {instance.version}; {calls} calls, {concurrency} at a time", flush=True)
        gate = asyncio.Semaphore(concurrency)

        async def one(n: int) -> bool:
            async with gate:
                result = await sipp.call(
                    settings, "183", digits="1", wait=1.0, hold=1.5, caller_id=f"0532{n:07d}"
                )
                if not result.ok:
                    print(f"call {n} failed: {result.errors.strip()[-300:]}", flush=True)
                return result.ok

        all_ended = asyncio.Event()
        ended = 0

        def count(event: CallEvent) -> None:
            nonlocal ended
            ended += event.kind == "ended"
            if ended == calls:
                all_ended.set()

        app.calls.subscribe(count)
        started = time.monotonic()
        ok = await asyncio.gather(*(one(n) for n in range(calls)))
        try:
            await asyncio.wait_for(all_ended.wait(), 30)  # the last hang-ups reach the call log
        except TimeoutError:
            print(f"only {ended} of {calls} calls ended in the call log")
        elapsed = time.monotonic() - started
        latencies = list(probe.latency_ms.values())
        print(
            f"placed {calls} calls in {elapsed:.1f} s: {sum(ok)} completed by SIPp, {len(latencies)} measured"
        )
        if latencies:
            print(
                f"key -> next prompt: p50 {percentile(latencies, 0.5):.1f} ms, "
                f"p99 {percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms"
            )
        p50 = percentile(latencies, 0.5) if latencies else float("nan")
        p99 = percentile(latencies, 0.99) if latencies else float("nan")
        # Failed: SIPp did not complete the call, or its key-to-prompt time was never seen.
        failed = max(calls - sum(ok), calls - len(latencies))
        print(f"calls={calls} p50_ms={p50:.1f} p99_ms={p99:.1f} failed={failed}")
    finally:
        if app is not None:
            await app.close()
        await asyncio.to_thread(asterisk.down, settings, True)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    configure_logging("warning", "console")
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    asyncio.run(run(args.calls, args.concurrency))


if __name__ == "__main__":
    main()
