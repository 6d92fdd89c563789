"""identity verification state, case details, append-only ledger

Revision ID: 061c9dbbe946
Revises: 071905218cb6
Create Date: 2026-11-29 15:59:00

The contact ledger refuses UPDATE and DELETE in the database itself, so no code path (raw SQL,
another service, a console session) can rewrite what was decided and why.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import api.core.types

revision = "061c9dbbe946"
down_revision = "071905218cb6"
branch_labels = None
depends_on = None

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION kopa_contact_event_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'contact_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""
PG_TRIGGER = """
CREATE TRIGGER contact_event_append_only
BEFORE UPDATE OR DELETE ON contact_event
FOR EACH ROW EXECUTE FUNCTION kopa_contact_event_append_only()
"""
SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER contact_event_no_update BEFORE UPDATE ON contact_event
    BEGIN SELECT RAISE(ABORT, 'contact_event is append-only: UPDATE refused'); END
    """,
    """
    CREATE TRIGGER contact_event_no_delete BEFORE DELETE ON contact_event
    BEGIN SELECT RAISE(ABORT, 'contact_event is append-only: DELETE refused'); END
    """,
)


def upgrade() -> None:
    with op.batch_alter_table("borrower_channel_identity", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_factor", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("locale", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("opted_in", sa.Boolean(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "consent_changed_at", api.core.types.UTCDateTime(timezone=True), nullable=True
            )
        )
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("details", sa.JSON(), nullable=True))

    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
    elif dialect == "sqlite":
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS contact_event_append_only ON contact_event")
        op.execute("DROP FUNCTION IF EXISTS kopa_contact_event_append_only()")
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS contact_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS contact_event_no_delete")
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_column("details")
    with op.batch_alter_table("borrower_channel_identity", schema=None) as batch_op:
        batch_op.drop_column("consent_changed_at")
        batch_op.drop_column("opted_in")
        batch_op.drop_column("locale")
        batch_op.drop_column("pending_factor")
