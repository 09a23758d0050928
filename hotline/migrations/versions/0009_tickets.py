"""ticket, ticket_event (append-only) and ticket_counter: the case each call becomes

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = "ticket_event is append-only"


def upgrade() -> None:
    op.create_table(
        "ticket",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("number", sa.String(24), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(32), sa.ForeignKey("call.id"), nullable=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("caller_number", sa.String(64), nullable=False),
        sa.Column("caller_name", sa.String(128), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("ivr_path", sa.JSON(), nullable=False),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("unit", sa.String(64), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("assigned_agent", sa.String(64), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("reply_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("citizen_told", sa.String(16), nullable=True),
        sa.Column("citizen_told_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("related_to", sa.String(32), sa.ForeignKey("ticket.id"), nullable=True),
    )
    op.create_index("ix_ticket_number", "ticket", ["number"], unique=True)
    op.create_index("ix_ticket_year_seq", "ticket", ["year", "seq"], unique=True)
    op.create_index("ix_ticket_call_id", "ticket", ["call_id"], unique=True)  # NULLs do not collide
    for column in (
        "caller_number", "category", "unit", "urgent", "status", "due_at", "created_at",
        "assigned_agent", "related_to",
    ):  # fmt: skip
        op.create_index(f"ix_ticket_{column}", "ticket", [column])

    op.create_table(
        "ticket_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ticket_id", sa.String(32), sa.ForeignKey("ticket.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("field", sa.String(32), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
    )
    op.create_index("ix_ticket_event_ticket_id", "ticket_event", ["ticket_id"])

    op.create_table(
        "ticket_counter",
        sa.Column("year", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("last", sa.Integer(), nullable=False),
    )

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION ticket_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER ticket_event_append_only BEFORE UPDATE OR DELETE ON ticket_event"
            " FOR EACH ROW EXECUTE FUNCTION ticket_event_append_only()"
        )
        # Row triggers do not fire on TRUNCATE.
        op.execute(
            "CREATE TRIGGER ticket_event_no_truncate BEFORE TRUNCATE ON ticket_event"
            " FOR EACH STATEMENT EXECUTE FUNCTION ticket_event_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER ticket_event_no_{action.lower()} BEFORE {action} ON ticket_event"
                f" BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
            )


def downgrade() -> None:
    op.drop_table("ticket_counter")
    op.drop_table("ticket_event")  # its triggers go with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION ticket_event_append_only()")
    op.drop_table("ticket")
