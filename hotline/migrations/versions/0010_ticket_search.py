"""ticket lists and search: composite indexes for the filtered lists, a per-ticket search document

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

Both databases get the list indexes (each common filter, then ``created_at`` for newest first)
and one partial index for overdue tickets (unanswered ones, by ``created_at`` then ``due_at``).

The search document is kept by the database itself, on every write, whoever writes:

* PostgreSQL: a ``tsvector`` column ``ticket.search`` with a GIN index, set by a BEFORE INSERT OR
  UPDATE trigger on ticket and refreshed by an AFTER INSERT trigger on ticket_event for comments.
  The text is folded by ``ticket_search_fold`` (Turkish and common Latin letters to ASCII, then
  everything but ``[a-z0-9]`` to spaces), a plain SQL function: no ``unaccent`` extension needed,
  and no dependence on the database's locale. ``tickets.search.fold`` is its Python twin.
* SQLite: ``ticket_search`` (one row per ticket, a stable integer key) and ``ticket_fts``, an
  FTS5 index over it (external content, ``unicode61 remove_diacritics 2``), kept in sync by
  triggers on ticket, ticket_event and ticket_search. unicode61 folds case and diacritics itself
  (ş, ç, ğ, ö, ü, İ) but not the dotless ı, which the triggers map to i.

The document has three weighted parts: the ticket's number and caller (number, its digits, its
last ten digits, name), then its category and unit, then its notes, reply and every comment of
its trail. The migration copies what it needs (it imports nothing of ours).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIST_INDEXES = {
    "ix_ticket_status_created_at": ["status", "created_at"],
    "ix_ticket_category_created_at": ["category", "created_at"],
    "ix_ticket_unit_created_at": ["unit", "created_at"],
    "ix_ticket_urgent_created_at": ["urgent", "created_at"],
    "ix_ticket_assigned_agent_created_at": ["assigned_agent", "created_at"],
    "ix_ticket_created_by_created_at": ["created_by", "created_at"],
}
UNANSWERED_WHERE = "status IN ('new', 'assigned', 'in_progress', 'reopened')"  # a deadline still runs

# Folding: the same table as tickets.search.FOLD (A-Z and the letters below, to ASCII).
FOLD_FROM = "ABCDEFGHIJKLMNOPQRSTUVWXYZİıÇçĞğÖöŞşÜüÂâÎîÛûÊêÉéÈèËëÀàÁáÄäÃãÅåÒòÓóÔôÕõÙùÚúÌìÍíÏïÑñ"
FOLD_TO = "abcdefghijklmnopqrstuvwxyziiccggoossuuaaiiuueeeeeeeeaaaaaaaaaaoooooooouuuuiiiiiinn"

SEARCH_TRIGGERS_SQLITE = (
    "ticket_search_insert",
    "ticket_search_update",
    "ticket_search_delete",
    "ticket_search_comment",
    "ticket_fts_insert",
    "ticket_fts_update",
    "ticket_fts_delete",
)


def upgrade() -> None:
    for name, columns in LIST_INDEXES.items():
        op.create_index(name, "ticket", columns)
    op.create_index(
        "ix_ticket_unanswered_created_at",
        "ticket",
        ["created_at", "due_at"],
        postgresql_where=sa.text(UNANSWERED_WHERE),
        sqlite_where=sa.text(UNANSWERED_WHERE),
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_up()
    else:
        _sqlite_up()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER ticket_search_comment ON ticket_event")
        op.execute("DROP TRIGGER ticket_search_refresh ON ticket")
        op.execute("DROP INDEX ix_ticket_search")
        op.execute("ALTER TABLE ticket DROP COLUMN search")
        for function in (
            "ticket_search_comment()", "ticket_search_refresh()", "ticket_search_document(ticket)",
            "ticket_search_fold(text)",
        ):  # fmt: skip
            op.execute(f"DROP FUNCTION {function}")
    else:
        for trigger in SEARCH_TRIGGERS_SQLITE:
            op.execute(f"DROP TRIGGER {trigger}")
        op.execute("DROP TABLE ticket_fts")
        op.execute("DROP TABLE ticket_search")
    op.drop_index("ix_ticket_unanswered_created_at", "ticket")
    for name in reversed(LIST_INDEXES):
        op.drop_index(name, "ticket")


# ---------------------------------------------------------------- PostgreSQL


def _postgresql_up() -> None:
    fold_from, fold_to = FOLD_FROM.replace("'", "''"), FOLD_TO.replace("'", "''")
    op.execute(
        "CREATE FUNCTION ticket_search_fold(value text) RETURNS text"
        " LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$"
        f" SELECT regexp_replace(translate(value, '{fold_from}', '{fold_to}'), '[^a-z0-9]+', ' ', 'g')"
        " $$"
    )
    digits = "regexp_replace(t.caller_number, '[^0-9]', '', 'g')"
    op.execute(
        "CREATE FUNCTION ticket_search_document(t ticket) RETURNS tsvector"
        " LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT"
        " setweight(to_tsvector('simple', ticket_search_fold(concat_ws(' ',"
        f"   t.number, t.caller_number, {digits}, right({digits}, 10), t.caller_name))), 'A')"
        " || setweight(to_tsvector('simple', ticket_search_fold(concat_ws(' ', t.category, t.unit))), 'B')"
        " || setweight(to_tsvector('simple', ticket_search_fold(concat_ws(' ', t.notes, t.reply,"
        "   (SELECT string_agg(e.comment, ' ' ORDER BY e.id) FROM ticket_event e"
        "     WHERE e.ticket_id = t.id AND e.comment IS NOT NULL)))), 'C')"
        " $$"
    )
    op.execute("ALTER TABLE ticket ADD COLUMN search tsvector")
    op.execute(
        "CREATE FUNCTION ticket_search_refresh() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN NEW.search := ticket_search_document(NEW); RETURN NEW; END $$"
    )
    # Only a change to a searched column refreshes the document (not a status or version move).
    op.execute(
        "CREATE TRIGGER ticket_search_refresh BEFORE INSERT OR UPDATE OF"
        " number, caller_number, caller_name, category, unit, notes, reply ON ticket"
        " FOR EACH ROW EXECUTE FUNCTION ticket_search_refresh()"
    )
    op.execute(
        "CREATE FUNCTION ticket_search_comment() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN UPDATE ticket SET search = ticket_search_document(ticket) WHERE id = NEW.ticket_id;"
        " RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER ticket_search_comment AFTER INSERT ON ticket_event"
        " FOR EACH ROW WHEN (NEW.comment IS NOT NULL) EXECUTE FUNCTION ticket_search_comment()"
    )
    op.execute("UPDATE ticket SET search = ticket_search_document(ticket)")  # the tickets there are
    op.execute("CREATE INDEX ix_ticket_search ON ticket USING gin (search)")


# ---------------------------------------------------------------- SQLite


def _sqlite_fold(expression: str) -> str:
    """unicode61 leaves the dotless ı alone (and İ is safer mapped here than left to it)."""
    return f"replace(replace({expression}, 'ı', 'i'), 'İ', 'i')"


def _sqlite_parts(t: str) -> tuple[str, str, str]:
    """The head, tags and body of the search document of ticket row ``t`` (SQL expressions)."""
    digits = f"{t}.caller_number"
    for char in "+ -().":
        digits = f"replace({digits}, '{char}', '')"
    head = _sqlite_fold(
        f"{t}.number || ' ' || {t}.caller_number || ' ' || {digits} || ' ' || substr({digits}, -10)"
        f" || ' ' || {t}.caller_name"
    )
    tags = _sqlite_fold(f"coalesce({t}.category, '') || ' ' || coalesce({t}.unit, '')")
    comments = (
        "(SELECT group_concat(e.comment, ' ') FROM ticket_event e"
        f" WHERE e.ticket_id = {t}.id AND e.comment IS NOT NULL)"
    )
    body = _sqlite_fold(f"{t}.notes || ' ' || coalesce({t}.reply, '') || ' ' || coalesce({comments}, '')")
    return head, tags, body


def _sqlite_up() -> None:
    op.execute(
        "CREATE TABLE ticket_search (id INTEGER PRIMARY KEY, ticket_id VARCHAR(32) NOT NULL UNIQUE,"
        " head TEXT NOT NULL, tags TEXT NOT NULL, body TEXT NOT NULL)"
    )
    op.execute(
        "CREATE VIRTUAL TABLE ticket_fts USING fts5(head, tags, body, content='ticket_search',"
        " content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
    )
    columns = "rowid, head, tags, body"
    new = "new.id, new.head, new.tags, new.body"
    delete = "INSERT INTO ticket_fts(ticket_fts, rowid, head, tags, body)"
    old = "VALUES ('delete', old.id, old.head, old.tags, old.body);"
    op.execute(
        "CREATE TRIGGER ticket_fts_insert AFTER INSERT ON ticket_search BEGIN"
        f" INSERT INTO ticket_fts({columns}) VALUES ({new}); END"
    )
    op.execute(f"CREATE TRIGGER ticket_fts_delete AFTER DELETE ON ticket_search BEGIN {delete} {old} END")
    op.execute(
        f"CREATE TRIGGER ticket_fts_update AFTER UPDATE ON ticket_search BEGIN {delete} {old}"
        f" INSERT INTO ticket_fts({columns}) VALUES ({new}); END"
    )
    head, tags, body = _sqlite_parts("new")
    op.execute(
        "CREATE TRIGGER ticket_search_insert AFTER INSERT ON ticket BEGIN INSERT INTO"
        f" ticket_search(ticket_id, head, tags, body) VALUES (new.id, {head}, {tags}, {body}); END"
    )
    op.execute(
        "CREATE TRIGGER ticket_search_update AFTER UPDATE OF"
        " number, caller_number, caller_name, category, unit, notes, reply ON ticket BEGIN"
        f" UPDATE ticket_search SET head = {head}, tags = {tags}, body = {body} WHERE ticket_id = new.id; END"
    )
    op.execute(
        "CREATE TRIGGER ticket_search_delete AFTER DELETE ON ticket BEGIN"
        " DELETE FROM ticket_search WHERE ticket_id = old.id; END"
    )
    _, _, body_of_t = _sqlite_parts("t")
    op.execute(
        "CREATE TRIGGER ticket_search_comment AFTER INSERT ON ticket_event WHEN new.comment IS NOT NULL"
        f" BEGIN UPDATE ticket_search SET body = (SELECT {body_of_t} FROM ticket t"
        " WHERE t.id = new.ticket_id) WHERE ticket_id = new.ticket_id; END"
    )
    head, tags, body = _sqlite_parts("t")
    op.execute(
        "INSERT INTO ticket_search(ticket_id, head, tags, body)"
        f" SELECT t.id, {head}, {tags}, {body} FROM ticket t"
    )
