"""How fast an urgent call is paged: from the urgency signal to the page leaving and the desk ringing.

    .venv/bin/python bench/escalation_latency.py [--incidents 100] [--concurrency 5] [--no-burst]

Starts its own Asterisk (free loopback ports, a temporary state folder) and the hotline in this
process with paging on and a bench ``escalation.toml``: one target, ``desk``, paged on two
channels at once, a voice call to a SIPp desk phone at a fixed contact and a signed webhook to a
receiver of this benchmark; one catch-all policy with one level (acknowledgement timeout 600 s,
so no incident moves on while it is measured). No agent is at work and speech is off.

Three phases, ``--incidents`` incidents each, every incident on a call of its own (a ``call``
row opened through the call log, as StasisStart does):

* **key**, ``--concurrency`` at a time: the signal is ``CallLog.mark_urgent(call, "key")``, the
  call the IVR makes when a caller presses the emergency key (no SIPp caller: the key's own SIP
  and RTP transit and the IVR's reaction are measured by bench/ivr_latency.py);
* **keyword**, ``--concurrency`` at a time: the signal is ``Paging.heard`` given the caller's
  final transcript line "My husband has a knife and he is threatening to kill me", as the
  speech pipeline hands it over (recognition time is not in it: see bench/transcribe_capacity.py);
* **burst** (unless ``--no-burst``): ``--incidents`` key signals at once.

Per incident, from the moment the signal call is made (this process's monotonic clock):

* **dispatch**: the webhook request reaching the receiver. The receiver runs its own event loop
  in a thread of its own, so the time it takes is not held back by the hotline's loop once the
  request has left; it checks the signature with ``escalation.webhook.verify``, counts a second
  delivery of one ``Idempotency-Key`` as a duplicate, and answers 200 (401 to a bad signature).
* **ring**: the desk leg ringing, i.e. the ARI ``Dial`` event with dialstatus RINGING (or
  PROGRESS or ANSWER when no RINGING came first) for the page's channel
  (``hotline-page-<page id>-<try>``), taken at Asterisk's own event timestamp against the wall
  clock of the signal (one machine, one clock). The time the event reached the hotline is shown
  too. The desk phone sends 180 Ringing at once, answers after 200 ms and presses 1, which
  acknowledges the incident.

An incident whose webhook or ring has not arrived 30 s (``--timeout``) after its signal is
**lost**, as is one whose signal raised. Percentiles (nearest rank) are over every incident of a
phase that has the figure, late ones included. Cleans up after itself. The last line is
``incidents=N lost=N duplicates=N dispatch_p99_ms=X ring_p99_ms=X keyword_to_page_p99_ms=X``:
incidents, lost and duplicates over every phase; dispatch and ring p99 of the key phase (the
steady load); keyword_to_page p99 is the keyword phase's signal -> webhook arrival. A benchmark:
it prints figures and never fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ari import events as ev  # noqa: E402
from escalation import store as incidents  # noqa: E402
from escalation.voice import PREFIX  # noqa: E402
from escalation.webhook import SIGNATURE_HEADER, verify  # noqa: E402
from hotline import asterisk, db, sipp  # noqa: E402
from hotline.app import App, create_app  # noqa: E402
from hotline.logging import configure_logging  # noqa: E402
from hotline.settings import Settings, load_settings  # noqa: E402
from tests.harness.sipp import phone  # noqa: E402
from transcripts.bus import TranscriptNotice  # noqa: E402
from transcripts.models import Speaker  # noqa: E402

RINGING = ("RINGING", "PROGRESS", "ANSWER")  # the first of these on a desk leg is its ring
SENTENCE = "My husband has a knife and he is threatening to kill me"
SECRET = "bench-webhook-secret-0123456789abcdef"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def bench_settings(folder: Path, desk_port: int, hook_port: int) -> Settings:
    secret = folder / "webhook.secret"
    secret.write_text(SECRET, encoding="utf-8")
    paging = folder / "escalation.toml"
    paging.write_text(
        f"""
[targets.desk]
label = {{ tr = "Bench masası", en = "Bench desk" }}
language = "en"
voice = {{ contact = "sip:desk@127.0.0.1:{desk_port}" }}
webhook = {{ url = "http://127.0.0.1:{hook_port}/pages", secret_file = "{secret}" }}
[voice]
ring_timeout = 20
plays = 1
[[policies]]
id = "bench"
categories = ["*"]
levels = [{{ targets = ["desk"], ack_timeout = 600 }}]
""",
        encoding="utf-8",
    )
    rtp = 36000
    config = folder / "hotline.toml"
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
rtp_timeout = 0
[escalation]
enabled = true
file = "{paging}"
keywords = "{REPO / "config" / "keywords.toml"}"
[speech]
enabled = false
[ivr]
menus = "{REPO / "config" / "ivr.toml"}"
[queues]
file = "{REPO / "config" / "queues.toml"}"
[tickets]
file = "{REPO / "config" / "tickets.toml"}"
[prompts]
recordings = "{REPO / "config" / "prompts"}"
[logging]
level = "warning"
""",
        encoding="utf-8",
    )
    return load_settings(config, environ={})


# -- the webhook receiver, on its own loop in its own thread ----------------------------------


@dataclass
class Receiver:
    """Takes the pages; ``arrived(call_id, monotonic)`` is called on the bench loop for each
    incident's first good delivery."""

    port: int
    arrived: Callable[[str, float], None]
    loop: asyncio.AbstractEventLoop
    keys: Counter[str] = field(default_factory=Counter)
    bad_signatures: int = 0
    _thread: threading.Thread | None = None
    _stop: asyncio.Event | None = None
    _own_loop: asyncio.AbstractEventLoop | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    @property
    def duplicates(self) -> int:
        return sum(count - 1 for count in self.keys.values())

    async def _page(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        body = await request.read()
        if not verify(body, request.headers.get(SIGNATURE_HEADER, ""), SECRET.encode(), int(time.time())):
            self.bad_signatures += 1
            return web.Response(status=401)
        key = request.headers.get("Idempotency-Key", "")
        self.keys[key] += 1
        if self.keys[key] == 1:
            document = (await request.json()).get("incident") or {}
            call_id = str(document.get("call_id") or "")
            self.loop.call_soon_threadsafe(self.arrived, call_id, at)
        return web.Response(status=200)

    async def _serve(self) -> None:
        self._own_loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        webapp = web.Application()
        webapp.router.add_post("/pages", self._page)
        runner = web.AppRunner(webapp, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def start(self) -> None:
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the webhook receiver did not start")

    def stop(self) -> None:
        if self._own_loop is not None and self._stop is not None:
            self._own_loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)


# -- one incident's figures --------------------------------------------------------------------


@dataclass
class Sample:
    call_id: str
    started: float = 0.0  # monotonic, when the signal call was made
    started_wall: float = 0.0  # time.time() at the same moment (for Asterisk's timestamps)
    dispatch_ms: float | None = None
    ring_ms: float | None = None  # Asterisk's timestamp of the ring
    ring_seen_ms: float | None = None  # when the ring event reached the hotline
    failed: str = ""  # the signal itself raised
    limit_ms: float = math.inf  # later than this is lost
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def check(self) -> None:
        if self.dispatch_ms is not None and self.ring_ms is not None:
            self.done.set()

    @property
    def why_lost(self) -> str:
        if self.failed:
            return self.failed
        missing = [what for what, ms in (("webhook", self.dispatch_ms), ("ring", self.ring_ms)) if ms is None]
        if missing:
            return "no " + " and no ".join(missing)
        if max(self.dispatch_ms or 0.0, self.ring_ms or 0.0) > self.limit_ms:
            return "late"
        return ""

    @property
    def lost(self) -> bool:
        return bool(self.why_lost)


@dataclass
class Phase:
    name: str
    samples: list[Sample]
    seconds: float = 0.0

    def values(self, pick: Callable[[Sample], float | None]) -> list[float]:
        # Every sample that has the value, late ones included: a late page is lost and slow.
        return [v for s in self.samples if (v := pick(s)) is not None]

    @property
    def lost(self) -> int:
        return sum(s.lost for s in self.samples)


class Watch:
    """Ties webhook arrivals and ring events to the incident's call (its sample).

    A ring event names the page's channel only. Which call the page is for comes from the
    incident notices the hotline publishes to supervisors (a ``page`` notice once a try ends,
    with the page, incident and call ids): no database read of the bench's own competes with
    the hotline while it is measured. Rings still unmatched when a phase ends (a notice dropped
    by a full stream) are matched from the store then.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.by_call: dict[str, Sample] = {}
        self.page_call: dict[str, str] = {}  # page id -> call id, from the notices
        self.rings: dict[str, tuple[float, float]] = {}  # page id -> (Asterisk stamp, seen), unmatched
        self.rang: set[str] = set()  # page ids already rung
        self.unknown_calls = 0
        self.dropped = 0

    def arrived(self, call_id: str, at: float) -> None:
        sample = self.by_call.get(call_id)
        if sample is None:
            self.unknown_calls += 1
            return
        if sample.dispatch_ms is None:
            sample.dispatch_ms = (at - sample.started) * 1000
            sample.check()

    async def on_event(self, event: ev.Event) -> None:
        if not isinstance(event, ev.Dial) or not event.peer.id.startswith(PREFIX):
            return
        if event.dialstatus not in RINGING:
            return
        page_id = event.peer.id.removeprefix(PREFIX).rsplit("-", 1)[0]
        if page_id in self.rang:
            return
        self.rang.add(page_id)
        self.rings[page_id] = (datetime.fromisoformat(event.timestamp).timestamp(), time.monotonic())
        self._match(page_id)

    async def follow(self) -> None:
        """Read the incident notices for as long as the bench runs."""
        async with self.app.queues.notices.subscribe() as stream:
            while (notice := await stream.get()) is not None:
                self.dropped = stream.dropped
                if notice.get("type") == "incident" and notice.get("channel") == "voice":
                    self.page_call[str(notice["page"])] = str(notice.get("call_id") or "")
                    self._match(str(notice["page"]))

    async def match_rest(self) -> None:
        """Match the rings no notice named (after a phase: the hotline is idle then)."""
        for page_id in [p for p in self.rings if p not in self.page_call]:
            for page in await incidents.pages_by_id(self.app.store, [page_id]):
                incident = await incidents.get_incident(self.app.store, page.incident_id)
                self.page_call[page_id] = incident.call_id or ""
            self._match(page_id)

    @property
    def legs(self) -> int:
        return len(self.rang)

    def _match(self, page_id: str) -> None:
        if page_id not in self.rings or page_id not in self.page_call:
            return
        stamp, seen = self.rings.pop(page_id)
        sample = self.by_call.get(self.page_call[page_id])
        if sample is None:
            self.unknown_calls += 1
            return
        if sample.ring_ms is None:
            sample.ring_ms = (stamp - sample.started_wall) * 1000
            sample.ring_seen_ms = (seen - sample.started) * 1000
            sample.check()


async def open_calls(app: App, phase: str, count: int, first_number: int) -> list[Sample]:
    samples = []
    for n in range(count):
        call, _ = await app.calls.open(
            f"bench-{phase}-{n}", answered=True, caller_number=f"0{first_number + n}", caller_name="Bench"
        )
        samples.append(Sample(call.id))
    return samples


def key_signal(app: App) -> Callable[[Sample], Awaitable[None]]:
    async def signal(sample: Sample) -> None:
        await app.calls.mark_urgent(sample.call_id, "key")

    return signal


def keyword_signal(app: App) -> Callable[[Sample], Awaitable[None]]:
    assert app.paging is not None
    paging = app.paging

    async def signal(sample: Sample) -> None:
        now = datetime.now(UTC)
        paging.heard(
            TranscriptNotice(
                call_id=sample.call_id,
                speaker=Speaker.caller,
                agent_id="",
                final=True,
                text=SENTENCE,
                start=now,
                end=now,
                language="en",
                engine="bench",
            )
        )

    return signal


async def run_phase(
    watch: Watch,
    name: str,
    samples: list[Sample],
    signal: Callable[[Sample], Awaitable[None]],
    concurrency: int,
    timeout: float,
) -> Phase:
    gate = asyncio.Semaphore(concurrency)

    async def one(sample: Sample) -> None:
        async with gate:
            sample.started, sample.started_wall = time.monotonic(), time.time()
            try:
                await signal(sample)
            except Exception as exc:  # a signal that raised is a lost incident
                sample.failed = f"{exc.__class__.__name__}: {exc}"
                return
            left = timeout - (time.monotonic() - sample.started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sample.done.wait(), max(0.0, left))

    for sample in samples:
        watch.by_call[sample.call_id] = sample
        sample.limit_ms = timeout * 1000
    started = time.monotonic()
    await asyncio.gather(*(one(s) for s in samples))
    seconds = time.monotonic() - started
    await watch.match_rest()
    return Phase(name, samples, seconds)


# -- the report ---------------------------------------------------------------------------------


def figures(values: list[float]) -> str:
    if not values:
        return f"{'-':>9}{'-':>9}{'-':>9}"
    return f"{percentile(values, 0.5):>9.1f}{percentile(values, 0.99):>9.1f}{max(values):>9.1f}"


def report(phases: list[Phase], receiver: Receiver, watch: Watch, signal_note: str) -> None:
    print()
    print(signal_note)
    print(f"{'phase / measure (ms)':<44}{'p50':>9}{'p99':>9}{'max':>9}")
    for phase in phases:
        print(
            f"{phase.name}: {len(phase.samples)} incidents in {phase.seconds:.1f} s, "
            f"{len(phase.samples) - phase.lost} measured, {phase.lost} lost"
        )
        print(f"  {'signal -> webhook at the receiver':<42}{figures(phase.values(lambda s: s.dispatch_ms))}")
        print(
            f"  {'signal -> desk ringing (Asterisk clock)':<42}{figures(phase.values(lambda s: s.ring_ms))}"
        )
        print(
            f"  {'signal -> ring event reaches the hotline':<42}"
            f"{figures(phase.values(lambda s: s.ring_seen_ms))}"
        )
        reasons = Counter(s.why_lost for s in phase.samples if s.lost)
        if reasons:
            print(f"  lost: {dict(reasons)}")
    print(
        f"webhook deliveries {sum(receiver.keys.values())} ({len(receiver.keys)} keys), "
        f"duplicates {receiver.duplicates}, bad signatures {receiver.bad_signatures}; "
        f"desk legs that rang {watch.legs}; arrivals for unknown calls {watch.unknown_calls}; "
        f"incident notices dropped {watch.dropped}"
    )


async def settle(app: App, seconds: float) -> dict[str, int]:
    """Let the last desk calls end; then how the pages ended, by channel and state."""
    await asyncio.sleep(seconds)
    states: Counter[str] = Counter()
    for incident in await incidents.open_incidents(app.store):
        for page in await incidents.pages_of(app.store, incident.id):
            states[f"{page.channel}:{page.state}"] += 1
    return dict(states)


async def run(incidents_per_phase: int, concurrency: int, burst: bool, timeout: float) -> None:
    folder = Path(tempfile.mkdtemp(prefix="hotline-bench-escalation-"))
    desk_port, hook_port = sipp.free_port(), sipp.free_port(kind=1)
    settings = bench_settings(folder, desk_port, hook_port)
    print(f"starting Asterisk in {folder} ...", flush=True)
    instance = await asyncio.to_thread(asterisk.up, settings, lambda *_: None)
    app: App | None = None
    receiver: Receiver | None = None
    follower: asyncio.Task[None] | None = None
    phases: list[Phase] = []
    try:
        await db.upgrade_async(settings.database_url)
        app = create_app(settings)
        assert app.paging is not None, "paging is off in the bench settings"
        watch = Watch(app)
        receiver = Receiver(hook_port, watch.arrived, asyncio.get_running_loop())
        receiver.start()
        app.ari.on_event(watch.on_event)
        await app.start(serve_web=False)
        follower = asyncio.create_task(watch.follow())
        plan = [("key", concurrency), ("keyword", concurrency)] + ([("burst", 0)] if burst else [])
        legs = incidents_per_phase * len(plan)
        print(
            f"Asterisk {instance.version}; {incidents_per_phase} incidents a phase, "
            f"phases {', '.join(name for name, _ in plan)}; concurrency {concurrency}",
            flush=True,
        )
        # 180 at once, answer after 200 ms, press 1 (accept) 200 ms later; room for pages tried again.
        async with phone(
            desk_port, calls=legs * 3, ring_ms=200, keys="1", keys_after_ms=200, talk_ms=300, timeout=3600
        ) as desk:
            for n, (name, width) in enumerate(plan):
                samples = await open_calls(app, name, incidents_per_phase, 5320000000 + 10_000 * n)
                signal = keyword_signal(app) if name == "keyword" else key_signal(app)
                print(f"phase {name} ...", flush=True)
                phases.append(await run_phase(watch, name, samples, signal, width or len(samples), timeout))
                await asyncio.sleep(3)  # the desk calls of this phase end before the next starts
            states = await settle(app, 2)
            if desk.task.done():
                print(f"the desk phone stopped early: {desk.task.result().errors.strip()[-300:]}")
        print(f"pages by channel and state: {states or 'none'}")
        report(
            phases,
            receiver,
            watch,
            "key signal: CallLog.mark_urgent(call, 'key'), as the IVR records the emergency key; "
            "keyword signal: Paging.heard(final caller line)",
        )
    finally:
        if follower is not None:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        if app is not None:
            await app.close()
        if receiver is not None:
            receiver.stop()
        await asyncio.to_thread(asterisk.down, settings, True)
        shutil.rmtree(folder, ignore_errors=True)
    by_name = {p.name: p for p in phases}
    key, keyword = by_name.get("key"), by_name.get("keyword")
    dispatch = percentile(key.values(lambda s: s.dispatch_ms), 0.99) if key else math.nan
    ring = percentile(key.values(lambda s: s.ring_ms), 0.99) if key else math.nan
    spoken = percentile(keyword.values(lambda s: s.dispatch_ms), 0.99) if keyword else math.nan
    print(
        f"incidents={sum(len(p.samples) for p in phases)} lost={sum(p.lost for p in phases)} "
        f"duplicates={receiver.duplicates if receiver else 0} dispatch_p99_ms={dispatch:.1f} "
        f"ring_p99_ms={ring:.1f} keyword_to_page_p99_ms={spoken:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=100, help="incidents in each phase")
    parser.add_argument("--concurrency", type=int, default=5, help="incidents at a time (key, keyword)")
    parser.add_argument("--no-burst", action="store_true", help="skip the all-at-once phase")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before an incident is lost")
    args = parser.parse_args()
    os.chdir(REPO)
    configure_logging("error", "console")  # warnings: one line per signal
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    asyncio.run(run(args.incidents, args.concurrency, not args.no_burst, args.timeout))


if __name__ == "__main__":
    main()
