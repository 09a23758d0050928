"""Event-dispatch throughput and REST latency of ``ari.AriClient``, next to aioari 0.10.2.

    .venv/bin/python bench/ari_events.py [--events 50000] [--requests 2000]

Both clients face the same fake ARI server (``ari.testing.FakeAri``, run in this process)
and the same flood: ChannelDtmfReceived events, with full channel objects as Asterisk sends
them, interleaved across 50 channels. Each client runs in its own subprocess (one core each on
a 2-core machine; the server has the other). Two handler workloads are measured:

* ``dispatch``: the handler only counts, so this is the pure cost of reading, decoding,
  typing and dispatching an event.
* ``handler-io``: the handler awaits ``--handler-io`` seconds first, standing in for the REST
  call a real handler makes (answer, play, ...). aioari awaits each handler before reading the
  next event, one at a time for all calls; AriClient runs channels concurrently and keeps each
  channel in order. This is the figure that matters for a hotline with many calls.

A third run reads the dispatch flood with bare aiohttp and nothing else (``receive`` in the
table): the ceiling set by the server and the transport, which no client can pass. Near that
ceiling the rates are squeezed together, so each run also reports the client process's CPU time
per event (``cpu us/ev``), which the server's pace does not cap (a client that keeps up reads
in smaller batches, so if anything this figure is a little harder on the faster client).

REST latency is sequential ``GET /channels/{id}``, p50 and p99 over ``--requests`` calls after
a warm-up, with a bare aiohttp GET of the same URL as the floor (our overhead is the difference),
and once more with AriClient sending REST over the event WebSocket.

aioari is never a project dependency: it is installed into its own virtualenv under the user
cache directory (``$XDG_CACHE_HOME/alo-hotline/bench-aioari``) and its half runs there. The
last two lines are machine-readable, the handler-io comparison and then the headline:
``handler-io events_per_s=N aioari_events_per_s=N ratio=X`` and
``events_per_s=N aioari_events_per_s=N ratio=X rest_p99_ms=X``, where the headline is the bare
``dispatch`` workload (the client's own cost, where aioari's leaner untyped path is hardest to
beat) and rest_p99_ms is AriClient's total p99 on loopback, server time included. The bench
prints figures; it never passes or fails on them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ari.testing import FakeAri  # noqa: E402

WORKER = Path(__file__).resolve().parent / "ari_worker.py"
AIOARI = "aioari==0.10.2"
APP = "bench"
CHANNELS = 50


def aioari_python() -> Path | None:
    """The bench-only virtualenv's python with aioari importable (created on first use)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "alo-hotline" / "bench-aioari"
    python = cache / "bin" / "python"
    probe = [str(python), "-c", "import aioari, aiohttp"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"setting up {AIOARI} in {cache} ...", file=sys.stderr, flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(cache)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", AIOARI], check=True)
        subprocess.run(probe, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"aioari unavailable ({exc}); measuring AriClient only", file=sys.stderr)
        return None
    return python


def flood(count: int) -> list[dict[str, Any]]:
    """``count`` DTMF events round-robin over the channels, as concurrent calls produce them."""
    channels = [
        {
            "id": f"1700000000.{n}",
            "name": f"PJSIP/caller-{n:08x}",
            "state": "Up",
            "protocol_id": f"{n}-call@127.0.0.1",
            "caller": {"name": "", "number": f"555{n:04d}"},
            "connected": {"name": "", "number": ""},
            "accountcode": "",
            "dialplan": {
                "context": "hotline-in",
                "exten": "183",
                "priority": 3,
                "app_name": "Stasis",
                "app_data": APP,
            },
            "creationtime": "2026-01-01T10:00:00.000+0300",
            "language": "tr",
        }
        for n in range(CHANNELS)
    ]
    return [
        {
            "type": "ChannelDtmfReceived",
            "digit": str(i % 10),
            "duration_ms": 100,
            "channel": channels[i % CHANNELS],
        }
        for i in range(count)
    ]


async def run_half(
    fake: FakeAri, python: Path, kind: str, env: dict[str, str], events: list[dict[str, Any]]
) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        str(python), str(WORKER), kind, env=env, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        before = fake.ws_connects
        while (line := await asyncio.wait_for(proc.stdout.readline(), 60)) and line.strip() != b"ready":
            pass
        if not line:
            raise RuntimeError(f"{kind} worker exited before connecting")
        await fake.wait_for(lambda: fake.ws_connects > before and fake.open_sockets > 0)
        await fake.emit_many(events, app=APP)
        while (line := await asyncio.wait_for(proc.stdout.readline(), 300)) and not line.startswith(b"{"):
            pass
        if not line:
            raise RuntimeError(f"{kind} worker exited without a result")
        result: dict[str, Any] = json.loads(line)
        await asyncio.wait_for(proc.wait(), 30)
        return result
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=50_000, help="events in the dispatch flood")
    parser.add_argument("--io-events", type=int, default=5_000, help="events in the handler-io flood")
    parser.add_argument("--handler-io", type=float, default=0.001, help="seconds each handler awaits")
    parser.add_argument("--requests", type=int, default=2_000, help="timed REST requests per client")
    parser.add_argument("--no-aioari", action="store_true", help="measure AriClient only")
    args = parser.parse_args()
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    python_aioari = None if args.no_aioari else aioari_python()
    password = secrets.token_urlsafe(16)
    async with FakeAri(username="bench", password=password) as fake:
        fake.make_channel("1700000000.0", app=APP)
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "ARI_BENCH_URL": fake.base_url,
            "ARI_BENCH_USER": "bench",
            "ARI_BENCH_PASSWORD": password,
            "ARI_BENCH_APP": APP,
            "ARI_BENCH_CHANNEL": "1700000000.0",
            "ARI_BENCH_REQUESTS": str(args.requests),
        }
        results: dict[tuple[str, str], dict[str, Any]] = {}
        kinds = [("ours", Path(sys.executable))] + ([("aioari", python_aioari)] if python_aioari else [])
        for workload, count, io in [
            ("dispatch", args.events, 0.0),
            ("handler-io", args.io_events, args.handler_io),
        ]:
            events = flood(count)
            # Reading alone shows how fast the server and the transport can go at all.
            ceiling = [("ceiling", Path(sys.executable))] if workload == "dispatch" else []
            for kind, python in kinds + ceiling:
                env_run = {**env, "ARI_BENCH_EVENTS": str(count), "ARI_BENCH_HANDLER_IO": str(io)}
                results[(kind, workload)] = await run_half(fake, python, kind, env_run, events)

    head = f"{'client':<10}{'workload':<12}{'events/s':>12}{'cpu us/ev':>11}"
    print(f"{head}{'rest p50 ms':>14}{'rest p99 ms':>14}")
    for (kind, workload), r in results.items():
        if kind != "ceiling":
            print(
                f"{kind:<10}{workload:<12}{r['events_per_s']:>12.0f}{r['cpu_us']:>11.2f}"
                f"{r['p50_ms']:>14.3f}{r['p99_ms']:>14.3f}"
            )
    top = results[("ceiling", "dispatch")]
    print(
        f"{'aiohttp':<10}{'receive':<12}{top['events_per_s']:>12.0f}{top['cpu_us']:>11.2f}"
        "   (ceiling: frames read, nothing else)"
    )
    raw = results[("ours", "dispatch")]["raw"]
    print(f"{'aiohttp':<10}{'(floor)':<12}{'':>23}{raw['p50_ms']:>14.3f}{raw['p99_ms']:>14.3f}")
    sock = results[("ours", "dispatch")]["websocket"]
    print(f"{'ours':<10}{'rest-on-ws':<12}{'':>23}{sock['p50_ms']:>14.3f}{sock['p99_ms']:>14.3f}")

    def ratio(workload: str) -> float:
        theirs = results.get(("aioari", workload))
        if not theirs or not theirs["events_per_s"]:
            return math.nan
        return float(results[("ours", workload)]["events_per_s"] / theirs["events_per_s"])

    ours_rest = results[("ours", "dispatch")]
    print(
        f"rest overhead over bare aiohttp: p50 {ours_rest['p50_ms'] - raw['p50_ms']:+.3f} ms, "
        f"p99 {ours_rest['p99_ms'] - raw['p99_ms']:+.3f} ms"
    )

    def rates(workload: str) -> str:
        ours = results[("ours", workload)]["events_per_s"]
        theirs = results.get(("aioari", workload), {}).get("events_per_s", math.nan)
        return f"events_per_s={ours:.0f} aioari_events_per_s={theirs:.0f} ratio={ratio(workload):.2f}"

    print(f"handler-io {rates('handler-io')} handler_io_ms={args.handler_io * 1000:g}")
    print(f"{rates('dispatch')} rest_p99_ms={ours_rest['p99_ms']:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
