"""callbacks: callers who keep their place without staying on the line

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "callback",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("call_id", sa.String(32), sa.ForeignKey("call.id"), nullable=False),
        sa.Column("number", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outbound_call_id", sa.String(32), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_callback_call_id", "callback", ["call_id"])
    op.create_index("ix_callback_status", "callback", ["status"])


def downgrade() -> None:
    op.drop_index("ix_callback_status", "callback")
    op.drop_index("ix_callback_call_id", "callback")
    op.drop_table("callback")
