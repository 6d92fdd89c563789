"""risk scorecards and scores

Revision ID: 7e3a9c41d2b8
Revises: b1ec118d2182
Create Date: 2026-12-06 18:29:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import api.core.types

revision = '7e3a9c41d2b8'
down_revision = 'b1ec118d2182'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('risk_scorecard',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fitted_from', sa.Date(), nullable=False),
    sa.Column('fitted_through', sa.Date(), nullable=False),
    sa.Column('snapshots', sa.Integer(), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('card', sa.JSON(), nullable=False),
    sa.Column('created_at', api.core.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_scorecard'))
    )
    op.create_table('risk_score',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('loan_id', sa.Integer(), nullable=False),
    sa.Column('scorecard_id', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('probability', sa.Numeric(precision=5, scale=4), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('features', sa.JSON(), nullable=False),
    sa.Column('created_at', api.core.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loan.id'], name=op.f('fk_risk_score_loan_id_loan')),
    sa.ForeignKeyConstraint(['scorecard_id'], ['risk_scorecard.id'], name=op.f('fk_risk_score_scorecard_id_risk_scorecard')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_score')),
    sa.UniqueConstraint('loan_id', 'as_of', name=op.f('uq_risk_score_loan_id_as_of'))
    )
    with op.batch_alter_table('risk_score', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_score_as_of'), ['as_of'], unique=False)
        batch_op.create_index(batch_op.f('ix_risk_score_loan_id'), ['loan_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_risk_score_scorecard_id'), ['scorecard_id'], unique=False)

def downgrade() -> None:
    with op.batch_alter_table('risk_score', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_score_scorecard_id'))
        batch_op.drop_index(batch_op.f('ix_risk_score_loan_id'))
        batch_op.drop_index(batch_op.f('ix_risk_score_as_of'))

    op.drop_table('risk_score')
    op.drop_table('risk_scorecard')
