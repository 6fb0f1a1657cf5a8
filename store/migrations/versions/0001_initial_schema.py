"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 15:38:42.030380
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('department', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_prefix'), ['prefix'], unique=False)

    op.create_table('chain_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    # the decision log's chain starts from a genesis head that every append then locks
    op.bulk_insert(sa.table('chain_head', sa.column('id', sa.Integer), sa.column('seq', sa.Integer),
                            sa.column('hash', sa.String)), [{'id': 1, 'seq': 0, 'hash': '0' * 64}])
    op.create_table('decisions',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.Column('caller', sa.String(length=100), nullable=False),
    sa.Column('request', sa.JSON(), nullable=False),
    sa.Column('answer', sa.JSON(), nullable=False),
    sa.Column('revisions', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('id')
    )
    op.create_table('obligations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('source_subject', sa.String(length=18), nullable=False),
    sa.Column('target_code', sa.String(length=18), nullable=False),
    sa.Column('target_relation', sa.String(length=32), nullable=True),
    sa.Column('measure', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('department', sa.String(length=64), nullable=False),
    sa.Column('department_name', sa.String(length=100), nullable=False),
    sa.Column('rule', sa.String(length=100), nullable=False),
    sa.Column('rulebook', sa.String(length=64), nullable=False),
    sa.Column('revision', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('effects', sa.JSON(), nullable=False),
    sa.Column('activities', sa.Text(), nullable=False),
    sa.Column('provenance', sa.JSON(), nullable=False),
    sa.Column('valid_from', sa.String(length=10), nullable=False),
    sa.Column('valid_until', sa.String(length=10), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('obligations', schema=None) as batch_op:
        batch_op.create_index('ix_obligations_department', ['department', 'valid_from'], unique=False)
        batch_op.create_index(batch_op.f('ix_obligations_source_subject'), ['source_subject'], unique=False)
        batch_op.create_index('ix_obligations_target', ['target_code', 'valid_from'], unique=False)

    op.create_table('rulebook_revisions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('revision', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('effective_from', sa.String(length=10), nullable=True),
    sa.Column('author', sa.String(length=100), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('rulebook_revisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rulebook_revisions_name'), ['name'], unique=False)

    op.create_table('subjects',
    sa.Column('code', sa.String(length=18), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('updated_at', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('records',
    sa.Column('subject_code', sa.String(length=18), nullable=False),
    sa.Column('record_id', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('list', sa.String(length=64), nullable=True),
    sa.Column('scheme', sa.String(length=32), nullable=True),
    sa.Column('grade', sa.String(length=4), nullable=True),
    sa.Column('severity', sa.String(length=16), nullable=True),
    sa.Column('category', sa.String(length=64), nullable=True),
    sa.Column('type', sa.String(length=32), nullable=True),
    sa.Column('other', sa.String(length=18), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('start', sa.String(length=10), nullable=True),
    sa.Column('expires_on', sa.String(length=10), nullable=True),
    sa.Column('status_on', sa.String(length=10), nullable=True),
    sa.Column('department', sa.String(length=64), nullable=True),
    sa.Column('document', sa.String(length=200), nullable=True),
    sa.Column('raw', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['subject_code'], ['subjects.code'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subject_code', 'record_id')
    )
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.create_index('ix_records_other', ['other'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.drop_index('ix_records_other')

    op.drop_table('records')
    op.drop_table('subjects')
    with op.batch_alter_table('rulebook_revisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rulebook_revisions_name'))

    op.drop_table('rulebook_revisions')
    with op.batch_alter_table('obligations', schema=None) as batch_op:
        batch_op.drop_index('ix_obligations_target')
        batch_op.drop_index(batch_op.f('ix_obligations_source_subject'))
        batch_op.drop_index('ix_obligations_department')

    op.drop_table('obligations')
    op.drop_table('decisions')
    op.drop_table('chain_head')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_prefix'))

    op.drop_table('api_keys')
