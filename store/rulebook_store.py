"""Rulebook revisions: drafts, publications with an effective date, and the audit trail.

Revisions are never edited or deleted. The head of a rulebook is its newest revision (draft
or published); an edit must name the head it was made from (If-Match), so an edit made from
a stale copy is refused and the other person's edit is not lost. What is in force on a date
is, for each rulebook, the published revision with the latest effective_from on or before it.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select

from engine.loader import revision_of
from engine.rulebook_diff import text_diff

from .models import RulebookChange, RulebookRevision
from .repository import now_iso

__all__ = ["RevisionInfo", "RulebookStore", "StaleRevision"]


class StaleRevision(Exception):
    """The edit was made from a revision that is no longer the head."""

    def __init__(self, head: str | None):
        super().__init__(f"the rulebook has changed since; its head is now {head}")
        self.head = head


@dataclass(frozen=True)
class RevisionInfo:
    name: str
    revision: str
    text: str
    state: str
    effective_from: str | None
    author: str
    comment: str
    created_at: str
    parent: str | None
    source: str
    published_at: str | None
    published_by: str | None

    def to_dict(self, with_text: bool = False) -> dict:
        data = {k: getattr(self, k) for k in ("name", "revision", "state", "effective_from", "author", "comment",
                                               "created_at", "parent", "source", "published_at", "published_by")}
        if with_text:
            data["text"] = self.text
        return data


def _info(row) -> RevisionInfo:
    return RevisionInfo(row.name, row.revision, row.text, row.state, row.effective_from, row.author, row.comment,
                        row.created_at, row.parent, row.source, row.published_at, row.published_by)


class RulebookStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    # -- reading ------------------------------------------------------------------------------
    def _rows(self, name: str | None = None):
        query = select(RulebookRevision).order_by(RulebookRevision.id)
        if name is not None:
            query = query.where(RulebookRevision.name == name)
        with self.engine.connect() as c:
            return [_info(r) for r in c.execute(query).all()]

    def names(self) -> list[str]:
        return sorted({r.name for r in self._rows()})

    def revisions(self, name: str) -> list[RevisionInfo]:
        """Newest first."""
        return list(reversed(self._rows(name)))

    def head(self, name: str) -> RevisionInfo | None:
        rows = self._rows(name)
        return rows[-1] if rows else None

    def get(self, name: str, revision: str) -> RevisionInfo | None:
        for row in reversed(self._rows(name)):
            if row.revision == revision:
                return row
        return None

    def publications(self) -> list[RevisionInfo]:
        """Every publication (published or since superseded), oldest effective date first."""
        rows = [r for r in self._rows() if r.published_at]
        return sorted(rows, key=lambda r: (r.effective_from or "", r.published_at or ""))

    def in_force(self, day: str) -> dict[str, RevisionInfo]:
        current: dict[str, RevisionInfo] = {}
        for row in self.publications():
            if (row.effective_from or "") <= day:
                current[row.name] = row
        return current

    def known_revisions(self) -> set[tuple[str, str]]:
        return {(r.name, r.revision) for r in self._rows()}

    def changes(self, name: str | None = None) -> list[dict]:
        query = select(RulebookChange).order_by(RulebookChange.id.desc())
        if name is not None:
            query = query.where(RulebookChange.name == name)
        with self.engine.connect() as c:
            return [{k: getattr(r, k) for k in ("name", "revision", "action", "actor", "at", "comment",
                                                "effective_from", "diff")} for r in c.execute(query).all()]

    # -- writing ------------------------------------------------------------------------------
    def save_draft(self, name: str, text: str, if_match: str | None, author: str, comment: str) -> RevisionInfo:
        """Store `text` as the new head, if `if_match` is the current head. Same text: no new revision."""
        with self.engine.begin() as c:
            rows = c.execute(select(RulebookRevision).where(RulebookRevision.name == name)
                             .order_by(RulebookRevision.id.desc()).limit(1).with_for_update()).all()
            head = rows[0] if rows else None
            if head is not None and if_match != head.revision:
                raise StaleRevision(head.revision)
            revision = revision_of(text)
            if head is not None and head.revision == revision:
                return _info(head)
            stamp = now_iso()
            c.execute(RulebookRevision.__table__.insert(), {
                "name": name, "revision": revision, "text": text, "state": "draft", "effective_from": None,
                "author": author, "comment": comment, "created_at": stamp, "parent": head.revision if head else None,
                "source": "api"})
            c.execute(RulebookChange.__table__.insert(), {
                "name": name, "revision": revision, "action": "draft", "actor": author, "at": stamp, "comment": comment,
                "effective_from": None, "diff": text_diff(head.text if head else "", text,
                                                          f"{name}@{head.revision if head else 'none'}",
                                                          f"{name}@{revision}")})
        return self.get(name, revision)

    def record_publication(self, name: str, text: str, effective_from: str, actor: str, comment: str,
                           action: str = "publish", source: str = "api") -> RevisionInfo:
        """Mark a revision (adding it if new) as published from `effective_from`."""
        revision = revision_of(text)
        stamp = now_iso()
        with self.engine.begin() as c:
            previous = c.execute(select(RulebookRevision).where(RulebookRevision.name == name,
                                                                RulebookRevision.state == "published")
                                 .order_by(RulebookRevision.id.desc()).limit(1)).first()
            c.execute(RulebookRevision.__table__.insert(), {
                "name": name, "revision": revision, "text": text, "state": "published",
                "effective_from": effective_from, "author": actor, "comment": comment, "created_at": stamp,
                "parent": previous.revision if previous else None, "source": source, "published_at": stamp,
                "published_by": actor})
            c.execute(RulebookRevision.__table__.update().where(RulebookRevision.name == name,
                                                                RulebookRevision.state == "draft",
                                                                RulebookRevision.revision == revision)
                      .values(state="draft_published"))
            c.execute(RulebookChange.__table__.insert(), {
                "name": name, "revision": revision, "action": action, "actor": actor, "at": stamp, "comment": comment,
                "effective_from": effective_from,
                "diff": text_diff(previous.text if previous else "", text,
                                  f"{name}@{previous.revision if previous else 'none'}", f"{name}@{revision}")})
        return self.get(name, revision)
