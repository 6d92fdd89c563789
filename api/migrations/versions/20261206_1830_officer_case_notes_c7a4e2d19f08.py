"""officer case notes: an officer's note or call outcome on a case

Revision ID: c7a4e2d19f08
Revises: 7e3a9c41d2b8
Create Date: 2026-12-06 18:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'c7a4e2d19f08'
down_revision = '7e3a9c41d2b8'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('case_note', schema=None) as batch_op:
        batch_op.add_column(sa.Column('officer_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('officer_words', sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                'call_outcome',
                sa.Enum(
                    'answered', 'no_answer', 'promise_to_pay', 'dispute', 'paid', 'refused',
                    'unreachable', 'wrong_number', name='calloutcome', native_enum=False,
                    length=16,
                ),
                nullable=True,
            )
        )
        batch_op.create_foreign_key(
            batch_op.f('fk_case_note_officer_id_branch_officer'),
            'branch_officer', ['officer_id'], ['id'],
        )


def downgrade() -> None:
    with op.batch_alter_table('case_note', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('fk_case_note_officer_id_branch_officer'), type_='foreignkey'
        )
        batch_op.drop_column('call_outcome')
        batch_op.drop_column('officer_words')
        batch_op.drop_column('officer_id')
