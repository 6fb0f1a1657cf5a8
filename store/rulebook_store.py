"""Rulebook revisions: drafts, publications with an effective date, and the audit trail.

Revisions are never edited or deleted. The head of a rulebook is the revision its row in
rulebook_heads names (its newest draft or publication); an edit must name the head it was made
from (If-Match), and the head moves only by a compare-and-swap in the database, so an edit
made from a stale copy is refused, in whichever process it arrives, and the other person's
edit is not lost. What is in force on a date
is, for each rulebook, the published revision with the latest effective_from on or before it.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError

from engine.loader import revision_of
from engine.rulebook_diff import text_diff

from .models import CatalogState, RulebookChange, RulebookHead, RulebookRevision
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
        """The revision rulebook_heads names (its newest row: a revision may be stored as a
        draft and again as a publication)."""
        with self.engine.connect() as c:
            revision = self._head_revision(c, name)
            row = self._newest(c, name, revision) if revision is not None else None
        return _info(row) if row is not None else None

    def get(self, name: str, revision: str) -> RevisionInfo | None:
        for row in reversed(self._rows(name)):
            if row.revision == revision:
                return row
        return None

    def publications(self) -> list[RevisionInfo]:
        """Every publication (published or since superseded), oldest effective date first."""
        rows = [r for r in self._rows() if r.published_at]
        return sorted(rows, key=lambda r: (r.effective_from or "", r.published_at or ""))

    def in_force_with_generation(self) -> tuple[int, list[RevisionInfo]]:
        """The generation answering checks and the publications it was built from, as one
        consistent pair: publications are written only in the transaction that switches the
        generation, and generations only grow, so publications read between two equal
        readings of the generation are exactly that generation's (PostgreSQL's READ
        COMMITTED gives each statement its own snapshot; this needs no stricter isolation)."""
        while True:
            before = self._generation()
            publications = self.publications()
            if self._generation() == before:
                return before, publications

    def _generation(self) -> int:
        with self.engine.connect() as c:
            return c.execute(select(CatalogState.generation).where(CatalogState.id == 1)).scalar_one()

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
        """Store `text` as the new head, if `if_match` is the current head (None: the rulebook is
        new). Same text as the head: no new revision.

        The head moves by a compare-and-swap in the database, as the first statement of the
        transaction: `UPDATE rulebook_heads ... WHERE revision = if_match` (a new rulebook:
        an INSERT of its name). Of two edits made from the same head, in any processes, the
        database lets exactly one through; the other finds no row to update (or a name
        already taken) and is refused with the head it lost to.
        """
        revision = revision_of(text)
        heads = RulebookHead.__table__
        try:
            with self.engine.begin() as c:
                if if_match is None:
                    c.execute(heads.insert(), {"name": name, "revision": revision})
                    parent = None
                elif c.execute(heads.update().where(heads.c.name == name, heads.c.revision == if_match)
                               .values(revision=revision)).rowcount != 1:
                    raise StaleRevision(self._head_revision(c, name))
                else:
                    parent = self._newest(c, name, if_match)
                    if revision == if_match:  # nothing changed: the head stays as it is
                        return _info(parent)
                stamp = now_iso()
                c.execute(RulebookRevision.__table__.insert(), {
                    "name": name, "revision": revision, "text": text, "state": "draft", "effective_from": None,
                    "author": author, "comment": comment, "created_at": stamp, "parent": if_match,
                    "source": "api"})
                c.execute(RulebookChange.__table__.insert(), {
                    "name": name, "revision": revision, "action": "draft", "actor": author, "at": stamp,
                    "comment": comment, "effective_from": None,
                    "diff": text_diff(parent.text if parent else "", text, f"{name}@{if_match or 'none'}",
                                      f"{name}@{revision}")})
        except IntegrityError:  # the name was claimed meanwhile: somebody else created the rulebook
            head = self.head(name)
            raise StaleRevision(head.revision if head else None) from None
        return self.head(name)

    def write_publication(self, c: Connection, name: str, text: str, effective_from: str, actor: str, comment: str,
                          action: str = "publish", source: str = "api", stamp: str | None = None) -> None:
        """Mark a revision (adding it if new) as published from `effective_from`, on `c`: the
        transaction that switches the obligations to the generation built with it
        (Repository.switch_generation), so that no process sees the one without the other."""
        revision = revision_of(text)
        stamp = stamp or now_iso()
        previous = c.execute(select(RulebookRevision).where(RulebookRevision.name == name,
                                                            RulebookRevision.state == "published")
                             .order_by(RulebookRevision.id.desc()).limit(1)).first()
        heads = RulebookHead.__table__
        if not c.execute(heads.update().where(heads.c.name == name).values(revision=revision)).rowcount:
            c.execute(heads.insert(), {"name": name, "revision": revision})
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

    @staticmethod
    def _head_revision(c: Connection, name: str) -> str | None:
        return c.execute(select(RulebookHead.revision).where(RulebookHead.name == name)).scalar()

    @staticmethod
    def _newest(c: Connection, name: str, revision: str):
        return c.execute(select(RulebookRevision).where(RulebookRevision.name == name,
                                                        RulebookRevision.revision == revision)
                         .order_by(RulebookRevision.id.desc()).limit(1)).first()
