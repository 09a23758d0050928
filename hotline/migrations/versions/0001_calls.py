"""calls and their event timeline

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("channel_id", sa.String(128), nullable=False),
        sa.Column("caller_number", sa.String(64), nullable=False),
        sa.Column("caller_name", sa.String(128), nullable=False),
        sa.Column("extension", sa.String(32), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("hangup_cause", sa.Integer(), nullable=True),
    )
    op.create_index("ix_call_channel_id", "call", ["channel_id"], unique=True)
    op.create_index("ix_call_ended_at", "call", ["ended_at"])
    op.create_table(
        "call_event",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(32), sa.ForeignKey("call.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_call_event_call_id", "call_event", ["call_id"])


def downgrade() -> None:
    op.drop_index("ix_call_event_call_id", "call_event")
    op.drop_table("call_event")
    op.drop_index("ix_call_ended_at", "call")
    op.drop_index("ix_call_channel_id", "call")
    op.drop_table("call")
