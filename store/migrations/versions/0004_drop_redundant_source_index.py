"""drop ix_obligations_source_subject: ix_obligations_source_generation starts with the same column

Every query that used the single-column index can use the two-column one, and every obligation
written paid for keeping both (an import of 100k subjects: 11.7 -> 9.7 µs per obligation row
without it, measured with a 1 GiB page cache).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 20:00:00
"""
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('obligations', schema=None) as batch_op:
        batch_op.drop_index('ix_obligations_source_subject')


def downgrade() -> None:
    with op.batch_alter_table('obligations', schema=None) as batch_op:
        batch_op.create_index('ix_obligations_source_subject', ['source_subject'], unique=False)
