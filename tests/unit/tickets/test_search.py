"""Ticket search on SQLite (FTS5) and PostgreSQL (tsvector): Turkish folding, numbers, relevance,
filters and visibility, and a document that follows every write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from hotline import db
from hotline.auth import Principal, Role
from tickets import search as ticket_search
from tickets import store as tickets
from tickets.errors import Invalid
from tickets.models import Source, Status, Ticket
from tickets.queries import Cursor, TicketFilter
from tickets.search import fold, search, words
from tickets.service import Assign, Comment, Edit, NewTicket, Reply, Transition

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=30)
AGENT = Principal("ayse", Role.agent, agent_id="a1")
SUPERVISOR = Principal("selin", Role.supervisor)
ALL = TicketFilter(limit=200)


async def make(store: db.Store, minute: int, by: str = "system", **fields: object) -> Ticket:
    new = NewTicket(source=Source.walk_in, **fields)  # type: ignore[arg-type]
    return await tickets.create(store, new, by, T0 + timedelta(minutes=minute))


async def found(store: db.Store, text: str, flt: TicketFilter = ALL) -> list[str]:
    page = await search(store, text, flt, NOW)
    assert page.next is None
    return [t.number for t in page.tickets]


TURKISH = [  # (as written in the ticket, as typed in the search box)
    ("İstanbul'dan aradı", ["istanbul", "ISTANBUL", "İSTANBUL", "Istanbul", "ıstanbul"]),
    ("işçi alacağı", ["isci", "İŞÇİ", "IŞÇI", "ISCI", "işçi"]),
    ("Iğdır ilinden", ["igdir", "IGDIR", "ığdır", "İğdir"]),
    ("gönüllü bakıcı", ["gonullu", "GÖNÜLLÜ", "Gönüllü"]),
    ("ÇOCUK ihmali", ["çocuk", "cocuk", "Çocuk"]),
    ("ılık süt", ["ilik", "ILIK", "ılık"]),
    ("Sisli ilcesi", ["Şişli", "ŞİŞLİ", "sisli"]),
    ("düğün salonu", ["dugun", "DÜĞÜN", "Düğün"]),
]


async def test_turkish_words_are_found_whatever_their_case_and_letters(store: db.Store) -> None:
    made = [await make(store, n, notes=text) for n, (text, _) in enumerate(TURKISH)]
    for ticket, (text, queries) in zip(made, TURKISH, strict=True):
        for query in queries:
            assert await found(store, query) == [ticket.number], (text, query)
    assert await found(store, "ankara") == []
    assert await found(store, "istanbulda") == []  # a longer word is not a prefix of a shorter one


async def test_every_word_must_match_and_the_last_one_may_be_a_prefix(store: db.Store) -> None:
    both = await make(store, 1, notes="Yaşlı annesi için bakım desteği istiyor")
    one = await make(store, 2, notes="Bakım evi başvurusu")
    assert await found(store, "bakım desteği") == [both.number]
    assert await found(store, "bakım") == [one.number, both.number]
    assert await found(store, "bakım dest") == [both.number]  # prefix: "dest" -> "desteği"
    assert await found(store, "baki") == [one.number, both.number]
    assert await found(store, "ba") == []  # too short to be a prefix (and no such word)
    assert await found(store, "dest bakım") == []  # only the last word is a prefix


async def test_ticket_and_caller_numbers_are_found_in_their_usual_spellings(store: db.Store) -> None:
    first = await make(store, 1, caller_number="05321234567", caller_name="Ali Veli")
    second = await make(store, 2, caller_number="+905449876543")
    third = await make(store, 3, caller_number="4441234")
    assert (first.number, second.number) == ("183-2026-000001", "183-2026-000002")
    for query in ("183-2026-000002", "2026-000002", "183-2026-2", " 2026 - 2 "):
        assert await found(store, query) == [second.number], query
    for query in (
        "05321234567",
        "0532 123 45 67",
        "+90 532 123 4567",
        "(0532) 123-45-67",
        "5321234567",
        "0532123",
    ):
        assert await found(store, query) == [first.number], query
    for query in ("05449876543", "+90 544 987 65 43", "544 987 6543"):
        assert await found(store, query) == [second.number], query
    assert await found(store, "444 12 34") == [third.number]
    assert await found(store, "0532 999 99 99") == []


async def test_the_callers_name_outranks_a_newer_word_in_the_notes_then_newest_first(store: db.Store) -> None:
    named = await make(store, 1, caller_name="Hatice Kaplan", notes="kira yardımı")
    older = await make(store, 2, caller_name="Ali Veli", notes="kaplan desenli halı çalındı")
    newer = await make(store, 3, caller_name="Ali Veli", notes="kaplan desenli halı çalındı")
    category = await make(store, 4, caller_name="Ali Veli", notes="kira yardımı", category="kaplan")
    assert await found(store, "kaplan") == [named.number, category.number, newer.number, older.number]
    assert await found(store, "kaplan", TicketFilter(limit=2)) == [named.number, category.number]


async def test_search_keeps_to_the_filters_and_to_what_the_agent_may_see(store: db.Store) -> None:
    mine = await make(store, 1, by="ayse", notes="sel baskını", unit="AFAD")
    assigned = await make(store, 2, notes="sel baskını", unit="AFAD", assigned_agent="a1", urgent=True)
    other = await make(store, 3, by="can", notes="sel baskını", unit="Valilik", assigned_agent="a2")
    assert await found(store, "sel") == [other.number, assigned.number, mine.number]
    assert await found(store, "sel", TicketFilter(visible_to=AGENT)) == [assigned.number, mine.number]
    assert await found(store, "sel", TicketFilter(unit="AFAD", urgent=False)) == [mine.number]
    async with store.session() as session:
        table = Ticket.__table__  # type: ignore[attr-defined]
        await (await session.connection()).execute(
            sa.update(table).where(table.c.id == other.id).values(status=Status.closed.value)
        )
        await session.commit()
    assert await found(store, "sel", TicketFilter(statuses={Status.closed})) == [other.number]
    assert await found(store, "sel", TicketFilter(created_to=T0 + timedelta(minutes=2))) == [mine.number]


async def test_the_document_follows_every_change_comment_and_reply(store: db.Store) -> None:
    ticket = await make(store, 0, by="ayse", notes="su kesintisi", assigned_agent="a1", caller_name="Ali")
    other = await make(store, 1, notes="yol çalışması")
    assert await found(store, "kesintisi") == [ticket.number]

    def step(minutes: int) -> datetime:
        return T0 + timedelta(minutes=minutes)

    await tickets.apply(store, ticket.id, Edit("notes", "elektrik arızası"), AGENT, step(1))
    assert await found(store, "kesintisi") == []
    assert await found(store, "elektrik arızası") == [ticket.number]
    await tickets.apply(store, ticket.id, Comment("Komşusu da şikâyetçi"), AGENT, step(2))
    assert await found(store, "komsusu sikayetci") == [ticket.number]
    await tickets.apply(store, ticket.id, Comment("Muhtarlık bilgilendirildi"), AGENT, step(3))
    assert await found(store, "muhtarlik") == [ticket.number]
    assert await found(store, "komsusu") == [ticket.number]  # the earlier comment is still there
    await tickets.apply(store, ticket.id, Reply("Ekip yönlendirildi"), AGENT, step(4))
    assert await found(store, "yonlendirildi") == [ticket.number]
    await tickets.apply(store, ticket.id, Edit("category", "altyapı"), AGENT, step(5))
    await tickets.apply(store, ticket.id, Edit("unit", "TEDAŞ"), SUPERVISOR, step(6))
    await tickets.apply(store, ticket.id, Edit("caller_name", "Mehmet Öztürk"), SUPERVISOR, step(7))
    assert await found(store, "altyapi tedas ozturk") == [ticket.number]
    assert await found(store, "ali") == []
    await tickets.apply(store, ticket.id, Assign("a2", comment="bölge değişti"), SUPERVISOR, step(8))
    await tickets.apply(
        store, ticket.id, Transition(Status.in_progress, comment="arandı"), SUPERVISOR, step(9)
    )
    assert await found(store, "bolge degisti") == [ticket.number]
    assert await found(store, "arandi") == [ticket.number]
    assert await found(store, "elektrik") == [ticket.number]  # the notes survive a status change
    assert await found(store, "yol") == [other.number]


async def test_only_the_newest_matches_are_ranked(store: db.Store, monkeypatch: pytest.MonkeyPatch) -> None:
    named = await make(store, 1, caller_name="Hatice Kaplan")
    notes = [await make(store, n, notes="kaplan") for n in (2, 3, 4)]
    two = TicketFilter(limit=2)
    monkeypatch.setattr(ticket_search, "CANDIDATES", 2)
    assert await found(store, "kaplan", two) == [notes[2].number, notes[1].number]
    monkeypatch.setattr(ticket_search, "CANDIDATES", 4)
    assert await found(store, "kaplan", two) == [named.number, notes[2].number]
    monkeypatch.setattr(ticket_search, "CANDIDATES", 1)  # never fewer than the page asks for
    assert len(await found(store, "kaplan", two)) == 2


async def test_the_newest_matches_are_gathered_across_slices_of_time(
    store: db.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = T0 + timedelta(days=800)
    ages = {"3 days": 3, "20 days": 20, "60 days": 60, "61 days": 61, "200 days": 200, "700 days": 700}
    made = {}
    for label, days in ages.items():
        name = "Hatice Kaplan" if label == "700 days" else "Ali Veli"
        made[label] = await tickets.create(
            store,
            NewTicket(source=Source.walk_in, caller_name=name, notes="kaplan"),
            "system",
            now - timedelta(days=days),
        )
    page = await search(store, "kaplan", ALL, now)
    assert [t.number for t in page.tickets] == [made[k].number for k in ("700 days", *list(ages)[:-1])]
    monkeypatch.setattr(ticket_search, "CANDIDATES", 3)  # the newest three, from three slices
    page = await search(store, "kaplan", TicketFilter(limit=3), now)
    assert [t.number for t in page.tickets] == [made[k].number for k in ("3 days", "20 days", "60 days")]
    monkeypatch.setattr(ticket_search, "CANDIDATES", 6)
    page = await search(store, "kaplan", TicketFilter(limit=1), now)
    assert [t.number for t in page.tickets] == [made["700 days"].number]


async def test_no_word_finds_nothing_and_search_does_not_page(store: db.Store) -> None:
    await make(store, 1, notes="!!!")
    assert await found(store, " ?! ") == []
    with pytest.raises(Invalid):
        await search(store, "x", TicketFilter(after=Cursor(T0, "x")), NOW)


# PostgreSQL only: SQLite folds in its FTS5 tokenizer, which the other tests cover.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_database_folds_letters_as_python_does(store: db.Store) -> None:
    text = (
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz 0123456789 İıÇçĞğÖöŞşÜüÂâÎîÛûÊêÉéÈèËë"
        "ÀàÁáÄäÃãÅåÒòÓóÔôÕõÙùÚúÌìÍíÏïÑñ ß Ж я ك, a-b_c'd.e/f+g@h\tİSTANBUL"
    )
    async with store.session() as session:
        connection = await session.connection()
        folded = (
            await connection.execute(sa.text("SELECT ticket_search_fold(:t)"), {"t": text})
        ).scalar_one()
    assert folded == fold(text)
    assert set(fold(text)) <= set("abcdefghijklmnopqrstuvwxyz0123456789 ")


def test_query_words() -> None:
    assert words("183-2026-000123") == ["2026", "000123"]
    assert words("2026-45") == ["2026", "000045"]
    assert words("+90 (532) 123-45-67") == ["5321234567"]
    assert words("0532 123") == ["0532123"]
    assert words("Ayşe YILMAZ'ın başvurusu") == ["ayse", "yilmaz", "in", "basvurusu"]
    assert words("123 45") == ["123", "45"]  # too few digits for a phone number
    assert words("?!") == []
    assert len(words(" ".join(["söz"] * 20))) == ticket_search.MAX_WORDS
