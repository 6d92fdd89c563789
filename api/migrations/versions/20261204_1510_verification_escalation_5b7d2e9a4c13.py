"""escalating verification lockouts and the officer hold

Revision ID: 5b7d2e9a4c13
Revises: 8c2d5e1f3b70
Create Date: 2026-12-04 15:10:00

Each lockout of a chat within 24 h lasts twice the one before; 15 failures within 24 h hold
the chat until an officer unlocks it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import api.core.types

revision = "5b7d2e9a4c13"
down_revision = "8c2d5e1f3b70"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("borrower_channel_identity", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lockouts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column(
                "failure_window_started_at",
                api.core.types.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column("failures_in_window", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("held_at", api.core.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("borrower_channel_identity", schema=None) as batch_op:
        batch_op.drop_column("held_at")
        batch_op.drop_column("failures_in_window")
        batch_op.drop_column("failure_window_started_at")
        batch_op.drop_column("lockouts")
