"""what the IVR learned about a call: queue, category, urgency, voicemail

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call") as batch:
        batch.add_column(sa.Column("queue", sa.String(64), nullable=True))
        batch.add_column(sa.Column("category", sa.String(64), nullable=True))
        batch.add_column(sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("voicemail", sa.String(128), nullable=True))
        batch.create_index("ix_call_urgent", ["urgent"])
        batch.create_index("ix_call_caller_number", ["caller_number"])


def downgrade() -> None:
    with op.batch_alter_table("call") as batch:
        batch.drop_index("ix_call_caller_number")
        batch.drop_index("ix_call_urgent")
        batch.drop_column("voicemail")
        batch.drop_column("urgent")
        batch.drop_column("category")
        batch.drop_column("queue")
