"""console accounts: officers' sign-in credentials, managers' further branches, console
sessions and sign-in attempts

Revision ID: b1ec118d2182
Revises: 5b7d2e9a4c13
Create Date: 2026-12-06 18:06:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import api.core.types

revision = 'b1ec118d2182'
down_revision = '5b7d2e9a4c13'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('branch_officer_branch',
    sa.Column('officer_id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], name=op.f('fk_branch_officer_branch_branch_id_branch')),
    sa.ForeignKeyConstraint(['officer_id'], ['branch_officer.id'], name=op.f('fk_branch_officer_branch_officer_id_branch_officer')),
    sa.PrimaryKeyConstraint('officer_id', 'branch_id', name=op.f('pk_branch_officer_branch'))
    )
    op.create_table('console_login_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', api.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('officer_id', sa.Integer(), nullable=True),
    sa.Column('result', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['officer_id'], ['branch_officer.id'], name=op.f('fk_console_login_attempt_officer_id_branch_officer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_login_attempt'))
    )
    with op.batch_alter_table('console_login_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_login_attempt_address'), ['address'], unique=False)
        batch_op.create_index(batch_op.f('ix_console_login_attempt_at'), ['at'], unique=False)

    op.create_table('console_session',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('officer_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', api.core.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('last_seen_at', api.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', api.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['officer_id'], ['branch_officer.id'], name=op.f('fk_console_session_officer_id_branch_officer')),
    sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_console_session'))
    )
    with op.batch_alter_table('console_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_session_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_console_session_officer_id'), ['officer_id'], unique=False)

    with op.batch_alter_table('branch_officer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('password_hash', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('locked_until', api.core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_branch_officer_email'), ['email'])



def downgrade() -> None:
    with op.batch_alter_table('branch_officer', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_branch_officer_email'), type_='unique')
        batch_op.drop_column('locked_until')
        batch_op.drop_column('failed_logins')
        batch_op.drop_column('password_hash')
        batch_op.drop_column('email')

    with op.batch_alter_table('console_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_session_officer_id'))
        batch_op.drop_index(batch_op.f('ix_console_session_expires_at'))

    op.drop_table('console_session')
    with op.batch_alter_table('console_login_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_login_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_console_login_attempt_address'))

    op.drop_table('console_login_attempt')
    op.drop_table('branch_officer_branch')
