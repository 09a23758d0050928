"""agent presence changes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_event",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("before", sa.String(16), nullable=False),
        sa.Column("after", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(32), nullable=True),
    )
    op.create_index("ix_agent_event_agent_id", "agent_event", ["agent_id"])
    op.create_index("ix_agent_event_at", "agent_event", ["at"])


def downgrade() -> None:
    op.drop_index("ix_agent_event_at", "agent_event")
    op.drop_index("ix_agent_event_agent_id", "agent_event")
    op.drop_table("agent_event")
