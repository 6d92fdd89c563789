"""the gateway's durable inbox of inbound chat updates

Revision ID: 4b1e0c7d9a21
Revises: 5a1c0e7d9b21
Create Date: 2026-12-04 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import api.core.types

revision = "4b1e0c7d9a21"
down_revision = "5a1c0e7d9b21"
branch_labels = None
depends_on = None

OPEN = "status IN ('pending', 'working')"


def upgrade() -> None:
    op.create_table(
        "inbox_message",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("chat_key", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", api.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(length=64), nullable=True),
        sa.Column(
            "received_at",
            api.core.types.UTCDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("finished_at", api.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_message")),
        sa.UniqueConstraint("key", name=op.f("uq_inbox_message_key")),
    )
    op.create_index(
        "ix_inbox_message_open_chat",
        "inbox_message",
        ["chat_key", "id"],
        unique=False,
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_inbox_message_open_chat", table_name="inbox_message")
    op.drop_table("inbox_message")
