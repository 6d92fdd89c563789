"""notifier dead letters (halted channels, exhausted retries) and parts sent of a split text

Revision ID: 5d2c7a91e4b3
Revises: 061c9dbbe946
Create Date: 2026-12-04 15:10:00

A provider error that says the channel itself is wrong (a revoked token, a bad request, a
template error, an unknown code) halts that channel's campaign with an open dead letter until an
operator resumes it; nobody is opted out. ``outbox_message.parts_sent`` lets a retry of a long
text send only the parts that did not go.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import api.core.types

revision = "5d2c7a91e4b3"
down_revision = "061c9dbbe946"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("parts_sent", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_table(
        "notify_dead_letter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", api.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column(
            "reason",
            sa.Enum(
                "channel_error",
                "retries_exhausted",
                name="deadletterreason",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("halts_channel", sa.Boolean(), nullable=False),
        sa.Column("worker", sa.String(length=64), nullable=True),
        sa.Column("resolved_at", api.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox_message.id"],
            name=op.f("fk_notify_dead_letter_outbox_id_outbox_message"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_dead_letter")),
    )
    with op.batch_alter_table("notify_dead_letter", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notify_dead_letter_outbox_id"), ["outbox_id"], unique=False
        )
        batch_op.create_index(
            "ix_notify_dead_letter_open_halt",
            ["channel"],
            unique=False,
            postgresql_where=sa.text("halts_channel AND resolved_at IS NULL"),
            sqlite_where=sa.text("halts_channel AND resolved_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("notify_dead_letter", schema=None) as batch_op:
        batch_op.drop_index("ix_notify_dead_letter_open_halt")
        batch_op.drop_index(batch_op.f("ix_notify_dead_letter_outbox_id"))
    op.drop_table("notify_dead_letter")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_column("parts_sent")
