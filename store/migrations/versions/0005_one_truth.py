"""one truth across processes: generation numbers handed out by the database, rulebook heads,
the rebuilds' progress

`catalog_state.allocated` is the highest generation number any rebuild has taken: a rebuild
takes the next one in a write transaction, so two processes never build into the same number
(and a rebuild that died leaves its number unused, never reused). `rulebook_heads` holds each
rulebook's head revision; an edit moves it with a conditional UPDATE (If-Match as a
compare-and-swap in the database) and a new rulebook claims its name with an INSERT.
`rebuilds` holds each full re-materialisation's progress, for any process to show.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 18:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('catalog_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('allocated', sa.Integer(), nullable=False, server_default='0'))
    op.execute("UPDATE catalog_state SET allocated = generation")
    op.create_table('rulebook_heads',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('revision', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('rebuilds',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('rulebooks', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.String(length=32), nullable=False),
    sa.Column('updated_at', sa.String(length=32), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    # each rulebook's head was its newest revision row
    op.execute("INSERT INTO rulebook_heads (name, revision) SELECT r.name, r.revision FROM rulebook_revisions AS r "
               "WHERE r.id = (SELECT MAX(n.id) FROM rulebook_revisions AS n WHERE n.name = r.name)")


def downgrade() -> None:
    op.drop_table('rebuilds')
    op.drop_table('rulebook_heads')
    with op.batch_alter_table('catalog_state', schema=None) as batch_op:
        batch_op.drop_column('allocated')
