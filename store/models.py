"""Tables. Dates are ISO strings (YYYY-MM-DD): they compare correctly as text on every
backend, and they are what the engine and the bundles speak."""
from __future__ import annotations

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "Subject", "RecordRow", "ObligationRow", "RulebookRevision", "RulebookChange", "Decision", "ApiKey", "ChainHead", "CatalogState"]


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

    __table_args__ = (Index("ix_records_other", "other"),)


class ObligationRow(Base):
    """One materialised obligation: an action unchanged over [valid_from, valid_until)."""

    __tablename__ = "obligations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_subject: Mapped[str] = mapped_column(String(18), index=True)  # whose records caused it
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
    generation: Mapped[int] = mapped_column(Integer, default=0)  # see CatalogState

    __table_args__ = (
        Index("ix_obligations_target", "target_code", "valid_from"),
        Index("ix_obligations_department", "department", "valid_from"),
        Index("ix_obligations_generation_target", "generation", "target_code"),
    )


class CatalogState(Base):
    """Which generation of obligations answers checks. A full re-materialisation (a publish)
    writes a new generation beside the old one and switches this row in one transaction,
    so readers see the old catalog's obligations or the new one's, never a mixture."""

    __tablename__ = "catalog_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer)


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
