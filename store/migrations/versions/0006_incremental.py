"""a publish costs what it touches: obligations visible over a range of generations, records
found by what rules read

`obligations.retired_in`: the generation from which a row no longer answers (NULL: still
answers). An incremental publish writes the affected subjects' new rows into generation N and
marks their old rows `retired_in = N`, beside the rows checks read, then switches the pointer;
every other subject's rows stay as they are. The partial index finds the retired rows to delete
afterwards, and the rows of a publish that died, to restore.
`catalog_state.base`: the generation of the last full re-materialisation; rows older than it
answer nothing (a full rebuild rewrites every subject, so it need not mark every old row).
`ix_records_route`: which subjects hold records of a kind and list, scheme and grade, or
severity, the patterns a rulebook's rules read (store/affected.py).
`rebuilds.scope`: full or incremental.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 21:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_RETIRED = sa.text("retired_in IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table('obligations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retired_in', sa.Integer(), nullable=True))
        batch_op.create_index('ix_obligations_retired', ['retired_in'], unique=False,
                              sqlite_where=_RETIRED, postgresql_where=_RETIRED)
    with op.batch_alter_table('catalog_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('base', sa.Integer(), nullable=False, server_default='0'))
    # every stored row belongs to the generation in force or is a leftover a switch drops
    op.execute("UPDATE catalog_state SET base = generation")
    with op.batch_alter_table('rebuilds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scope', sa.String(length=16), nullable=False, server_default='full'))
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.create_index('ix_records_route', ['kind', 'list', 'scheme', 'severity', 'grade', 'subject_code'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rebuilds', schema=None) as batch_op:
        batch_op.drop_column('scope')
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.drop_index('ix_records_route')
    with op.batch_alter_table('catalog_state', schema=None) as batch_op:
        batch_op.drop_column('base')
    with op.batch_alter_table('obligations', schema=None) as batch_op:
        batch_op.drop_index('ix_obligations_retired')
        batch_op.drop_column('retired_in')
