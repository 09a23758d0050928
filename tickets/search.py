"""Full-text search of tickets, one interface over SQLite FTS5 and PostgreSQL full-text search.

``search(store, text, flt, now)`` answers one ``Page`` of the tickets matching every word of
``text`` and every filter of ``flt`` (``tickets.queries``: visibility included), most relevant
first, then newest first. Words match regardless of case and of Turkish letters (İ/i/I/ı, ş/s,
ç/c, ğ/g, ö/o, ü/u, and â, î, û and a few common Latin accents), and the last word (three
characters or more) also matches as a prefix: "ayş" finds "Ayşe".

What is searched is one document per ticket, kept by the database on every write (triggers of
migration 0010, so no code path can forget it): the number and the caller (number and name) weigh
most, then the category and the unit, then the notes, the reply and every comment of the trail.
A ticket number is found whole ("183-2026-000123") or without its prefix ("2026-000123"); a phone
number in any common spelling ("0532 123 45 67", "+90 532 1234567", or its first seven digits
or more).

Relevance is PostgreSQL's ``ts_rank`` or SQLite's ``bm25`` (weights for the three parts), so the
two databases agree on the order of clearly different matches (the caller's name over a word in
the notes) but not on the fine order of near ties. To keep every search fast however common its
words, relevance is computed over the newest ``CANDIDATES`` matches only: a very common word is
ranked within its most recent thousand tickets; narrow it with more words or filters (a date range)
to reach older ones. Results come in one page (``flt.limit``, at most 200); there is no cursor.

Those newest matches are gathered slice by slice of time (the last 7 days, then 30, 90, 365, then
the rest), one query each, stopping as soon as there are enough: a word in one ticket in a hundred
is then read from the last weeks only, instead of the database either walking tens of thousands of
tickets newest first or fetching and sorting all of its matches. A rare word costs up to five small
index queries; the ranks (``ts_rank`` per document, ``bm25`` with index-wide statistics) compare
across slices, and the final order is made in Python.

Not searched: the call's transcript (``transcripts``) and the ticket's other fields.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from hotline.db import Store
from tickets.errors import Invalid
from tickets.models import PREFIX, Ticket
from tickets.queries import Page, TicketFilter, conditions, newest_first

CANDIDATES = 1000
SLICES = (7, 30, 90, 365)  # days back: the newest matches are looked for slice by slice
MAX_WORDS = 8
PREFIX_FROM = 3  # a last word this long or longer also matches as a prefix

# The same table as migration 0010's ticket_search_fold (keep them equal: a test compares them).
_FOLD_FROM = "ABCDEFGHIJKLMNOPQRSTUVWXYZİıÇçĞğÖöŞşÜüÂâÎîÛûÊêÉéÈèËëÀàÁáÄäÃãÅåÒòÓóÔôÕõÙùÚúÌìÍíÏïÑñ"
_FOLD_TO = "abcdefghijklmnopqrstuvwxyziiccggoossuuaaiiuueeeeeeeeaaaaaaaaaaoooooooouuuuiiiiiinn"
FOLD = str.maketrans(_FOLD_FROM, _FOLD_TO)
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_TICKET_NUMBER = re.compile(rf"\s*(?:{PREFIX}\s*-\s*)?(\d{{4}})\s*-\s*(\d{{1,6}})\s*")
_PHONE = re.compile(r"[\d\s+\-().]+")

# What migration 0010 adds outside the SQLModel metadata (dialect-specific search objects, and
# list indexes the models do not declare): the migrations-match-models check leaves these out.
UNMODELLED = frozenset(
    {
        "search",  # PostgreSQL: the ticket.search column
        "ix_ticket_search",
        "ticket_search",  # SQLite: the document table and its FTS5 index (with its shadow tables)
        "ticket_fts",
        "ticket_fts_data",
        "ticket_fts_idx",
        "ticket_fts_docsize",
        "ticket_fts_config",
        "ix_ticket_status_created_at",
        "ix_ticket_category_created_at",
        "ix_ticket_unit_created_at",
        "ix_ticket_urgent_created_at",
        "ix_ticket_assigned_agent_created_at",
        "ix_ticket_created_by_created_at",
        "ix_ticket_unanswered_created_at",
    }
)


def fold(text: str) -> str:
    """Lower-case ASCII words separated by single spaces, as the database folds the document."""
    return _NOT_WORD.sub(" ", text.translate(FOLD))


def words(text: str) -> list[str]:
    """The words to look for in ``text``: a ticket number and a phone number are recognised whole
    (their parts as the document holds them); anything else is split into folded words."""
    if number := _TICKET_NUMBER.fullmatch(text):
        return [number.group(1), number.group(2).zfill(6)]
    digits = re.sub(r"\D", "", text)
    if _PHONE.fullmatch(text) and len(digits) >= 7:
        return [digits[-10:]]  # the document holds every number's last ten digits, and all of them
    return fold(text).split()[:MAX_WORDS]


async def search(store: Store, text: str, flt: TicketFilter, now: datetime) -> Page:
    """The most relevant tickets for ``text`` within ``flt``; an empty page when ``text`` has no
    word to look for."""
    if flt.after is not None:
        raise Invalid("search results come in one page; narrow the search instead of paging")
    if now.tzinfo is None:
        raise Invalid("now has no time zone")
    found = words(text)
    if not found:
        return Page([], None)
    wanted = max(CANDIDATES, flt.limit)
    candidates: list[Any] = []  # (id, created_at, score), the newest matches
    async with store.session() as session:
        connection = await session.connection()
        if store.engine.dialect.name == "postgresql":
            # Each slice needs the plan of its own words and dates: a generic plan of a prepared
            # statement (asyncpg prepares them) cannot tell a rare word from a common one.
            await connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
        for span in slices(now):
            statement = candidate_statement(store, found, flt, now, span, wanted - len(candidates))
            candidates += (await connection.execute(statement)).all()
            if len(candidates) >= wanted:
                break
        candidates.sort(key=lambda row: row[0], reverse=True)  # stable sorts, last key first
        candidates.sort(key=lambda row: row[1], reverse=True)
        candidates.sort(key=lambda row: row[2], reverse=True)
        ids = [row[0] for row in candidates[: flt.limit]]
        if not ids:
            return Page([], None)
        tickets = {t.id: t for t in (await session.exec(select(Ticket).where(col(Ticket.id).in_(ids)))).all()}
    return Page([tickets[i] for i in ids if i in tickets], None)


def slices(now: datetime) -> list[tuple[datetime | None, datetime | None]]:
    """(created before, created from) of each slice of time, newest first, back to the beginning."""
    edges: list[datetime | None] = [now - timedelta(days=days) for days in SLICES]
    return list(zip([None, *edges], [*edges, None], strict=True))


def candidate_statement(
    store: Store,
    found: list[str],
    flt: TicketFilter,
    now: datetime,
    span: tuple[datetime | None, datetime | None],
    count: int,
) -> Any:
    """The SELECT of the ``count`` newest matches' (id, created_at, score) created in ``span``
    (one of ``slices``); a higher score is a better match."""
    c = Ticket.__table__.c  # type: ignore[attr-defined]
    terms = conditions(flt, now)
    before, since = span
    if before is not None:
        terms.append(c.created_at < before)
    if since is not None:
        terms.append(c.created_at >= since)
    make = _sqlite if store.engine.dialect.name == "sqlite" else _postgresql
    return make(found, terms, count)


def _prefixed(found: list[str]) -> bool:
    return len(found[-1]) >= PREFIX_FROM


def _postgresql(found: list[str], terms: list[Any], count: int) -> Any:
    table = Ticket.__table__  # type: ignore[attr-defined]
    query = " & ".join(found) + (":*" if _prefixed(found) else "")  # words are [a-z0-9]+: no quoting
    tsquery = sa.func.to_tsquery(sa.literal_column("'simple'"), sa.bindparam("tsquery", query))
    document: Any = sa.literal_column("ticket.search")
    # The newest matches (an index walk stops at ``count``), then ts_rank of those only.
    newest = (
        select(table.c.id, table.c.created_at, document.label("document"))
        .where(document.op("@@", return_type=sa.Boolean)(tsquery), *terms)
        .order_by(*newest_first())
        .limit(count)
        .subquery("candidates")
    )
    rank = sa.func.ts_rank(newest.c.document, tsquery)
    return sa.select(newest.c.id, newest.c.created_at, rank.label("score"))


def _sqlite(found: list[str], terms: list[Any], count: int) -> Any:
    table = Ticket.__table__  # type: ignore[attr-defined]
    query = " ".join(f'"{word}"' for word in found) + ("*" if _prefixed(found) else "")
    fts = sa.table("ticket_fts", sa.column("rowid"))  # FTS5 over ticket_search (migration 0010)
    docs = sa.table("ticket_search", sa.column("id"), sa.column("ticket_id"))
    joined = fts.join(docs, docs.c.id == fts.c.rowid).join(table, table.c.id == docs.c.ticket_id)
    matches = sa.literal_column("ticket_fts").op("MATCH", return_type=sa.Boolean)(query)
    score = -sa.func.bm25(sa.literal_column("ticket_fts"), 5.0, 2.0, 1.0)  # bm25: lower is better
    return (
        sa.select(table.c.id, table.c.created_at, score.label("score"))
        .select_from(joined)
        .where(matches, *terms)
        .order_by(*newest_first())
        .limit(count)
    )
