"""Ticket lists and full-text search at scale, on PostgreSQL.

    .venv/bin/python bench/tickets.py [--tickets 1000000] [--queries 200] [--runs 3] [--keep]
                                      [--url postgresql://postgres@127.0.0.1:5432/postgres]

Builds ``--tickets`` tickets in a throw-away database (``hotline_bench_tickets`` on the server
of ``--url``) migrated to head by the project's own migrations, so the list indexes, the search
column, its GIN index and its triggers are the real ones: every row is loaded with COPY (two
connections at once) and the search document is computed by the trigger as for any insert.
``--keep`` keeps the database afterwards and reuses it when it already holds at least that many
tickets (the build is most of the time of a run).

The tickets are made to look like a few years of a hotline: created evenly over three years
before "now" (2026-12-01 12:00 UTC), numbered per year, statuses by age (the last weeks still
in work, older ones closed, a few forgotten and overdue), 30-day deadlines, 20 categories and
16 units with skewed weights, 150 agents who take most calls and are assigned most tickets,
400,000 caller numbers of which some call often, Turkish names, and notes and replies drawn
from about 1,100 Turkish word forms (160 stems with case endings) with Zipf-like frequencies,
so that a common word is in a tenth of the tickets and a rare one in a few hundred.

Then, ``--runs`` times, it measures through the application's own functions (``tickets.queries
.list_tickets`` and ``tickets.search.search``, SQLAlchemy and asyncpg included, one query at a
time): ``--queries`` lists of each typical filter combination and ``--queries`` searches of each
kind, with fresh random parameters in every run, and 200 ticket creations and comments through
``tickets.store`` (the triggers' cost on a write). The table shows, per kind, the medians over
runs of p50 and p99, and what the plan of one of its queries reads (indexes, from EXPLAIN). A
kind whose p99 passes 100 ms also gets the EXPLAIN ANALYZE of its slowest query. The last line is
``tickets=N list_p99_ms=X search_p99_ms=X``: p99 over every list (every search) of a run, median
over runs. A benchmark: it prints figures and never fails on time.

Figures, 2026-12-01, 2 vCPU, PostgreSQL 15 (shared_buffers 128MB, jit on), 1,000,200 tickets
(1.96 GB with indexes; built with ``--keep`` in about 3 minutes: COPY at 8,000 tickets/s with the
search trigger live, then 20 indexes), one run of 100 queries per kind:

    .venv/bin/python bench/tickets.py --keep --runs 1 --queries 100

    lists (13 kinds: open, one status, unit + open, category, urgent + open, overdue,
    overdue + unit, agent's own (+ open), assigned + status, week + category, caller number,
    page 5): p50 1.6-4.4 ms, p99 2.8-15.1 ms; every one reads an index newest first (the
    composite indexes of 0010, the overdue partial index, the union of the agent's two
    indexes), except assigned + status (a BitmapAnd, 15 ms p99).
    search: common word 12.6, any word 85.3, prefix 61.4, ticket number 14.7, phone 39.5,
    common word in the last month 13.0 ms p99; but two words 284, caller name 212,
    word + unit + open 239, word within an agent's own 263 ms p99.
    create 15.9 ms and comment 6.5 ms p99 through tickets.store (triggers included).
    tickets=1000200 list_p99_ms=13.9 search_p99_ms=247.3

The list aim (100 ms) is met; the search aim is missed. EXPLAIN ANALYZE of the slow ones shows
the cause: each slice of time is a BitmapAnd of the GIN index with the created_at (or filter)
index, and when one of the words is common or a prefix of a common stem ('es' & 'kadinsini:*',
'kavgasi:*' matching 166,000 tickets) the GIN scan alone costs ~70 ms and is repeated in each of
the five slices. Fixes, not made yet: run the slices as one statement (a UNION ALL under a
LIMIT, so the GIN bitmap is built once), or let the planner filter by @@ over the filter's own
index when a filter (agent, unit) is selective; leave out words present in over a tenth of the
tickets from the GIN condition (check them as a filter); and match the last word as a prefix only
when it is not already a whole word. With asyncpg's prepared statements the first run (811 ms
p99) also showed generic plans; search now forces custom plans (SET LOCAL plan_cache_mode).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import asyncpg  # type: ignore[import-untyped]  # noqa: E402

from hotline import db  # noqa: E402
from hotline.auth import Principal, Role  # noqa: E402
from tickets import search as ticket_search  # noqa: E402
from tickets import store as ticket_store  # noqa: E402
from tickets.models import Source, Status, ticket_number  # noqa: E402
from tickets.queries import TicketFilter, list_statement, list_tickets  # noqa: E402
from tickets.search import candidate_statement, search, slices, words  # noqa: E402
from tickets.service import Comment, NewTicket  # noqa: E402

DATABASE = "hotline_bench_tickets"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SPAN = timedelta(days=3 * 365)
AIM_MS = 100.0
CHUNK = 10_000
LOADERS = 2
OPEN = {Status.new, Status.assigned, Status.in_progress, Status.reopened, Status.answered}

STEMS = """
yardım destek başvuru şikâyet talep aile çocuk kadın yaşlı engelli bakım ev kira fatura elektrik
su doğalgaz kömür yakacak gıda erzak kumanya para maaş emekli aylık ödeme borç kredi banka
kart okul öğrenci burs yurt öğretmen sınıf kitap servis hastane doktor ilaç tedavi ameliyat
rapor sağlık sigorta muayene randevu ambulans psikolog terapi iş işçi işveren işsiz istihdam
kurs meslek belediye muhtar valilik kaymakamlık müdürlük kurum memur görevli ekip ziyaret
komşu kardeş anne baba oğul kız eş torun akraba dede nine şiddet tehdit darp kavga istismar
ihmal taciz koruma sığınma güvenlik polis jandarma karakol savcılık mahkeme avukat dava
karar nafaka velayet boşanma evlilik hamile bebek mama bez süt aşı kreş bakıcı bakımevi
huzurevi tekerlekli sandalye işitme görme zihinsel bağımlılık alkol madde
kumar sokak barınak çadır deprem sel yangın afet hasar konteyner enkaz göç mülteci
kimlik nüfus adres telefon hat internet bilgi belge dilekçe form imza onay red itiraz gecikme
bekleme cevap sonuç takip arama dönüş acil hızlı yavaş eksik yanlış hatalı mağdur
""".split()
SUFFIXES = ["", "ler", "leri", "de", "den", "e", "i", "in", "ine", "iyle", "si", "sini"]
FIRST = """Ayşe Fatma Emine Hatice Zeynep Elif Meryem Şerife Zehra Sultan Hanife Merve Özlem Yasemin
Gülsüm Hülya Büşra Esra İrem Çiğdem Mehmet Mustafa Ahmet Ali Hüseyin Hasan İbrahim İsmail
Osman Yusuf Murat Ömer Ramazan Halil Süleyman Abdullah Mahmut Recep Salih Kemal Şükrü Ümit
Doğan Gökhan Özgür Çağrı Barış Uğur İlker Tuğba""".split()
LAST = """Yılmaz Kaya Demir Şahin Çelik Yıldız Yıldırım Öztürk Aydın Özdemir Arslan Doğan Kılıç
Aslan Çetin Kara Koç Kurt Özkan Şimşek Polat Özcan Korkmaz Çakır Erdoğan Yavuz Can Acar
Şen Aktaş Güler Yalçın Güneş Bozkurt Bulut Keskin Ünal Turan Gül Özer Işık Kaplan Avcı
Sarı Tekin Taş Köse Yüksel Ateş Aksoy""".split()
CATEGORIES = """sosyal-yardım engelli-hakları yaşlı-bakımı çocuk-koruma kadın-destek aile-içi-şiddet
aile-danışmanlığı istihdam eğitim-desteği sağlık barınma gıda-yardımı psikososyal-destek
şehit-yakını gazi-hakları bilgi-talebi şikâyet öneri teşekkür diğer""".split()
UNITS = """ASHB-Ankara ASHB-İstanbul ASHB-İzmir ASHB-Bursa ASHB-Antalya ASHB-Konya ASHB-Adana
ASHB-Şanlıurfa ASHB-Gaziantep ASHB-Diyarbakır ASHB-Kocaeli ASHB-Mersin SHM-Çankaya
SHM-Üsküdar ŞÖNİM-Ankara ÇOGEM-İstanbul""".split()
AGENTS = [(f"a{n:03d}", f"agent{n:03d}") for n in range(150)]
CALLERS = 400_000
SOURCES = (
    [Source.call] * 40 + [Source.voicemail] * 5 + [Source.abandoned_urgent, Source.walk_in, Source.email] * 2
)
COLUMNS = [
    "id", "number", "year", "seq", "version", "call_id", "source", "caller_number", "caller_name",
    "language", "ivr_path", "category", "unit", "urgent", "priority", "status", "due_at",
    "created_at", "updated_at", "created_by", "assigned_agent", "notes", "reply", "reply_at",
    "citizen_told", "citizen_told_at", "related_to",
]  # fmt: skip


def zipf(items: list[str], exponent: float, rng: random.Random) -> tuple[list[str], list[float]]:
    """``items`` in a random order with cumulative Zipf weights (for random.choices)."""
    shuffled = items[:]
    rng.shuffle(shuffled)
    total, cumulative = 0.0, []
    for rank in range(len(shuffled)):
        total += 1.0 / (rank + 1) ** exponent
        cumulative.append(total)
    return shuffled, cumulative


@dataclass
class World:
    rng: random.Random
    forms: list[str] = field(default_factory=list)
    form_weights: list[float] = field(default_factory=list)
    categories: tuple[list[str], list[float]] = ([], [])
    units: tuple[list[str], list[float]] = ([], [])
    callers: list[str] = field(default_factory=list)
    caller_weights: list[float] = field(default_factory=list)
    seqs: dict[int, int] = field(default_factory=dict)  # year -> last seq

    @classmethod
    def make(cls, seed: int = 183) -> World:
        rng = random.Random(seed)
        world = cls(rng)
        forms = sorted({stem + suffix for stem in STEMS for suffix in SUFFIXES})
        world.forms, world.form_weights = zipf(forms, 1.0, rng)
        world.categories = zipf(CATEGORIES, 0.8, rng)
        world.units = zipf(UNITS, 0.7, rng)
        world.callers = [f"05{rng.randrange(10**9):09d}" for _ in range(CALLERS)]
        world.callers, world.caller_weights = zipf(world.callers, 0.6, rng)
        return world

    def text(self, low: int, high: int) -> str:
        words = self.rng.choices(self.forms, cum_weights=self.form_weights, k=self.rng.randint(low, high))
        return " ".join(words).capitalize() + "."

    def word(self) -> str:
        return self.rng.choices(self.forms, cum_weights=self.form_weights)[0]

    def caller(self) -> str:
        return self.rng.choices(self.callers, cum_weights=self.caller_weights)[0]

    def name(self) -> str:
        return f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"

    def status(self, age: timedelta) -> Status:
        r = self.rng.random()
        if age < timedelta(days=7):
            table = [(0.3, Status.new), (0.55, Status.assigned), (0.85, Status.in_progress)]
            return next((s for p, s in table if r < p), Status.answered)
        if age < timedelta(days=60):
            table = [
                (0.03, Status.new),
                (0.08, Status.assigned),
                (0.28, Status.in_progress),
                (0.3, Status.reopened),
            ]
            return next((s for p, s in table if r < p), Status.answered if r < 0.6 else Status.closed)
        table = [
            (0.005, Status.new),
            (0.01, Status.assigned),
            (0.025, Status.in_progress),
            (0.03, Status.reopened),
        ]
        return next((s for p, s in table if r < p), Status.answered if r < 0.07 else Status.closed)

    def row(self, index: int, count: int) -> tuple[Any, ...]:
        rng = self.rng
        created = NOW - SPAN + SPAN * ((index + rng.random()) / count)
        year = created.year
        seq = self.seqs[year] = self.seqs.get(year, 0) + 1
        status = self.status(NOW - created)
        source = rng.choice(SOURCES)
        agent_id, username = rng.choice(AGENTS)
        by = "system" if source in (Source.voicemail, Source.abandoned_urgent) else username
        assigned = None
        if status != Status.new:
            assigned = agent_id if by == username and rng.random() < 0.6 else rng.choice(AGENTS)[0]
        urgent = source == Source.abandoned_urgent or rng.random() < 0.03
        answered = status in (Status.answered, Status.closed)
        reply_at = created + timedelta(days=rng.randint(1, 25)) if answered else None
        closed = status == Status.closed
        return (
            uuid.UUID(int=rng.getrandbits(128), version=4).hex,
            ticket_number(year, seq),
            year,
            seq,
            1,
            None,  # no call rows are made: the call's own table is not what is measured
            source.value,
            self.caller(),
            self.name() if rng.random() < 0.8 else "",
            "tr",
            "[]",
            rng.choices(self.categories[0], cum_weights=self.categories[1])[0],
            rng.choices(self.units[0], cum_weights=self.units[1])[0],
            urgent,
            "urgent" if urgent else "normal",
            status.value,
            created + timedelta(days=30) if rng.random() < 0.95 else None,
            created,
            reply_at or created,
            by,
            assigned,
            self.text(12, 40),
            self.text(8, 20) if answered else None,
            reply_at,
            "phone" if closed else None,
            reply_at if closed else None,
            None,
        )


# ---------------------------------------------------------------- building


async def connect(url: str) -> Any:
    return await asyncpg.connect(url.replace("postgresql://", "postgres://", 1))


async def existing(admin_url: str, url: str) -> int:
    """How many tickets the bench database holds at head (0: rebuild it)."""
    admin = await connect(admin_url)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            return 0
    finally:
        await admin.close()
    store = db.Store(url)
    try:
        await store.check_schema()
    except db.DatabaseError:
        return 0
    finally:
        await store.close()
    conn = await connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM ticket"))
    finally:
        await conn.close()


async def build(admin_url: str, url: str, count: int, world: World) -> tuple[float, int, float]:
    """A fresh database with ``count`` tickets: the load rate in tickets per second, and how many
    indexes were then built in how many seconds."""
    admin = await connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    await db.upgrade_async(url)
    conn = await connect(url)
    try:  # the secondary indexes are built after the load, from their own definitions
        indexes = await conn.fetch(
            "SELECT i.relname AS name, pg_get_indexdef(i.oid) AS definition FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = 'ticket'::regclass"
            " AND NOT x.indisprimary"
        )
        for index in indexes:
            await conn.execute(f'DROP INDEX "{index["name"]}"')
    finally:
        await conn.close()
    chunks: asyncio.Queue[list[tuple[Any, ...]] | None] = asyncio.Queue(maxsize=LOADERS)

    async def load() -> None:
        conn = await connect(url)
        try:
            while (rows := await chunks.get()) is not None:
                await conn.copy_records_to_table("ticket", records=rows, columns=COLUMNS)
        finally:
            await conn.close()

    started = time.perf_counter()
    loaders = [asyncio.create_task(load()) for _ in range(LOADERS)]
    for first in range(0, count, CHUNK):
        await chunks.put([world.row(i, count) for i in range(first, min(first + CHUNK, count))])
        done = min(first + CHUNK, count)
        if done % 100_000 == 0:
            rate = done / (time.perf_counter() - started)
            print(f"  loaded {done:,} tickets ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    for _ in loaders:
        await chunks.put(None)
    await asyncio.gather(*loaders)
    rate = count / (time.perf_counter() - started)
    started = time.perf_counter()
    conn = await connect(url)
    try:
        await conn.execute("SET maintenance_work_mem = '512MB'")  # this session only
        for index in indexes:
            await conn.execute(index["definition"])
        await conn.execute(
            "INSERT INTO ticket_counter (year, last) SELECT year, max(seq) FROM ticket GROUP BY year"
        )
        await conn.execute("VACUUM ANALYZE ticket")
    finally:
        await conn.close()
    return rate, len(indexes), time.perf_counter() - started


async def counters(url: str, world: World) -> None:
    conn = await connect(url)
    try:
        world.seqs = {
            int(r["year"]): int(r["last"]) for r in await conn.fetch("SELECT * FROM ticket_counter")
        }
    finally:
        await conn.close()


# ---------------------------------------------------------------- measuring


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class Kind:
    name: str
    search: bool
    make: Callable[[World], tuple[str, TicketFilter]]  # (search text or "", filter)
    p50: list[float] = field(default_factory=list)  # one per run
    p99: list[float] = field(default_factory=list)
    rows: list[float] = field(default_factory=list)
    slowest: tuple[float, str, TicketFilter] | None = None
    plan: str = ""


def agent(world: World) -> Principal:
    agent_id, username = world.rng.choice(AGENTS)
    return Principal(username, Role.agent, agent_id=agent_id)


def statuses(world: World) -> set[Status]:
    return {world.rng.choice(list(Status))}


def a_ticket_number(world: World) -> str:
    year = world.rng.choice(sorted(world.seqs))
    return ticket_number(year, world.rng.randint(1, world.seqs[year]))


def spaced(number: str) -> str:
    return f"{number[:4]} {number[4:7]} {number[7:9]} {number[9:]}"


def common_word(world: World) -> str:
    return world.rng.choice(world.forms[:20])


LISTS = [
    ("open, newest", lambda w: ("", TicketFilter(statuses=OPEN))),
    ("one status", lambda w: ("", TicketFilter(statuses=statuses(w)))),
    ("unit + open", lambda w: ("", TicketFilter(unit=w.rng.choice(UNITS), statuses=OPEN))),
    ("category", lambda w: ("", TicketFilter(category=w.rng.choice(CATEGORIES)))),
    ("urgent + open", lambda w: ("", TicketFilter(urgent=True, statuses=OPEN))),
    ("overdue", lambda w: ("", TicketFilter(overdue=True))),
    ("overdue + unit", lambda w: ("", TicketFilter(overdue=True, unit=w.rng.choice(UNITS)))),
    ("agent's own", lambda w: ("", TicketFilter(visible_to=agent(w)))),
    ("agent's own + open", lambda w: ("", TicketFilter(visible_to=agent(w), statuses=OPEN))),
    (
        "assigned + status",
        lambda w: ("", TicketFilter(assigned_agent=agent(w).agent_id, statuses=statuses(w))),
    ),
    (
        "week + category",
        lambda w: (
            "",
            TicketFilter(
                category=w.rng.choice(CATEGORIES),
                created_from=(start := NOW - timedelta(days=w.rng.randint(7, 1000))),
                created_to=start + timedelta(days=7),
            ),
        ),
    ),
    ("caller number", lambda w: ("", TicketFilter(caller_number=w.caller()))),
    ("page 5, unit", lambda w: ("", TicketFilter(unit=w.rng.choice(UNITS)))),  # after 4 untimed pages
]
SEARCHES = [
    ("common word", lambda w: (common_word(w), TicketFilter())),
    ("any word", lambda w: (w.rng.choice(w.forms), TicketFilter())),
    ("two words", lambda w: (f"{w.word()} {w.word()}", TicketFilter())),
    ("prefix", lambda w: ((word := w.word())[: w.rng.randint(3, max(3, len(word) - 1))], TicketFilter())),
    ("caller name", lambda w: (w.name(), TicketFilter())),
    ("ticket number", lambda w: (a_ticket_number(w), TicketFilter())),
    ("phone number", lambda w: (spaced(w.caller()), TicketFilter())),
    ("word + unit + open", lambda w: (w.word(), TicketFilter(unit=w.rng.choice(UNITS), statuses=OPEN))),
    ("word, agent's own", lambda w: (w.word(), TicketFilter(visible_to=agent(w)))),
    (
        "common word, last month",
        lambda w: (common_word(w), TicketFilter(created_from=NOW - timedelta(days=30))),
    ),
]


async def page_five(store: db.Store, flt: TicketFilter) -> TicketFilter:
    """``flt`` moved to its 5th page (the first four are read untimed)."""
    flt = TicketFilter(unit=flt.unit)
    for _ in range(4):
        page = await list_tickets(store, flt, NOW)
        if page.next is None:
            break
        flt = TicketFilter(unit=flt.unit, after=page.next)
    return flt


async def run_query(store: db.Store, kind: Kind, text: str, flt: TicketFilter) -> tuple[float, int]:
    started = time.perf_counter()
    if kind.search:
        page = await search(store, text, flt, NOW)
    else:
        page = await list_tickets(store, flt, NOW)
    return (time.perf_counter() - started) * 1000, len(page.tickets)


async def measure(store: db.Store, kinds: list[Kind], world: World, queries: int) -> dict[bool, list[float]]:
    pooled: dict[bool, list[float]] = {False: [], True: []}
    for kind in kinds:
        timings, rows = [], []
        for n in range(queries + 5):
            text, flt = kind.make(world)
            if kind.name.startswith("page 5"):
                flt = await page_five(store, flt)
            ms, found = await run_query(store, kind, text, flt)
            if n < 5:
                continue  # warm-up
            timings.append(ms)
            rows.append(found)
            if kind.slowest is None or ms > kind.slowest[0]:
                kind.slowest = (ms, text, flt)
        kind.p50.append(statistics.median(timings))
        kind.p99.append(percentile(timings, 0.99))
        kind.rows.append(statistics.mean(rows))
        pooled[kind.search] += timings
    return pooled


async def writes(store: db.Store, world: World, count: int) -> tuple[list[float], list[float]]:
    """Ticket creations and comments through ``tickets.store`` (the triggers' cost included)."""
    created, commented = [], []
    supervisor = Principal("bench", Role.supervisor)
    ids = []
    for _ in range(count):
        new = NewTicket(
            source=Source.walk_in,
            caller_number=world.caller(),
            caller_name=world.name(),
            category=world.rng.choice(CATEGORIES),
            unit=world.rng.choice(UNITS),
            notes=world.text(12, 40),
        )
        started = time.perf_counter()
        ticket = await ticket_store.create(store, new, "bench", NOW)
        created.append((time.perf_counter() - started) * 1000)
        ids.append(ticket.id)
    for ticket_id in ids:
        started = time.perf_counter()
        await ticket_store.apply(store, ticket_id, Comment(world.text(5, 15)), supervisor, NOW)
        commented.append((time.perf_counter() - started) * 1000)
    return created, commented


# ---------------------------------------------------------------- plans


async def statements(store: db.Store, kind: Kind, text: str, flt: TicketFilter) -> list[Any]:
    """What ``kind`` runs: the list's SELECT, or the search's candidate SELECT of each slice of
    time it reaches (as ``tickets.search.search`` does: until enough matches are found)."""
    if not kind.search:
        return [list_statement(flt, NOW)]
    found, wanted, got, runs = words(text), max(ticket_search.CANDIDATES, flt.limit), 0, []
    for span in slices(NOW):
        statement = candidate_statement(store, found, flt, NOW, span, wanted - got)
        runs.append(statement)
        async with store.engine.connect() as conn:
            got += len((await conn.execute(statement)).all())
        if got >= wanted:
            break
    return runs


async def explain(store: db.Store, statement: Any, analyze: bool) -> Any:
    compiled = statement.compile(dialect=store.engine.dialect, compile_kwargs={"render_postcompile": True})
    params = [compiled.params[name] for name in compiled.positiontup or []]
    options = "ANALYZE, BUFFERS, FORMAT TEXT" if analyze else "FORMAT JSON"
    async with store.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        rows = await raw.fetch(f"EXPLAIN ({options}) {compiled}", *params)
    if analyze:
        return "\n".join(r[0] for r in rows)
    value = rows[0][0]  # SQLAlchemy's connection may have decoded the JSON already
    return (json.loads(value) if isinstance(value, str) else value)[0]["Plan"]


def summary(plans: list[dict[str, Any]]) -> str:
    """The scans of the plans, in order: 'Index Backward ix_ticket_status_created_at' etc."""
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        kind = node["Node Type"]
        if "Scan" in kind:
            direction = " Backward" if node.get("Scan Direction") == "Backward" else ""
            where = node.get("Index Name") or node.get("Relation Name") or ""
            found.append(f"{kind.replace(' Scan', '')}{direction} {where}".strip())
        for child in node.get("Plans", []):
            walk(child)

    for plan in plans:
        walk(plan)
    scans = ", ".join(dict.fromkeys(found))
    return f"{len(plans)} slices: {scans}" if len(plans) > 1 else scans


# ---------------------------------------------------------------- main


async def main(args: argparse.Namespace) -> None:
    admin_url = args.url
    url = admin_url.rsplit("/", 1)[0] + f"/{DATABASE}"
    world = World.make()
    have = await existing(admin_url, url) if args.keep else 0
    if have >= args.tickets:
        print(f"reusing {DATABASE}: {have:,} tickets", file=sys.stderr)
        built = None
    else:
        print(f"building {DATABASE}: {args.tickets:,} tickets", file=sys.stderr, flush=True)
        built = await build(admin_url, url, args.tickets, world)
    if args.candidates:
        ticket_search.CANDIDATES = args.candidates
    await counters(url, world)
    store = db.Store(url)
    kinds = [Kind(name, False, make) for name, make in LISTS] + [
        Kind(name, True, make) for name, make in SEARCHES
    ]
    list_p99, search_p99 = [], []
    created_ms: list[float] = []
    commented_ms: list[float] = []
    try:
        conn = await connect(url)
        try:
            tickets = int(await conn.fetchval("SELECT count(*) FROM ticket"))
            size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('ticket'))")
        finally:
            await conn.close()
        for run in range(args.runs):
            world.rng.seed(1000 + run)
            pooled = await measure(store, kinds, world, args.queries)
            list_p99.append(percentile(pooled[False], 0.99))
            search_p99.append(percentile(pooled[True], 0.99))
            print(f"  run {run + 1}: list p99 {list_p99[-1]:.1f} ms, search p99 {search_p99[-1]:.1f} ms",
                  file=sys.stderr, flush=True)  # fmt: skip
        world.rng.seed(7)
        for kind in kinds:
            text, flt = kind.make(world)
            if kind.name.startswith("page 5"):
                flt = await page_five(store, flt)
            runs = await statements(store, kind, text, flt)
            kind.plan = summary([await explain(store, statement, analyze=False) for statement in runs])
        if args.writes:
            created_ms, commented_ms = await writes(store, world, args.writes)

        print(f"\n{tickets:,} tickets in PostgreSQL (ticket table with its indexes: {size})")
        if built is not None:
            rate, indexes, seconds = built
            print(
                f"load: {rate:,.0f} tickets/s (COPY on {LOADERS} connections, the search trigger live),"
                f" then {indexes} indexes built in {seconds:.0f} s"
            )
        print(f"search ranks the newest {ticket_search.CANDIDATES} matches")
        print(f"{args.queries} queries of each kind per run, {args.runs} runs; medians over runs\n")
        print(f"{'kind':<26} {'p50 ms':>8} {'p99 ms':>8} {'rows':>6}  plan")
        for kind in kinds:
            if kind is kinds[len(LISTS)]:
                print()
            p50, p99 = statistics.median(kind.p50), statistics.median(kind.p99)
            flag = " !" if p99 > AIM_MS else ""
            rows = statistics.median(kind.rows)
            print(f"{kind.name:<26} {p50:8.1f} {p99:8.1f}{flag:2} {rows:5.0f}  {kind.plan}")
        if created_ms:
            print()
            for name, timings in (
                ("create (tickets.store)", created_ms),
                ("comment (tickets.store)", commented_ms),
            ):
                p50, p99 = statistics.median(timings), percentile(timings, 0.99)
                print(f"{name:<26} {p50:8.1f} {p99:8.1f}")
        for kind in kinds:
            if statistics.median(kind.p99) > AIM_MS and kind.slowest is not None:
                ms, text, flt = kind.slowest
                print(f"\nslowest {kind.name} ({ms:.0f} ms): text={text!r} filter={flt}")
                for statement in await statements(store, kind, text, flt):
                    print(await explain(store, statement, analyze=True))
    finally:
        await store.close()
        if not args.keep:
            admin = await connect(admin_url)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            finally:
                await admin.close()
    print(
        f"tickets={tickets} list_p99_ms={statistics.median(list_p99):.1f}"
        f" search_p99_ms={statistics.median(search_p99):.1f}"
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200, help="queries of each kind per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--writes", type=int, default=200, help="creations and comments, timed once")
    parser.add_argument("--candidates", type=int, help="rank this many newest matches (tickets.search)")
    parser.add_argument("--keep", action="store_true", help="keep the database; reuse it if big enough")
    parser.add_argument(
        "--url",
        default=os.environ.get("HOTLINE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL database on the server to use (the bench database is made beside it)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
