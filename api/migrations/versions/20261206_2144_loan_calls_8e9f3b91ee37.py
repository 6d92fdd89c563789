"""loan calls: an officer's call about a loan outside any case

Revision ID: 8e9f3b91ee37
Revises: c7a4e2d19f08
Create Date: 2026-12-06 21:44:50
"""
from __future__ import annotations

import sqlalchemy as sa
import api.core.types
from alembic import op

revision = '8e9f3b91ee37'
down_revision = 'c7a4e2d19f08'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('loan_call',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('borrower_id', sa.Integer(), nullable=False),
    sa.Column('loan_id', sa.Integer(), nullable=False),
    sa.Column('officer_id', sa.Integer(), nullable=False),
    sa.Column('call_outcome', sa.Enum('answered', 'no_answer', 'promise_to_pay', 'dispute', 'paid', 'refused', 'unreachable', 'wrong_number', name='calloutcome', native_enum=False, length=16), nullable=False),
    sa.Column('officer_words', sa.Text(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=128), nullable=True),
    sa.Column('created_at', api.core.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['borrower_id'], ['borrower.id'], name=op.f('fk_loan_call_borrower_id_borrower')),
    sa.ForeignKeyConstraint(['loan_id'], ['loan.id'], name=op.f('fk_loan_call_loan_id_loan')),
    sa.ForeignKeyConstraint(['officer_id'], ['branch_officer.id'], name=op.f('fk_loan_call_officer_id_branch_officer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_call')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_loan_call_idempotency_key'))
    )
    with op.batch_alter_table('loan_call', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loan_call_borrower_id'), ['borrower_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_loan_call_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_loan_call_loan_id'), ['loan_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('loan_call', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loan_call_loan_id'))
        batch_op.drop_index(batch_op.f('ix_loan_call_created_at'))
        batch_op.drop_index(batch_op.f('ix_loan_call_borrower_id'))

    op.drop_table('loan_call')
