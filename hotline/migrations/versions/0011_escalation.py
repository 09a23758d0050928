"""incident, incident_event (append-only) and page (the durable outbox): urgent cases paged on

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = "incident_event is append-only"


def _when(name: str, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "incident",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("call_id", sa.String(32), sa.ForeignKey("call.id"), nullable=True),
        sa.Column("caller_number", sa.String(64), nullable=False),
        sa.Column("province", sa.String(64), nullable=True),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("silent", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("ticket", sa.String(24), nullable=True),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("loop", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        _when("level_since", nullable=False),
        _when("paged_at"),
        _when("acked_at"),
        sa.Column("exhausted", sa.Boolean(), nullable=False),
        _when("next_at"),
        _when("opened_at", nullable=False),
        sa.Column("acked_by", sa.String(128), nullable=True),
        _when("resolved_at"),
        sa.Column("resolved_by", sa.String(128), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    for column in ("call_id", "status", "next_at", "opened_at"):
        op.create_index(f"ix_incident_{column}", "incident", [column])

    op.create_table(
        "incident_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incident.id"), nullable=False),
        _when("at", nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("by", sa.String(128), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_incident_event_incident_id", "incident_event", ["incident_id"])

    op.create_table(
        "page",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incident.id"), nullable=False),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("loop", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        _when("next_try_at", nullable=False),
        _when("created_at", nullable=False),
        _when("sent_at"),
        _when("done_at"),
        sa.Column("detail", sa.String(512), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("code", sa.String(8), nullable=False),
    )
    op.create_index("ix_page_key", "page", ["key"], unique=True)  # a page is queued once
    op.create_index("ix_page_token", "page", ["token"], unique=True)
    for column in ("incident_id", "state", "next_try_at"):
        op.create_index(f"ix_page_{column}", "page", [column])

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION incident_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER incident_event_append_only BEFORE UPDATE OR DELETE ON incident_event"
            " FOR EACH ROW EXECUTE FUNCTION incident_event_append_only()"
        )
        op.execute(
            "CREATE TRIGGER incident_event_no_truncate BEFORE TRUNCATE ON incident_event"
            " FOR EACH STATEMENT EXECUTE FUNCTION incident_event_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER incident_event_no_{action.lower()} BEFORE {action} ON incident_event"
                f" BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
            )


def downgrade() -> None:
    op.drop_table("page")
    op.drop_table("incident_event")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION incident_event_append_only()")
    op.drop_table("incident")
