"""Tables. Dates are ISO strings (YYYY-MM-DD): they compare correctly as text on every
backend, and they are what the engine and the bundles speak."""
from __future__ import annotations

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "Subject", "RecordRow", "ObligationRow", "RulebookRevision", "RulebookHead", "Rebuild", "RulebookChange",
           "Decision", "ApiKey", "ChainHead", "CatalogState", "Objection", "RepairApplication", "LifecycleEvent", "ObligationFeedback",
           "ObligationChange"]


class Base(DeclarativeBase):
    pass


class Subject(Base):
    __tablename__ = "subjects"

    code: Mapped[str] = mapped_column(String(18), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    name: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[str] = mapped_column(String(32))


class RecordRow(Base):
    __tablename__ = "records"

    subject_code: Mapped[str] = mapped_column(ForeignKey("subjects.code", ondelete="CASCADE"), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    list: Mapped[str | None] = mapped_column(String(64))
    scheme: Mapped[str | None] = mapped_column(String(32))
    grade: Mapped[str | None] = mapped_column(String(4))
    severity: Mapped[str | None] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(64))
    type: Mapped[str | None] = mapped_column(String(32))
    other: Mapped[str | None] = mapped_column(String(18))
    status: Mapped[str] = mapped_column(String(16))
    start: Mapped[str | None] = mapped_column(String(10))
    expires_on: Mapped[str | None] = mapped_column(String(10))
    status_on: Mapped[str | None] = mapped_column(String(10))
    department: Mapped[str | None] = mapped_column(String(64))
    document: Mapped[str | None] = mapped_column(String(200))
    raw: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_records_other", "other"),
        # which subjects hold what a rulebook's rules read (store/affected.py): a publish finds
        # the subjects it can affect from this index alone
        Index("ix_records_route", "kind", "list", "scheme", "severity", "grade", "subject_code"),
    )


class ObligationRow(Base):
    """One materialised obligation: an action unchanged over [valid_from, valid_until)."""

    __tablename__ = "obligations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_subject: Mapped[str] = mapped_column(String(18))  # whose records caused it (indexed with generation)
    target_code: Mapped[str] = mapped_column(String(18))
    target_relation: Mapped[str | None] = mapped_column(String(32))
    measure: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    department: Mapped[str] = mapped_column(String(64))
    department_name: Mapped[str] = mapped_column(String(100))
    rule: Mapped[str] = mapped_column(String(100))
    rulebook: Mapped[str] = mapped_column(String(64))
    revision: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    effects: Mapped[list] = mapped_column(JSON)
    activities: Mapped[str] = mapped_column(Text)  # ",a,b," for a cheap LIKE filter
    provenance: Mapped[dict] = mapped_column(JSON)  # records, basis, suspended_by, assigned_as, names
    valid_from: Mapped[str] = mapped_column(String(10))
    valid_until: Mapped[str | None] = mapped_column(String(10))
    generation: Mapped[int] = mapped_column(Integer, default=0)  # the first generation it answers in (CatalogState)
    retired_in: Mapped[int | None] = mapped_column(Integer)  # the first it no longer answers in (None: still does)
    # the same duty across re-materialisations: hash of source_subject, target_code, measure, rule
    obligation_key: Mapped[str] = mapped_column(String(24), default="", index=True)

    __table_args__ = (
        Index("ix_obligations_target", "target_code", "valid_from"),
        Index("ix_obligations_department", "department", "valid_from"),
        # replace_obligations deletes by source subject within a generation: without this index
        # SQLite picked a generation scan (42 ms per 500 subjects instead of 3.5 ms)
        Index("ix_obligations_source_generation", "source_subject", "generation"),
        # the rows an incremental publish retired (deleted after its switch) or would have
        # retired (restored when it died half-way): few at any time, so a partial index
        Index("ix_obligations_retired", "retired_in", sqlite_where=text("retired_in IS NOT NULL"),
              postgresql_where=text("retired_in IS NOT NULL")),
    )


class CatalogState(Base):
    """Which generation of obligations answers checks. A publish writes the rows of the subjects
    it re-materialises into a new generation beside the old ones (retiring their old rows from
    it) and switches this row in one transaction, together with the publications it applies,
    so readers see the old catalog's obligations or the new one's, never a mixture, and every
    process can tell from `generation` alone whether the catalog it compiled is still the one
    in force. A row answers in generation G when base <= its generation <= G and it is not
    retired by G (store/repository.py _ANSWERING_SQL)."""

    __tablename__ = "catalog_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer)
    allocated: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # highest number handed out
    # the generation of the last full re-materialisation: rows of older generations answer nothing
    base: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Rebuild(Base):
    """One re-materialisation (a publish, a rollback, rulebooks loaded from disk), of every
    subject or of those the change can affect, with its progress, written by the process doing it so that any process can show it.
    A rebuild that died (its process killed) is marked `abandoned` by the next start: the
    generation it was building never answered a check."""

    __tablename__ = "rebuilds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # publish | rollback | load
    scope: Mapped[str] = mapped_column(String(16), default="full", server_default="full")  # full | incremental
    rulebooks: Mapped[str] = mapped_column(Text)  # name@revision from effective_from, comma-separated
    actor: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16))  # running | done | failed | abandoned
    total: Mapped[int] = mapped_column(Integer)  # subjects to re-materialise
    done: Mapped[int] = mapped_column(Integer, default=0)
    generation: Mapped[int | None] = mapped_column(Integer)  # in force once done
    started_at: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")


class RulebookHead(Base):
    """Each rulebook's head revision: an edit moves it with a conditional UPDATE (If-Match as a
    compare-and-swap in the database); a new rulebook claims its name by inserting it."""

    __tablename__ = "rulebook_heads"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    revision: Mapped[str] = mapped_column(String(16))


class RulebookRevision(Base):
    __tablename__ = "rulebook_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    revision: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))  # draft | published | retired
    effective_from: Mapped[str | None] = mapped_column(String(10))
    author: Mapped[str] = mapped_column(String(100), default="system")
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[str] = mapped_column(String(32))
    parent: Mapped[str | None] = mapped_column(String(16))  # the revision this draft was edited from
    source: Mapped[str] = mapped_column(String(16), default="api")  # api | disk
    published_at: Mapped[str | None] = mapped_column(String(32))
    published_by: Mapped[str | None] = mapped_column(String(100))


class RulebookChange(Base):
    """Who changed which rulebook, when, how (the diff) and why (the comment): read by auditors."""

    __tablename__ = "rulebook_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    revision: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))  # draft | publish | rollback | load
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str] = mapped_column(Text, default="")
    effective_from: Mapped[str | None] = mapped_column(String(10))
    diff: Mapped[str] = mapped_column(Text, default="")


class Decision(Base):
    """The append-only decision log; each entry's hash covers the previous one's."""

    __tablename__ = "decisions"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    created_at: Mapped[str] = mapped_column(String(32))
    caller: Mapped[str] = mapped_column(String(100))
    request: Mapped[dict] = mapped_column(JSON)
    answer: Mapped[dict] = mapped_column(JSON)
    revisions: Mapped[dict] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ChainHead(Base):
    """The one row every decision append locks, so concurrent workers extend the chain in turn."""

    __tablename__ = "chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(String(12), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(32))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


# -- the lifecycle of a record (store/lifecycle.py, store/feedback.py) ----------------------------
_PENDING = "state = 'pending'"


class Objection(Base):
    """An objection (异议) to one record: the record is disputed from filed_on until a decision."""

    __tablename__ = "objections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_code: Mapped[str] = mapped_column(String(18), index=True)
    record_id: Mapped[str] = mapped_column(String(100))
    grounds: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list] = mapped_column(JSON)
    filed_by: Mapped[str] = mapped_column(String(100))
    filed_on: Mapped[str] = mapped_column(String(10))
    filed_at: Mapped[str] = mapped_column(String(32))
    department: Mapped[str] = mapped_column(String(64), index=True)  # the queue it waits in
    deadline: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(16))  # pending | upheld | rejected
    previous_status: Mapped[str] = mapped_column(String(16))
    previous_status_on: Mapped[str | None] = mapped_column(String(10))
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_on: Mapped[str | None] = mapped_column(String(10))
    decided_at: Mapped[str | None] = mapped_column(String(32))
    reasons: Mapped[str | None] = mapped_column(Text)
    correction: Mapped[dict | None] = mapped_column(JSON)

    __table_args__ = (Index("uq_objections_pending", "subject_code", "record_id", unique=True,
                            sqlite_where=text(_PENDING), postgresql_where=text(_PENDING)),)


class RepairApplication(Base):
    """An application for credit repair (信用修复) of one record."""

    __tablename__ = "repair_applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_code: Mapped[str] = mapped_column(String(18), index=True)
    record_id: Mapped[str] = mapped_column(String(100))
    statement: Mapped[str] = mapped_column(Text)
    applied_by: Mapped[str] = mapped_column(String(100))
    applied_on: Mapped[str] = mapped_column(String(10))
    applied_at: Mapped[str] = mapped_column(String(32))
    earliest: Mapped[str] = mapped_column(String(10))  # record start + publication_min
    department: Mapped[str] = mapped_column(String(64), index=True)
    deadline: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(16))  # pending | approved | refused
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_on: Mapped[str | None] = mapped_column(String(10))
    decided_at: Mapped[str | None] = mapped_column(String(32))
    reasons: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("uq_repairs_pending", "subject_code", "record_id", unique=True,
                            sqlite_where=text(_PENDING), postgresql_where=text(_PENDING)),)


class LifecycleEvent(Base):
    """Every step of an objection or a repair, append-only: filed, upheld, rejected, applied, ..."""

    __tablename__ = "lifecycle_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[str] = mapped_column(String(32))
    case_kind: Mapped[str] = mapped_column(String(16))  # objection | repair
    case_id: Mapped[int] = mapped_column(Integer)
    subject_code: Mapped[str] = mapped_column(String(18), index=True)
    record_id: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    department: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(JSON)


class ObligationFeedback(Base):
    """A department's report on one obligation (append-only; the latest per key counts)."""

    __tablename__ = "obligation_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    obligation_key: Mapped[str] = mapped_column(String(24), index=True)
    department: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # applied | not_applicable
    note: Mapped[str] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String(100))
    at: Mapped[str] = mapped_column(String(32))


class ObligationChange(Base):
    """One entry of a department's change feed: an obligation added, lifted or changed.

    Written when obligations are replaced. Entries of a full rebuild carry the new generation
    and an empty `at` until the switch to it stamps them, so a poller never sees changes of a
    catalog that is not answering checks yet.
    """

    __tablename__ = "obligation_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[str] = mapped_column(String(32))
    generation: Mapped[int] = mapped_column(Integer)
    department: Mapped[str] = mapped_column(String(64))
    obligation_key: Mapped[str] = mapped_column(String(24))
    change: Mapped[str] = mapped_column(String(16))  # added | lifted | changed
    effective: Mapped[str | None] = mapped_column(String(10))  # first date the change bears on
    source_subject: Mapped[str] = mapped_column(String(18))
    target_code: Mapped[str] = mapped_column(String(18))
    measure: Mapped[str] = mapped_column(String(100))
    rule: Mapped[str] = mapped_column(String(100))
    ended_by: Mapped[str | None] = mapped_column(String(32))
    before: Mapped[list] = mapped_column(JSON)
    after: Mapped[list] = mapped_column(JSON)
    cause: Mapped[dict | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_obligation_changes_department", "department", "at"),
                      Index("ix_obligation_changes_generation", "generation", "at"))
