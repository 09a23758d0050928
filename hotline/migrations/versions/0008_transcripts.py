"""transcript_segment and recording: what was said on each call, and the recordings kept

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transcript_segment",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("call_id", sa.String(32), sa.ForeignKey("call.id"), nullable=False),
        sa.Column("speaker", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("raw_text", sa.Text(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("engine", sa.String(16), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("redacted", sa.JSON(), nullable=False),
    )
    op.create_index("ix_transcript_segment_call_id", "transcript_segment", ["call_id"])
    op.create_table(
        "recording",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("call_id", sa.String(32), sa.ForeignKey("call.id"), nullable=False),
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_recording_call_id", "recording", ["call_id"])
    op.create_index("ix_recording_expires_at", "recording", ["expires_at"])
    op.create_index("ix_recording_pending", "recording", ["pending"])


def downgrade() -> None:
    op.drop_table("recording")
    op.drop_table("transcript_segment")
