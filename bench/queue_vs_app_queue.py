"""Our queue router next to Asterisk's own app_queue: the same callers and agent phones through both.

    .venv/bin/python bench/queue_vs_app_queue.py [--calls 100] [--agents 20] [--talk 2] [--wrap-up 1]

Starts its own Asterisk (free loopback ports, a temporary state folder) with ``--agents`` agents
whose fixed contacts all point at one SIPp phone process that answers at once and hangs up after
``--talk`` seconds. One queue, ``bench``, is served two ways on that same Asterisk:

* **app_queue**: 1839 runs ``Answer(,i)`` and ``Queue(bench)``; queues.conf is rendered from the
  same queue settings (leastrecent for our longest_idle, the same ring timeout and wrap-up,
  ringinuse=no, the agents as static members);
* **hotline**: ``hotline run`` as a subprocess (as an operator runs it, SQLite, JSON logs at
  info level) and 1830, its direct line into ``bench`` (answer over ARI, then our router).

Each path gets a few warm-up calls, then ``--calls`` callers dial at once from one SIPp process
and stay until the agent hangs up (``--hold`` at most). app_queue runs first, before the hotline
is started, so no ARI application of ours is listening while it is measured.

Latency is taken from one clock for both paths: Asterisk's own event timestamps, seen by a
separate ARI application of the benchmark subscribed to every PJSIP endpoint and every bridge
(it only watches; the same subscription serves both paths). For each caller: from the caller's
channel going Up (answered) to the moment caller and agent are both in a mixing bridge (app_queue's
basic bridge, or our mixing bridge; our holding bridge does not count). That includes waiting
for a free agent, ringing and connecting. The part after the agent answered (agent channel Up to
bridged) is shown too: it is the connect step alone, where the two designs differ most. So is
arrived -> answered (the caller's channel created -> Up), not part of the latency above: app_queue's
dialplan answers at once, ours once our process has handled the StasisStart.

CPU is user + system time of the Asterisk process and of the ``hotline run`` process, read from
/proc/<pid>/stat before and after each measured run; SIPp and this script are not counted.
Per call it is divided by the calls that reached an agent. Lost: callers who never reached one.

The last line is ``calls=N lost=N p99_ms=X app_queue_p99_ms=X cpu_per_call_ratio=X``, where the
ratio is (Asterisk + hotline CPU per call on our path) / (Asterisk CPU per call with app_queue).
A benchmark: it prints figures and never fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ari import AriClient  # noqa: E402
from ari import events as ev  # noqa: E402
from hotline import asterisk, db, sipp  # noqa: E402
from hotline.logging import configure_logging  # noqa: E402
from hotline.settings import Settings, load_settings  # noqa: E402

HOTLINE_NUMBER, APP_QUEUE_NUMBER = "1830", "1839"
WARM_UP = 5
TICKS = os.sysconf("SC_CLK_TCK")

IVR = """
[menu]
start = "main"
invalid = "invalid"
[nodes.main]
prompt = "main"
options."1" = { queue = "bench" }
[prompts.main]
tr = "Bir."
[prompts.invalid]
tr = "Hayır."
[prompts.fallback]
tr = "Sorun."
[prompts.unreachable]
tr = "Yok."
"""


def queues_toml(wrap_up: float) -> str:
    return f"""
[queues.bench]
label = {{ tr = "Bench" }}
strategy = "longest_idle"
language_required = false
ring_timeout = 15.0
wrap_up = {wrap_up}
[queues.operator]
label = {{ tr = "Operatör" }}
[queues.emergency]
label = {{ tr = "Acil" }}
strategy = "ring_all"
[schedules.always]
always_open = true
"""


def bench_settings(folder: Path, agents: int, phone_port: int, wrap_up: float) -> Path:
    (folder / "ivr.toml").write_text(IVR, encoding="utf-8")
    (folder / "queues.toml").write_text(queues_toml(wrap_up), encoding="utf-8")
    desks = "".join(
        f'[[agents]]\nid = "{7001 + n}"\nname = "Agent {n + 1}"\nlanguages = ["tr"]\n'
        f'contact = "sip:agent-{7001 + n}@127.0.0.1:{phone_port}"\n'
        for n in range(agents)
    )
    config = folder / "hotline.toml"
    config.write_text(
        f"""
[hotline]
state_dir = "{folder / "state"}"
languages = ["tr"]
on_stop = "keep"
[ari]
url = "http://127.0.0.1:{sipp.free_port(kind=1)}"
[web]
port = {sipp.free_port(kind=1)}
[asterisk]
sip_port = {sipp.free_port()}
rtp_start = 30000
rtp_end = 34000
direct = {{ "{HOTLINE_NUMBER}" = "bench" }}
app_queue = {{ "{APP_QUEUE_NUMBER}" = "bench" }}
[speech]
engine = "none"
[logging]
level = "info"
format = "json"
[ivr]
menus = "{folder / "ivr.toml"}"
[queues]
file = "{folder / "queues.toml"}"
{desks}""",
        encoding="utf-8",
    )
    return config


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def stamp(event: ev.Event) -> datetime:
    return datetime.fromisoformat(event.timestamp)


@dataclass(slots=True)
class Caller:
    created: datetime | None = None
    up: datetime | None = None
    connected: datetime | None = None
    agent_up: datetime | None = None
    gone: bool = False


@dataclass(slots=True)
class Observer:
    """Asterisk's timestamps for every caller: answered, agent answered, both in a mixing bridge."""

    callers: dict[str, Caller] = field(default_factory=dict)
    agent_up: dict[str, datetime] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        self.callers.clear()
        self.agent_up.clear()

    async def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.UnknownEvent) and event.type == "ChannelCreated":  # not modelled: raw
            if str(event.raw["channel"]["name"]).startswith("PJSIP/caller-"):
                self.callers.setdefault(str(event.raw["channel"]["id"]), Caller()).created = stamp(event)
        elif isinstance(event, ev.ChannelStateChange) and event.channel.state == "Up":
            if event.channel.name.startswith("PJSIP/caller-"):
                self.callers.setdefault(event.channel.id, Caller()).up = stamp(event)
            elif event.channel.name.startswith("PJSIP/agent-"):
                self.agent_up[event.channel.id] = stamp(event)
        elif isinstance(event, ev.ChannelEnteredBridge) and event.bridge.bridge_type == "mixing":
            members = event.bridge.channels
            for channel_id in members:
                caller = self.callers.get(channel_id)
                if caller is not None and caller.connected is None and len(members) >= 2:
                    caller.connected = stamp(event)
                    agent = next((c for c in members if c in self.agent_up), None)
                    caller.agent_up = self.agent_up.get(agent) if agent else None
        elif isinstance(event, ev.ChannelDestroyed) and event.channel.id in self.callers:
            self.callers[event.channel.id].gone = True
            self.changed.set()

    async def all_gone(self, count: int, timeout: float) -> None:
        async def wait() -> None:
            while sum(c.gone for c in self.callers.values()) < count:
                self.changed.clear()
                await self.changed.wait()

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wait(), timeout)


@dataclass(slots=True)
class Result:
    name: str
    calls: int
    completed: int
    answer_ms: list[float]
    wait_ms: list[float]
    connect_ms: list[float]
    asterisk_cpu: float
    hotline_cpu: float
    seconds: float

    @property
    def lost(self) -> int:
        return self.calls - self.completed

    def cpu_per_call_ms(self, hotline: bool = True) -> float:
        total = self.asterisk_cpu + (self.hotline_cpu if hotline else 0.0)
        return 1000 * total / max(self.completed, 1)


async def place(settings: Settings, number: str, calls: int, hold: float, first: int) -> sipp.SippResult:
    return await sipp.crowd(settings, number, calls, hold=hold, rate=200, first_caller=first)


async def measure(
    name: str,
    settings: Settings,
    number: str,
    observer: Observer,
    calls: int,
    hold: float,
    pids: tuple[int, int | None],
) -> Result:
    """Warm up, then ``calls`` callers at once; Asterisk's (and our) CPU over the measured run."""
    await place(settings, number, WARM_UP, hold, first=5329000000)
    await asyncio.sleep(1.0)
    observer.reset()
    asterisk_pid, hotline_pid = pids
    before = (cpu_seconds(asterisk_pid), cpu_seconds(hotline_pid) if hotline_pid else 0.0)
    started = time.monotonic()
    crowd = await place(settings, number, calls, hold, first=5320000000)
    await observer.all_gone(calls, timeout=30)
    seconds = time.monotonic() - started
    after = (cpu_seconds(asterisk_pid), cpu_seconds(hotline_pid) if hotline_pid else 0.0)
    if not crowd.ok:
        print(f"{name}: SIPp reported failed calls: {crowd.errors.strip()[-400:]}", flush=True)
    # Reached an agent: the agent hung up on them (SIPp's count, independent of the observer).
    completed = crowd.log.count("hangup=remote")
    served = [c for c in observer.callers.values() if c.up and c.connected]
    answer = [(c.up - c.created).total_seconds() * 1000 for c in served if c.up and c.created]
    wait = [(c.connected - c.up).total_seconds() * 1000 for c in served if c.up and c.connected]
    connect = [
        (c.connected - c.agent_up).total_seconds() * 1000 for c in served if c.connected and c.agent_up
    ]
    return Result(
        name,
        calls,
        completed,
        answer,
        wait,
        connect,
        after[0] - before[0],
        after[1] - before[1],
        seconds,
    )


def _log_file(path: Path) -> BinaryIO:
    return path.open("wb")


async def start_hotline(
    config: Path, log_path: Path, profile: Path | None = None
) -> asyncio.subprocess.Process:
    """``hotline run`` as an operator starts it (under cProfile with ``profile``); returns once it is
    ready for calls."""
    python = [sys.executable, "-m", "cProfile", "-o", str(profile)] if profile else [sys.executable]
    with _log_file(log_path) as log:  # the child keeps its own descriptor
        process = await asyncio.create_subprocess_exec(
            *python, "-m", "hotline.cli", "--config", str(config), "run",
            cwd=REPO, stdout=log, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and json.loads(line).get("event") == "hotline_ready":
                return process
        if process.returncode is not None:
            break
        await asyncio.sleep(0.2)
    raise RuntimeError(f"hotline run did not become ready:\n{log_path.read_text()[-2000:]}")


async def stop_hotline(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()


def log_problems(path: Path) -> str:
    """Warnings and errors ``hotline run`` logged, by event (a slow handler, a lost socket...)."""
    found: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines() if path.exists() else ():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("level") in ("warning", "error", "critical"):
                found[f"{entry['level']} {entry.get('event')}"] += 1
    return ", ".join(f"{name} x{count}" for name, count in found.most_common()) or "none"


def row(label: str, ours: str, theirs: str) -> str:
    return f"{label:<34}{ours:>16}{theirs:>16}"


def report(ours: Result, theirs: Result) -> None:
    def ms(values: list[float], q: float) -> str:
        return f"{percentile(values, q):.1f}" if values else "-"

    print()
    print(row("", "hotline router", "app_queue"))
    print(row("calls placed", str(ours.calls), str(theirs.calls)))
    print(row("reached an agent", str(ours.completed), str(theirs.completed)))
    print(row("lost", str(ours.lost), str(theirs.lost)))
    print(row("run took (s)", f"{ours.seconds:.1f}", f"{theirs.seconds:.1f}"))
    print(row("latencies measured", str(len(ours.wait_ms)), str(len(theirs.wait_ms))))
    print(row("arrived -> answered p50 (ms)", ms(ours.answer_ms, 0.5), ms(theirs.answer_ms, 0.5)))
    print(row("arrived -> answered p99 (ms)", ms(ours.answer_ms, 0.99), ms(theirs.answer_ms, 0.99)))
    print(row("answered -> connected p50 (ms)", ms(ours.wait_ms, 0.5), ms(theirs.wait_ms, 0.5)))
    print(row("answered -> connected p99 (ms)", ms(ours.wait_ms, 0.99), ms(theirs.wait_ms, 0.99)))
    print(row("agent answered -> bridged p50 (ms)", ms(ours.connect_ms, 0.5), ms(theirs.connect_ms, 0.5)))
    print(row("agent answered -> bridged p99 (ms)", ms(ours.connect_ms, 0.99), ms(theirs.connect_ms, 0.99)))
    print(row("Asterisk CPU (s)", f"{ours.asterisk_cpu:.2f}", f"{theirs.asterisk_cpu:.2f}"))
    print(row("hotline process CPU (s)", f"{ours.hotline_cpu:.2f}", "-"))
    print(
        row(
            "Asterisk CPU per call (ms)",
            f"{ours.cpu_per_call_ms(hotline=False):.1f}",
            f"{theirs.cpu_per_call_ms(hotline=False):.1f}",
        )
    )
    print(row("total CPU per call (ms)", f"{ours.cpu_per_call_ms():.1f}", f"{theirs.cpu_per_call_ms():.1f}"))
    ratio = ours.cpu_per_call_ms() / theirs.cpu_per_call_ms() if theirs.completed else math.nan
    print()
    print(
        f"calls={ours.calls} lost={ours.lost} p99_ms={percentile(ours.wait_ms, 0.99):.1f} "
        f"app_queue_p99_ms={percentile(theirs.wait_ms, 0.99):.1f} cpu_per_call_ratio={ratio:.2f}"
    )


async def run(
    calls: int, agents: int, talk: float, wrap_up: float, hold: float, profile: Path | None
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="hotline-bench-queue-"))
    phone_port = sipp.free_port()
    settings = load_settings(bench_settings(folder, agents, phone_port, wrap_up), environ={})
    print(f"starting Asterisk in {folder} ...", flush=True)
    instance = await asyncio.to_thread(asterisk.up, settings, lambda *_: None)
    hotline: asyncio.subprocess.Process | None = None
    observer = Observer()
    watcher = AriClient(
        settings.ari.url, settings.ari.user, asterisk.ari_password(settings), "bench-observer"
    )
    try:
        await db.upgrade_async(settings.database_url)
        print(
            f"Asterisk {instance.version}; {calls} callers at once, {agents} agents, "
            f"{talk:g} s talk, {wrap_up:g} s wrap-up",
            flush=True,
        )
        async with (
            watcher,
            sipp.phone(port=phone_port, calls=10 * (calls + WARM_UP), ring_ms=1, talk_ms=int(talk * 1000),
                       timeout=3600),
        ):  # fmt: skip
            watcher.on_event(observer)
            supervisor = asyncio.create_task(watcher.run())
            await watcher.wait_connected(10)
            await watcher.applications.subscribe(["endpoint:PJSIP", "bridge:"])

            print("app_queue ...", flush=True)
            theirs = await measure(
                "app_queue", settings, APP_QUEUE_NUMBER, observer, calls, hold, (instance.pid, None)
            )
            print("hotline router ...", flush=True)
            hotline = await start_hotline(folder / "hotline.toml", folder / "hotline.log", profile)
            ours = await measure(
                "hotline", settings, HOTLINE_NUMBER, observer, calls, hold, (instance.pid, hotline.pid)
            )
            supervisor.cancel()
    finally:
        if hotline is not None:
            await stop_hotline(hotline)
        await asyncio.to_thread(asterisk.down, settings, True)
        problems = log_problems(folder / "hotline.log")
        shutil.rmtree(folder, ignore_errors=True)
    print(f"hotline log warnings and errors: {problems}")
    if profile:
        print(f"\nhotline run under cProfile (its CPU figures are inflated), stats in {profile}:")
        pstats.Stats(str(profile)).sort_stats("tottime").print_stats(25)
    report(ours, theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100, help="callers arriving together")
    parser.add_argument("--agents", type=int, default=20, help="agent phones (auto-answer)")
    parser.add_argument("--talk", type=float, default=2.0, help="seconds each agent talks")
    parser.add_argument("--wrap-up", type=float, default=1.0, help="seconds of wrap-up after each call")
    parser.add_argument("--hold", type=float, default=120.0, help="seconds a caller waits at most")
    parser.add_argument("--profile", type=Path, help="run the hotline under cProfile, stats to this file")
    args = parser.parse_args()
    configure_logging("warning", "console")
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    asyncio.run(run(args.calls, args.agents, args.talk, args.wrap_up, args.hold, args.profile))


if __name__ == "__main__":
    main()
