"""Our queue router next to Asterisk's own app_queue: the same callers and agent phones through both.

    .venv/bin/python bench/queue_vs_app_queue.py [--calls 100] [--agents 20] [--talk 2] [--wrap-up 1]
                                                 [--runs 3] [--hold 120] [--profile FILE]

Starts its own Asterisk (free loopback ports, a temporary state folder) with ``--agents`` agents
whose fixed contacts all point at one SIPp phone process that answers at once and hangs up after
``--talk`` seconds. One queue, ``bench``, is served two ways on that same Asterisk:

* **app_queue**: 1839 runs ``Answer(,i)`` and ``Queue(bench)``; queues.conf is rendered from the
  same queue settings (leastrecent for our longest_idle, the same ring timeout and wrap-up,
  ringinuse=no, the agents as static members);
* **hotline**: ``hotline run`` as a subprocess (as an operator runs it, SQLite, JSON logs at
  info level) and 1830, its direct line into ``bench`` (``Answer(,i)`` as well, then
  ``Stasis(hotline,queue,bench)`` and our router).

Each side is measured ``--runs`` times, alternating: hotline, app_queue, hotline, ... ``hotline
run`` is started for each of its runs and stopped after it, so no ARI application of ours is
listening while app_queue is measured. Every run begins with a few warm-up calls, then
``--calls`` callers dial at once from one SIPp process and stay until the agent hangs up
(``--hold`` at most). Callers and agent phones both send RTP (PCMU, 50 packets a second, from an
8 kHz mu-law WAV made with sox) for as long as they are answered, so the media cost is in
Asterisk's CPU on both sides. Caller ids differ from run to run, so no run finds callers the
previous one stored.

Everything is taken from one clock for both sides: Asterisk's, as seen by a separate ARI
application of the benchmark subscribed to every PJSIP endpoint and every bridge (it only
watches, the same way for both sides, with an event filter so Asterisk builds little for it).

* **arrival**: the caller channel's ``creationtime`` as Asterisk reports it (the INVITE has been
  taken, before any dialplan runs): the same point on both sides.
* **bridged**: the ``ChannelEnteredBridge`` that puts the caller and an agent's channel in one
  bridge. The latency is arrival -> bridged: answering, waiting for a free agent, ringing and
  connecting, all included. Agent answered -> bridged (the agent channel going Up to bridged) is
  the connect step alone, where the two designs differ most.
* **served**: only when the bridge was made by the side under test. Ours: a bridge our router
  created over ARI (bridge class ``stasis``) that the caller entered while in ``Stasis``.
  app_queue: a bridge the caller entered while in ``Queue()``. A caller who reached the dialplan
  fallback (the ``fallback`` label that rings every agent directly) is not served by the router
  even when an agent answers there: it is **lost**, as is a caller who hung up after ``--hold``.
  The table shows how many of ours reached the fallback.

CPU is user + system time of the Asterisk process and of ``hotline run``, read from
/proc/<pid>/stat after the warm-up and again after the last wrap-up has ended (the last caller or
agent channel gone, plus ``--wrap-up``, plus one second), the same wait on both sides; SIPp and
this script are not counted. Per call it is divided by the calls placed (the same on both sides),
so neither side's figure improves by losing calls.

The table shows, per side, the median over the runs and the spread (min-max). The last line is
``calls=N lost=N app_queue_lost=N p99_ms=X app_queue_p99_ms=X bridge_p99_ms=X
cpu_per_call_ratio=X``: lost counts are the most any run lost; ``p99_ms`` and
``app_queue_p99_ms`` are arrival -> bridged p99 and ``bridge_p99_ms`` our agent answered ->
bridged p99, each the median over runs; the ratio is (Asterisk + hotline CPU per call on our
side) / (Asterisk CPU per call with app_queue), from the medians.
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
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ari import AriClient  # noqa: E402
from ari import events as ev  # noqa: E402
from hotline import asterisk, db, sipp  # noqa: E402
from hotline.logging import configure_logging  # noqa: E402
from hotline.settings import Settings, load_settings  # noqa: E402
from tests.harness import sipp as phones  # noqa: E402

HOTLINE_NUMBER, APP_QUEUE_NUMBER = "1830", "1839"
WARM_UP = 5
SETTLE = 1.0  # seconds after the last wrap-up ends before CPU is read
TICKS = os.sysconf("SC_CLK_TCK")
# What the watching application needs; everything else is filtered out at Asterisk.
WATCHED_EVENTS = (
    "ChannelCreated",
    "ChannelStateChange",
    "ChannelDialplan",
    "ChannelEnteredBridge",
    "ChannelDestroyed",
)

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


# -- media: callers and agent phones that talk ------------------------------------------------


def make_voice(path: Path) -> Path:
    """Three seconds of a wavering tone as 8 kHz mu-law, for SIPp to stream as PCMU."""
    subprocess.run(
        ["sox", "-n", "-r", "8000", "-c", "1", "-e", "u-law", str(path),
         "synth", "3", "sine", "300-900", "tremolo", "4", "60", "vol", "0.5"],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


# Offered by both: PCMU (and telephone-event), on the port each call's RTP stream is sent from, so
# Asterisk's RTP goes back to that same socket.
SDP = """v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [rtpstream_audio_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=sendrecv
"""

OK_TO_LAST = """SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
"""


def talking_caller(voice: Path, hold: float) -> str:
    """SIPp UAC: dial, stream ``voice`` in a loop from answer on, wait for the far end's BYE (logs
    ``hangup=remote``) or hang up after ``hold`` seconds (``hangup=local``)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<scenario name="bench caller">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Bench Caller" <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:[field0]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{SDP}]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Bench Caller" <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:[field0]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>
  <nop><action><exec rtp_stream="{escape(str(voice))},-1,0"/></action></nop>
  <recv request="BYE" timeout="{int(hold * 1000)}" ontimeout="local_hangup"/>
  <nop><action><log message="hangup=remote"/></action></nop>
  <send><![CDATA[
{OK_TO_LAST}
]]></send>
  <nop next="done"/>
  <label id="local_hangup"/>
  <nop><action><log message="hangup=local"/></action></nop>
  <send retrans="500"><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Bench Caller" <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
  <label id="done"/>
</scenario>
"""


async def crowd(
    settings: Settings, number: str, calls: int, hold: float, first: int, voice: Path
) -> sipp.SippResult:
    """``calls`` talking callers dialling ``number`` together from one SIPp process."""
    with tempfile.TemporaryDirectory(prefix="hotline-bench-crowd-") as tmp:
        ids = Path(tmp) / "callers.csv"
        ids.write_text("SEQUENTIAL\n" + "".join(f"0{first + n};\n" for n in range(calls)))
        args = [
            f"{settings.asterisk.sip_host}:{settings.asterisk.sip_port}",
            "-s", number, "-m", str(calls), "-l", str(calls), "-r", "200",
            "-i", "127.0.0.1", "-p", str(sipp.free_port()),
            "-mi", "127.0.0.1", "-mp", str(sipp.free_port(even=True)),
            "-inf", str(ids),
        ]  # fmt: skip
        return await sipp.run_sipp(talking_caller(voice, hold), args, timeout=hold + calls / 200 + 30)


@contextlib.asynccontextmanager
async def agent_phones(port: int, talk: float, voice: Path) -> AsyncIterator[None]:
    """One SIPp process answering for every agent (their contacts all point at ``port``)."""
    args = ["-aa", "-i", "127.0.0.1", "-p", str(port), "-m", "1000000",
            "-mi", "127.0.0.1", "-mp", str(sipp.free_port(even=True))]  # fmt: skip
    # The test harness's desk phone: rings 1 ms, answers, streams ``voice`` in a loop and hangs up
    # after ``talk`` unless the caller does first (a CANCEL while ringing gets 200 and 487).
    scenario = phones.phone_scenario(ring_ms=1, talk_ms=int(talk * 1000), audio=voice)
    task = asyncio.create_task(sipp.run_sipp(scenario, args, timeout=24 * 3600))
    try:
        await asyncio.sleep(0.5)
        if task.done():
            result = task.result()
            raise RuntimeError(f"the agent phones did not start: {result.errors.strip()[-400:]}")
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, sipp.SippError):
            await task


# -- what Asterisk saw ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000


def is_caller(channel: dict[str, Any]) -> bool:
    return str(channel.get("name", "")).startswith("PJSIP/caller-")


def is_agent(channel: dict[str, Any]) -> bool:
    return str(channel.get("name", "")).startswith("PJSIP/agent-")


@dataclass(slots=True)
class Observer:
    """Keeps every event Asterisk sends the watching application (as JSON) for ``analyse``, and
    which caller and agent channels are still alive."""

    events: list[dict[str, Any]] = field(default_factory=list)
    live: set[str] = field(default_factory=set)
    last_gone: float = 0.0  # time.monotonic() of the last caller or agent channel destroyed
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        self.events.clear()

    async def __call__(self, event: ev.Event) -> None:
        raw = event.raw
        self.events.append(raw)
        channel = raw.get("channel")
        if not isinstance(channel, dict) or not (is_caller(channel) or is_agent(channel)):
            return
        if raw.get("type") == "ChannelCreated":
            self.live.add(str(channel["id"]))
        elif raw.get("type") == "ChannelDestroyed":
            self.live.discard(str(channel["id"]))
            self.last_gone = time.monotonic()
            self.changed.set()

    async def quiet(self, timeout: float) -> bool:
        """Wait until no caller or agent channel is left; False if some still are at ``timeout``."""

        async def wait() -> None:
            while self.live:
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            return False
        return True


@dataclass(slots=True)
class Run:
    side: str  # "hotline" or "app_queue"
    calls: int
    served: int
    fallback: int  # callers who reached the dialplan fallback
    hung_up_by_agent: int  # SIPp's count of calls the far end (an agent, or the fallback) ended
    sipp_failed: bool
    arrival_bridged_ms: list[float]
    answered_bridged_ms: list[float]  # agent channel Up -> bridged
    arrival_answered_ms: list[float]
    asterisk_cpu: float
    hotline_cpu: float
    seconds: float
    bridge_classes: Counter[str] = field(default_factory=Counter)

    @property
    def lost(self) -> int:
        return self.calls - self.served

    def cpu_per_call_ms(self, hotline: bool = True) -> float:
        total = self.asterisk_cpu + (self.hotline_cpu if hotline else 0.0)
        return 1000 * total / max(self.calls, 1)


def analyse(
    events: list[dict[str, Any]], numbers: set[str], side: str, fallback_exten: str
) -> dict[str, Any]:
    """Per measured caller (by caller id number): arrival, answer, and the first bridge with an
    agent made by the side under test; and whether the caller reached the dialplan fallback."""
    created: dict[str, datetime] = {}
    answered: dict[str, datetime] = {}
    agent_up: dict[str, datetime] = {}
    agents: set[str] = set()
    fell_back: set[str] = set()
    entered_in: dict[tuple[str, str], str] = {}  # (channel, bridge) -> dialplan app on entry
    joins: list[tuple[datetime, dict[str, Any]]] = []
    for raw in events:
        channel = raw.get("channel")
        if not isinstance(channel, dict):
            continue
        cid = str(channel.get("id"))
        if is_agent(channel):
            agents.add(cid)
            if raw.get("type") == "ChannelStateChange" and channel.get("state") == "Up":
                agent_up.setdefault(cid, when(raw["timestamp"]))
        elif is_caller(channel) and str(channel.get("caller", {}).get("number")) in numbers:
            if channel.get("creationtime"):
                created.setdefault(cid, when(channel["creationtime"]))
            if raw.get("type") == "ChannelStateChange" and channel.get("state") == "Up":
                answered.setdefault(cid, when(raw["timestamp"]))
            plan = channel.get("dialplan") or {}
            if plan.get("exten") == fallback_exten or plan.get("app_name") == "Dial":
                fell_back.add(cid)
        if raw.get("type") == "ChannelEnteredBridge":
            bridge = raw["bridge"]
            entered_in[(cid, str(bridge["id"]))] = str((channel.get("dialplan") or {}).get("app_name", ""))
            joins.append((when(raw["timestamp"]), bridge))
    joins.sort(key=lambda j: j[0])
    bridged: dict[str, tuple[datetime, str]] = {}  # caller -> (when, agent channel)
    classes: Counter[str] = Counter()  # how callers met agents: bridge class / caller's app
    seen: set[tuple[str, str]] = set()
    for stamp, bridge in joins:
        members = [str(c) for c in bridge.get("channels") or ()]
        agent = next((c for c in members if c in agents), None)
        if agent is None:
            continue
        for caller in (c for c in members if c in created and c not in bridged):
            app = entered_in.get((caller, str(bridge["id"])), "")
            made_by = str(bridge.get("bridge_class", ""))
            if (caller, str(bridge["id"])) not in seen:
                seen.add((caller, str(bridge["id"])))
                classes[f"{made_by}/{app}"] += 1
            ours = made_by == "stasis" and app == "Stasis"
            if (side == "hotline" and ours) or (side == "app_queue" and app == "Queue"):
                bridged[caller] = (stamp, agent)
    return {
        "served": len(bridged),
        "fallback": len(fell_back),
        "classes": classes,
        "arrival_bridged": [ms(at, created[c]) for c, (at, _) in bridged.items()],
        "answered_bridged": [ms(at, agent_up[a]) for c, (at, a) in bridged.items() if a in agent_up],
        "arrival_answered": [ms(answered[c], created[c]) for c in created if c in answered],
    }


# -- one measured run -------------------------------------------------------------------------


@dataclass(slots=True)
class Bench:
    settings: Settings
    observer: Observer
    voice: Path
    calls: int
    hold: float
    wrap_up: float
    asterisk_pid: int

    async def settle(self) -> None:
        """Wait for every channel to end and the wrap-up that follows to be over."""
        if not await self.observer.quiet(timeout=30):
            print(f"  {len(self.observer.live)} channels still up after 30 s", flush=True)
        end = self.observer.last_gone + self.wrap_up + SETTLE
        await asyncio.sleep(max(0.0, end - time.monotonic()))

    async def measure(self, side: str, number: str, run: int, hotline_pid: int | None) -> Run:
        first = 5320000000 + 10_000 * run + (5_000 if side == "app_queue" else 0)
        await crowd(self.settings, number, WARM_UP, self.hold, first + 4_000, self.voice)
        await self.settle()
        self.observer.reset()
        numbers = {f"0{first + n}" for n in range(self.calls)}
        before = (cpu_seconds(self.asterisk_pid), cpu_seconds(hotline_pid) if hotline_pid else 0.0)
        started = time.monotonic()
        result = await crowd(self.settings, number, self.calls, self.hold, first, self.voice)
        await self.settle()
        after = (cpu_seconds(self.asterisk_pid), cpu_seconds(hotline_pid) if hotline_pid else 0.0)
        if not result.ok:
            print(f"  {side}: SIPp reported failed calls: {result.errors.strip()[-400:]}", flush=True)
        seen = analyse(list(self.observer.events), numbers, side, self.settings.asterisk.extension)
        return Run(
            side=side,
            calls=self.calls,
            served=seen["served"],
            fallback=seen["fallback"],
            hung_up_by_agent=result.log.count("hangup=remote"),
            sipp_failed=not result.ok,
            arrival_bridged_ms=seen["arrival_bridged"],
            answered_bridged_ms=seen["answered_bridged"],
            arrival_answered_ms=seen["arrival_answered"],
            asterisk_cpu=after[0] - before[0],
            hotline_cpu=after[1] - before[1],
            seconds=self.observer.last_gone - started,
            bridge_classes=seen["classes"],
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


def log_problems(paths: Sequence[Path]) -> str:
    """Warnings and errors ``hotline run`` logged, by event (a slow handler, a lost socket...)."""
    found: Counter[str] = Counter()
    for path in paths:
        for line in path.read_text(errors="replace").splitlines() if path.exists() else ():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("level") in ("warning", "error", "critical"):
                    found[f"{entry['level']} {entry.get('event')}"] += 1
    return ", ".join(f"{name} x{count}" for name, count in found.most_common()) or "none"


# -- the report -------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else math.nan


def spread(values: Sequence[float], digits: int = 1) -> str:
    """Median over the runs, and (min-max) when there is more than one run."""
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return "-"
    mid = f"{statistics.median(clean):.{digits}f}"
    if len(clean) == 1:
        return mid
    return f"{mid} ({min(clean):.{digits}f}-{max(clean):.{digits}f})"


def row(label: str, ours: str, theirs: str) -> str:
    return f"{label:<36}{ours:>28}{theirs:>28}"


def report(ours: list[Run], theirs: list[Run]) -> None:
    def line(label: str, pick: Callable[[Run], float], digits: int = 1, app_queue: bool = True) -> None:
        their = spread([pick(r) for r in theirs], digits) if app_queue else "-"
        print(row(label, spread([pick(r) for r in ours], digits), their))

    def pct(values: Callable[[Run], list[float]], q: float) -> Callable[[Run], float]:
        return lambda r: percentile(values(r), q)

    def bridged(r: Run) -> list[float]:
        return r.arrival_bridged_ms

    def connect(r: Run) -> list[float]:
        return r.answered_bridged_ms

    def answer(r: Run) -> list[float]:
        return r.arrival_answered_ms

    print()
    print(f"median over {len(ours)} + {len(theirs)} runs, (min-max) across them")
    print(row("", "hotline router", "app_queue"))
    line("calls placed", lambda r: r.calls, 0)
    line("served (bridged by the side)", lambda r: r.served, 0)
    line("lost", lambda r: r.lost, 0)
    line("  of which reached the fallback", lambda r: r.fallback, 0)
    line("hung up by the far end (SIPp)", lambda r: r.hung_up_by_agent, 0)
    line("run took, to last hang-up (s)", lambda r: r.seconds)
    line("arrival -> bridged p50 (ms)", pct(bridged, 0.5))
    line("arrival -> bridged p99 (ms)", pct(bridged, 0.99))
    line("agent answered -> bridged p50 (ms)", pct(connect, 0.5))
    line("agent answered -> bridged p99 (ms)", pct(connect, 0.99))
    line("arrival -> caller answered p50 (ms)", pct(answer, 0.5))
    line("arrival -> caller answered p99 (ms)", pct(answer, 0.99))
    line("Asterisk CPU (s)", lambda r: r.asterisk_cpu, 2)
    line("hotline process CPU (s)", lambda r: r.hotline_cpu, 2, app_queue=False)
    line("Asterisk CPU per call (ms)", lambda r: r.cpu_per_call_ms(hotline=False))
    line("total CPU per call (ms)", lambda r: r.cpu_per_call_ms())
    ours_cpu = median([r.cpu_per_call_ms() for r in ours])
    their_cpu = median([r.cpu_per_call_ms(hotline=False) for r in theirs])
    ratio = ours_cpu / their_cpu if their_cpu > 0 else math.nan
    pairs = [
        o.cpu_per_call_ms() / t.cpu_per_call_ms()
        for o, t in zip(ours, theirs, strict=False)
        if t.asterisk_cpu
    ]
    print(row("CPU per call ratio, run by run", spread(pairs, 2), ""))
    print()
    print(
        f"calls={ours[0].calls} lost={max(r.lost for r in ours)} "
        f"app_queue_lost={max(r.lost for r in theirs)} "
        f"p99_ms={median([pct(bridged, 0.99)(r) for r in ours]):.1f} "
        f"app_queue_p99_ms={median([pct(bridged, 0.99)(r) for r in theirs]):.1f} "
        f"bridge_p99_ms={median([pct(connect, 0.99)(r) for r in ours]):.1f} "
        f"cpu_per_call_ratio={ratio:.2f}"
    )


def show(run: Run, number: int) -> None:
    p99 = percentile(run.arrival_bridged_ms, 0.99)
    cpu = run.cpu_per_call_ms()
    print(
        f"  {run.side} run {number}: served {run.served}/{run.calls}, fallback {run.fallback}, "
        f"arrival -> bridged p99 {p99:.0f} ms, CPU per call {cpu:.1f} ms, "
        f"bridges {dict(run.bridge_classes)}",
        flush=True,
    )


async def run(
    calls: int, agents: int, talk: float, wrap_up: float, hold: float, runs: int, profile: Path | None
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="hotline-bench-queue-"))
    phone_port = sipp.free_port()
    settings = load_settings(bench_settings(folder, agents, phone_port, wrap_up), environ={})
    voice = make_voice(folder / "voice.wav")
    print(f"starting Asterisk in {folder} ...", flush=True)
    instance = await asyncio.to_thread(asterisk.up, settings, lambda *_: None)
    hotline: asyncio.subprocess.Process | None = None
    observer = Observer()
    watcher = AriClient(
        settings.ari.url, settings.ari.user, asterisk.ari_password(settings), "bench-observer"
    )
    logs = [folder / f"hotline-{n + 1}.log" for n in range(runs)]
    profiles = [folder / f"profile-{n + 1}.out" for n in range(runs)] if profile else []
    ours: list[Run] = []
    theirs: list[Run] = []
    try:
        await db.upgrade_async(settings.database_url)
        print(
            f"Asterisk {instance.version}; {calls} callers at once, {agents} agents, "
            f"{talk:g} s talk, {wrap_up:g} s wrap-up, {runs} runs a side, callers and agents send RTP",
            flush=True,
        )
        async with watcher, agent_phones(phone_port, talk, voice):
            watcher.on_event(observer)
            supervisor = asyncio.create_task(watcher.run())
            await watcher.wait_connected(10)
            await watcher.applications.subscribe(["endpoint:PJSIP", "bridge:"])
            await watcher.applications.event_filter(allowed=WATCHED_EVENTS)
            bench = Bench(settings, observer, voice, calls, hold, wrap_up, instance.pid)
            for n in range(runs):
                print(f"hotline router, run {n + 1} of {runs} ...", flush=True)
                hotline = await start_hotline(
                    folder / "hotline.toml", logs[n], profiles[n] if profile else None
                )
                ours.append(await bench.measure("hotline", HOTLINE_NUMBER, n, hotline.pid))
                await stop_hotline(hotline)
                hotline = None
                show(ours[-1], n + 1)
                print(f"app_queue, run {n + 1} of {runs} ...", flush=True)
                theirs.append(await bench.measure("app_queue", APP_QUEUE_NUMBER, n, None))
                show(theirs[-1], n + 1)
            supervisor.cancel()
    finally:
        if hotline is not None:
            await stop_hotline(hotline)
        await asyncio.to_thread(asterisk.down, settings, True)
        problems = log_problems(logs)
        if profile and profiles and all(p.exists() for p in profiles):
            pstats.Stats(*(str(p) for p in profiles)).dump_stats(str(profile))
        shutil.rmtree(folder, ignore_errors=True)
    print(f"hotline log warnings and errors: {problems}")
    if profile:
        print(f"\nhotline run under cProfile (its CPU figures are inflated), every run's stats in {profile}:")
        pstats.Stats(str(profile)).sort_stats("tottime").print_stats(25)
    report(ours, theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100, help="callers arriving together")
    parser.add_argument("--agents", type=int, default=20, help="agent phones (auto-answer)")
    parser.add_argument("--talk", type=float, default=2.0, help="seconds each agent talks")
    parser.add_argument("--wrap-up", type=float, default=1.0, help="seconds of wrap-up after each call")
    parser.add_argument("--hold", type=float, default=120.0, help="seconds a caller waits at most")
    parser.add_argument("--runs", type=int, default=3, help="measured runs of each side, alternating")
    parser.add_argument("--profile", type=Path, help="run the hotline under cProfile, stats to this file")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    configure_logging("warning", "console")
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    asyncio.run(run(args.calls, args.agents, args.talk, args.wrap_up, args.hold, args.runs, args.profile))


if __name__ == "__main__":
    main()
