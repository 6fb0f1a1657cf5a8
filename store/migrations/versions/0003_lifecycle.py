"""lifecycle: objections, credit repair, feedback, change feed, obligation keys

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 10:00:00
"""
import hashlib

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

PENDING = sa.text("state = 'pending'")


def _key(source_subject, target_code, measure, rule):
    # the same formula as store.changefeed.obligation_key (copied: a migration must not change
    # when application code does)
    raw = "\x1f".join((source_subject, target_code, measure, rule))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:24]


def upgrade() -> None:
    with op.batch_alter_table('obligations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('obligation_key', sa.String(length=24), nullable=False, server_default=''))
        batch_op.create_index(batch_op.f('ix_obligations_obligation_key'), ['obligation_key'], unique=False)
    # existing rows get their keys (rows written from now on carry them)
    bind = op.get_bind()
    obligations = sa.table('obligations', sa.column('id', sa.Integer), sa.column('source_subject', sa.String),
                           sa.column('target_code', sa.String), sa.column('measure', sa.String),
                           sa.column('rule', sa.String), sa.column('obligation_key', sa.String))
    last = 0
    while True:
        rows = bind.execute(sa.select(obligations.c.id, obligations.c.source_subject, obligations.c.target_code,
                                      obligations.c.measure, obligations.c.rule)
                            .where(obligations.c.id > last).order_by(obligations.c.id).limit(5000)).all()
        if not rows:
            break
        bind.execute(obligations.update().where(obligations.c.id == sa.bindparam('row_id'))
                     .values(obligation_key=sa.bindparam('key')),
                     [{'row_id': r.id, 'key': _key(r.source_subject, r.target_code, r.measure, r.rule)} for r in rows])
        last = rows[-1].id

    op.create_table('objections',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('subject_code', sa.String(length=18), nullable=False),
    sa.Column('record_id', sa.String(length=100), nullable=False),
    sa.Column('grounds', sa.Text(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('filed_by', sa.String(length=100), nullable=False),
    sa.Column('filed_on', sa.String(length=10), nullable=False),
    sa.Column('filed_at', sa.String(length=32), nullable=False),
    sa.Column('department', sa.String(length=64), nullable=False),
    sa.Column('deadline', sa.String(length=10), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('previous_status', sa.String(length=16), nullable=False),
    sa.Column('previous_status_on', sa.String(length=10), nullable=True),
    sa.Column('decided_by', sa.String(length=100), nullable=True),
    sa.Column('decided_on', sa.String(length=10), nullable=True),
    sa.Column('decided_at', sa.String(length=32), nullable=True),
    sa.Column('reasons', sa.Text(), nullable=True),
    sa.Column('correction', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('objections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_objections_department'), ['department'], unique=False)
        batch_op.create_index(batch_op.f('ix_objections_subject_code'), ['subject_code'], unique=False)
        batch_op.create_index('uq_objections_pending', ['subject_code', 'record_id'], unique=True,
                              sqlite_where=PENDING, postgresql_where=PENDING)

    op.create_table('repair_applications',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('subject_code', sa.String(length=18), nullable=False),
    sa.Column('record_id', sa.String(length=100), nullable=False),
    sa.Column('statement', sa.Text(), nullable=False),
    sa.Column('applied_by', sa.String(length=100), nullable=False),
    sa.Column('applied_on', sa.String(length=10), nullable=False),
    sa.Column('applied_at', sa.String(length=32), nullable=False),
    sa.Column('earliest', sa.String(length=10), nullable=False),
    sa.Column('department', sa.String(length=64), nullable=False),
    sa.Column('deadline', sa.String(length=10), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('decided_by', sa.String(length=100), nullable=True),
    sa.Column('decided_on', sa.String(length=10), nullable=True),
    sa.Column('decided_at', sa.String(length=32), nullable=True),
    sa.Column('reasons', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('repair_applications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repair_applications_department'), ['department'], unique=False)
        batch_op.create_index(batch_op.f('ix_repair_applications_subject_code'), ['subject_code'], unique=False)
        batch_op.create_index('uq_repairs_pending', ['subject_code', 'record_id'], unique=True,
                              sqlite_where=PENDING, postgresql_where=PENDING)

    op.create_table('lifecycle_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.String(length=32), nullable=False),
    sa.Column('case_kind', sa.String(length=16), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('subject_code', sa.String(length=18), nullable=False),
    sa.Column('record_id', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('department', sa.String(length=64), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('lifecycle_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lifecycle_events_subject_code'), ['subject_code'], unique=False)

    op.create_table('obligation_feedback',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('obligation_key', sa.String(length=24), nullable=False),
    sa.Column('department', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('by', sa.String(length=100), nullable=False),
    sa.Column('at', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('obligation_feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_obligation_feedback_obligation_key'), ['obligation_key'], unique=False)

    op.create_table('obligation_changes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.String(length=32), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('department', sa.String(length=64), nullable=False),
    sa.Column('obligation_key', sa.String(length=24), nullable=False),
    sa.Column('change', sa.String(length=16), nullable=False),
    sa.Column('effective', sa.String(length=10), nullable=True),
    sa.Column('source_subject', sa.String(length=18), nullable=False),
    sa.Column('target_code', sa.String(length=18), nullable=False),
    sa.Column('measure', sa.String(length=100), nullable=False),
    sa.Column('rule', sa.String(length=100), nullable=False),
    sa.Column('ended_by', sa.String(length=32), nullable=True),
    sa.Column('before', sa.JSON(), nullable=False),
    sa.Column('after', sa.JSON(), nullable=False),
    sa.Column('cause', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('obligation_changes', schema=None) as batch_op:
        batch_op.create_index('ix_obligation_changes_department', ['department', 'at'], unique=False)
        batch_op.create_index('ix_obligation_changes_generation', ['generation', 'at'], unique=False)


def downgrade() -> None:
    for table, indexes in (('obligation_changes', ['ix_obligation_changes_generation', 'ix_obligation_changes_department']),
                           ('obligation_feedback', ['ix_obligation_feedback_obligation_key']),
                           ('lifecycle_events', ['ix_lifecycle_events_subject_code']),
                           ('repair_applications', ['uq_repairs_pending', 'ix_repair_applications_subject_code',
                                                    'ix_repair_applications_department']),
                           ('objections', ['uq_objections_pending', 'ix_objections_subject_code',
                                           'ix_objections_department'])):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for index in indexes:
                batch_op.drop_index(index)
        op.drop_table(table)
    with op.batch_alter_table('obligations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_obligations_obligation_key'))
        batch_op.drop_column('obligation_key')
