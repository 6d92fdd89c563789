"""chat aliases: the pseudonym Rasa knows a chat by, and the phone its channel proved

Revision ID: 8c2d5e1f3b70
Revises: 4b1e0c7d9a21
Create Date: 2026-12-04 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import api.core.types

revision = "8c2d5e1f3b70"
down_revision = "4b1e0c7d9a21"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "borrower_chat_alias",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "telegram", "whatsapp", "terminal", name="channel", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("external_user_id", sa.String(length=64), nullable=False),
        sa.Column("proven_phone_e164", sa.String(length=20), nullable=True),
        sa.Column("phone_proven_at", api.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            api.core.types.UTCDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_borrower_chat_alias")),
        sa.UniqueConstraint(
            "channel", "pseudonym", name=op.f("uq_borrower_chat_alias_channel_pseudonym")
        ),
        sa.UniqueConstraint(
            "channel",
            "external_user_id",
            name=op.f("uq_borrower_chat_alias_channel_external_user_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("borrower_chat_alias")
