"""rulebook editing

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 15:49:17.420521
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('catalog_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.bulk_insert(sa.table('catalog_state', sa.column('id', sa.Integer), sa.column('generation', sa.Integer)),
                   [{'id': 1, 'generation': 0}])
    with op.batch_alter_table('obligations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('generation', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index('ix_obligations_source_generation', ['source_subject', 'generation'], unique=False)
    op.create_table('rulebook_changes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('revision', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('at', sa.String(length=32), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('effective_from', sa.String(length=10), nullable=True),
    sa.Column('diff', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('rulebook_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rulebook_changes_name'), ['name'], unique=False)

    with op.batch_alter_table('rulebook_revisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('source', sa.String(length=16), nullable=False, server_default='disk'))
        batch_op.add_column(sa.Column('published_at', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('published_by', sa.String(length=100), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('obligations', schema=None) as batch_op:
        batch_op.drop_index('ix_obligations_source_generation')
        batch_op.drop_column('generation')
    op.drop_table('catalog_state')
    with op.batch_alter_table('rulebook_revisions', schema=None) as batch_op:
        batch_op.drop_column('published_by')
        batch_op.drop_column('published_at')
        batch_op.drop_column('source')
        batch_op.drop_column('parent')

    with op.batch_alter_table('rulebook_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rulebook_changes_name'))

    op.drop_table('rulebook_changes')
