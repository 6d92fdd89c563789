"""one unresolved case per borrower and kind; case notes for later requests

Revision ID: 5a1c0e7d9b21
Revises: 5d2c7a91e4b3
Create Date: 2026-12-04 15:10:00

A second request of a kind while one is unresolved becomes a ``case_note`` on it; the partial
unique index holds that rule when two requests race. Cases that already break it (opened before
this revision) keep their newest unresolved case; the older ones are resolved with outcome
``no_action`` so that the index can be built.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import api.core.types

revision = "5a1c0e7d9b21"
down_revision = "5d2c7a91e4b3"
branch_labels = None
depends_on = None

UNRESOLVED = "status IN ('open', 'acknowledged', 'called')"
# Older duplicates (the defect this revision fixes) would stop the index from being built.
RESOLVE_DUPLICATES = """
UPDATE "case" SET status = 'resolved', outcome = 'no_action', resolved_at = CURRENT_TIMESTAMP
WHERE status IN ('open', 'acknowledged', 'called') AND id NOT IN (
    SELECT max(id) FROM "case" WHERE status IN ('open', 'acknowledged', 'called')
    GROUP BY borrower_id, kind
)
"""


def upgrade() -> None:
    op.create_table(
        "case_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "hardship",
                "officer_request",
                "complaint",
                "payment_claim",
                name="casekind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("capped", sa.Boolean(), nullable=False),
        sa.Column("borrower_words", sa.Text(), nullable=True),
        sa.Column("requested_relief", sa.String(length=32), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column(
            "created_at",
            api.core.types.UTCDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_case_note_case_id_case")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_note")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_case_note_idempotency_key")),
    )
    with op.batch_alter_table("case_note", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_note_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_note_created_at"), ["created_at"], unique=False)
    op.execute(RESOLVE_DUPLICATES)
    op.create_index(
        "uq_case_one_unresolved_per_borrower_kind",
        "case",
        ["borrower_id", "kind"],
        unique=True,
        postgresql_where=sa.text(UNRESOLVED),
        sqlite_where=sa.text(UNRESOLVED),
    )


def downgrade() -> None:
    op.drop_index("uq_case_one_unresolved_per_borrower_kind", table_name="case")
    with op.batch_alter_table("case_note", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_note_created_at"))
        batch_op.drop_index(batch_op.f("ix_case_note_case_id"))
    op.drop_table("case_note")
