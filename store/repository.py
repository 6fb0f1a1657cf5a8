"""Reading and writing subjects, records and materialised obligations.

Writes are bulk Core statements (an import of a million subjects must not build a million
ORM objects); reads that answer an eligibility check are single indexed queries.
"""
from __future__ import annotations

import json

from datetime import datetime, timezone
from typing import Iterable, Iterator

from sqlalchemy import JSON, Engine, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from engine.bundle import Bundle, Record, Subject as BundleSubject
from engine.timeline import ObligationInterval

from .driver import driver_cursor, param_mark
from .changefeed import diff_obligations, obligation_key
from .models import CatalogState, ObligationChange, ObligationRow, RecordRow, Subject

__all__ = ["Repository", "now_iso"]

_RECORD_FIELDS = ("kind", "list", "scheme", "grade", "severity", "category", "type", "other", "status", "start",
                  "expires_on", "status_on", "department", "document")


_DIFF_COLUMNS = (ObligationRow.obligation_key, ObligationRow.source_subject, ObligationRow.target_code,
                 ObligationRow.target_relation, ObligationRow.measure, ObligationRow.rule, ObligationRow.department,
                 ObligationRow.status, ObligationRow.effects, ObligationRow.provenance, ObligationRow.valid_from,
                 ObligationRow.valid_until)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _record(r) -> Record:
    key = {"list_entry": r.list, "rating": r.scheme, "penalty": r.severity}.get(r.kind)
    return Record(id=r.record_id, kind=r.kind, status=r.status, start=r.start, key=key, list=r.list, scheme=r.scheme,
                  grade=r.grade, severity=r.severity, category=r.category, type=r.type, other=r.other,
                  department=r.department, document=r.document, expires_on=r.expires_on, status_on=r.status_on)


def bulk_insert(connection, table, rows: list[dict]) -> None:
    """INSERT many rows through the driver's executemany, JSON serialised once here.

    SQLAlchemy's per-row parameter processing cost about 100 µs a row, most of an import's
    database time; the driver does the same work in a few µs. Every row must have the same keys.
    """
    if not rows:
        return
    columns = list(rows[0])
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    quote = connection.dialect.identifier_preparer.quote
    if connection.dialect.name == "sqlite":
        marks = ", ".join("?" for _ in columns)
    else:
        marks = ", ".join("%s::json" if name in json_columns else "%s" for name in columns)
    sql = f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) VALUES ({marks})"
    dumps = json.dumps
    data = [tuple(dumps(row[name], ensure_ascii=False) if name in json_columns else row[name] for name in columns)
            for row in rows]
    connection.exec_driver_sql(sql, data)


def _upsert(engine: Engine, table, rows: list[dict], keys: list[str]) -> None:
    if not rows:
        return
    dialect = sqlite if engine.dialect.name == "sqlite" else postgresql
    statement = dialect.insert(table)
    update = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    statement = statement.on_conflict_do_update(index_elements=keys, set_=update)
    with engine.begin() as connection:
        connection.execute(statement, rows)


class Repository:
    def __init__(self, engine: Engine):
        self.engine = engine

    # -- subjects and records ----------------------------------------------------------------
    def save_bundles(self, bundles: list[Bundle]) -> set[str]:
        """Upsert subjects and their records (idempotent by record id). Returns the codes touched."""
        stamp = now_iso()
        subjects: dict[str, dict] = {}
        records: dict[tuple[str, str], dict] = {}
        for bundle in bundles:
            for item in [bundle, *bundle.related]:
                s = item.subject
                known = subjects.get(s.code)
                if known is None or (s.name and not known["name"]):
                    subjects[s.code] = {"code": s.code, "kind": s.kind, "name": s.name, "updated_at": stamp}
                for r in item.records:
                    row = {"subject_code": s.code, "record_id": r.id, "raw": r.to_dict()}
                    row.update({f: getattr(r, f) for f in _RECORD_FIELDS})
                    records[(s.code, r.id)] = row
        _upsert(self.engine, Subject.__table__, list(subjects.values()), ["code"])
        _upsert(self.engine, RecordRow.__table__, list(records.values()), ["subject_code", "record_id"])
        return set(subjects)

    def load_bundle(self, code: str) -> Bundle | None:
        return self.load_bundles([code]).get(code)

    def load_bundles(self, codes: Iterable[str]) -> dict[str, Bundle]:
        """Bundles of many subjects in three queries (subjects, records, linked subjects)."""
        codes = list(dict.fromkeys(codes))
        if not codes:
            return {}
        with self.engine.connect() as c:
            subjects = {}
            rows_by_subject: dict[str, list] = {}
            for start in range(0, len(codes), 900):
                chunk = codes[start:start + 900]
                subjects.update({s.code: s for s in c.execute(select(Subject).where(Subject.code.in_(chunk)))})
                for r in c.execute(select(RecordRow).where(RecordRow.subject_code.in_(chunk))
                                   .order_by(RecordRow.subject_code, RecordRow.record_id)):
                    rows_by_subject.setdefault(r.subject_code, []).append(r)
            others = {r.other for rows in rows_by_subject.values() for r in rows if r.kind == "relation" and r.other}
            related = {}
            others = list(others)
            for start in range(0, len(others), 900):
                related.update({s.code: s for s in c.execute(select(Subject).where(Subject.code.in_(others[start:start + 900])))})
        bundles = {}
        for code, subject in subjects.items():
            rows = rows_by_subject.get(code, [])
            records = [_record(r) for r in rows]
            linked = [Bundle(subject=BundleSubject(related[r.other].code, related[r.other].kind, related[r.other].name),
                             records=[])
                      for r in rows if r.kind == "relation" and r.other in related]
            bundles[code] = Bundle(subject=BundleSubject(subject.code, subject.kind, subject.name), records=records,
                                   related=linked)
        return bundles

    def subject(self, code: str) -> dict | None:
        bundle = self.load_bundle(code)
        if bundle is None:
            return None
        return {"subject": bundle.subject.to_dict(), "records": [r.to_dict() for r in bundle.records],
                "related": [b.subject.to_dict() for b in bundle.related]}

    def linked_codes(self, codes: Iterable[str]) -> set[str]:
        """Subjects linked to `codes` by a relation record, in either direction."""
        codes = set(codes)
        if not codes:
            return set()
        with self.engine.connect() as c:
            pointing_in = c.execute(select(RecordRow.subject_code).where(RecordRow.kind == "relation",
                                                                         RecordRow.other.in_(codes))).scalars()
            pointing_out = c.execute(select(RecordRow.other).where(RecordRow.kind == "relation",
                                                                   RecordRow.subject_code.in_(codes))).scalars()
            return (set(pointing_in) | {o for o in pointing_out if o}) - codes

    def codes_with_records(self, batch: int = 5000) -> Iterator[list[str]]:
        """All subject codes that have at least one record, in batches (for full re-materialisation)."""
        last = ""
        while True:
            with self.engine.connect() as c:
                rows = c.execute(select(Subject.code).where(Subject.code > last).order_by(Subject.code).limit(batch)).scalars().all()
            if not rows:
                return
            yield rows
            last = rows[-1]

    def count_subjects(self) -> int:
        with self.engine.connect() as c:
            return c.execute(select(func.count()).select_from(Subject)).scalar_one()

    # -- obligations ---------------------------------------------------------------------------
    def replace_obligations(self, sources: Iterable[str], intervals: list[ObligationInterval],
                            record_details: dict[tuple[str, str], dict], generation: int | None = None,
                            cause: dict | None = None) -> None:
        """Swap the obligations caused by `sources` for `intervals`, in one transaction.

        Without `generation`, the rows go to the generation that answers checks now; a full
        rebuild passes the next generation and switches to it at the end (switch_generation).
        Either way the difference from the rows answering checks now goes to the change feed
        (store/changefeed.py), tagged with `cause`; a rebuild's entries are stamped at the switch.
        """
        sources = list(sources)
        rows = []
        for i in intervals:
            rows.append({
                "source_subject": i.source_subject, "target_code": i.target_code, "target_relation": i.target_relation,
                "measure": i.measure, "kind": i.kind, "department": i.department, "department_name": i.department_name,
                "rule": i.rule, "rulebook": i.rulebook, "revision": i.revision, "status": i.status,
                "effects": i.effects, "activities": "," + ",".join(e["activity"] for e in i.effects) + ",",
                "provenance": {
                    "records": [record_details.get((i.source_subject, rid), {"id": rid}) for rid in i.records],
                    "basis": i.basis, "suspended_by": i.suspended_by, "assigned_as": i.assigned_as,
                    "target_name": i.target_name, "ended_by": i.ended_by, "ended_by_record": i.ended_by_record,
                },
                "valid_from": i.valid_from, "valid_until": i.valid_until,
                "obligation_key": obligation_key(i.source_subject, i.target_code, i.measure, i.rule),
            })
        with self.engine.begin() as c:
            current = c.execute(select(CatalogState.generation).where(CatalogState.id == 1)).scalar_one()
            old = []
            for start in range(0, len(sources), 500):
                old.extend(dict(r._mapping) for r in c.execute(
                    select(*_DIFF_COLUMNS).where(ObligationRow.generation == current,
                                                 ObligationRow.source_subject.in_(sources[start:start + 500]))))
            if generation is None:
                generation = current
                for start in range(0, len(sources), 500):
                    c.execute(delete(ObligationRow).where(ObligationRow.generation == generation,
                                                          ObligationRow.source_subject.in_(sources[start:start + 500])))
            for row in rows:
                row["generation"] = generation
            bulk_insert(c, ObligationRow.__table__, rows)
            stamp = now_iso() if generation == current else ""
            changes = diff_obligations(old, rows, at=stamp, generation=generation, cause=cause)
            bulk_insert(c, ObligationChange.__table__, changes)

    def generation(self) -> int:
        with self.engine.connect() as c:
            return c.execute(select(CatalogState.generation).where(CatalogState.id == 1)).scalar_one()

    def switch_generation(self, new: int) -> None:
        """Make generation `new` answer checks (one small transaction), then drop the others."""
        with self.engine.begin() as c:
            c.execute(CatalogState.__table__.update().where(CatalogState.id == 1).values(generation=new))
            # the rebuild's change-feed entries become visible with the generation they describe
            c.execute(ObligationChange.__table__.update().where(ObligationChange.generation == new,
                                                                ObligationChange.at == "").values(at=now_iso()))
            c.execute(delete(ObligationChange).where(ObligationChange.generation != new, ObligationChange.at == ""))
        with self.engine.begin() as c:
            c.execute(delete(ObligationRow).where(ObligationRow.generation != new))

    @staticmethod
    def _current_generation():
        return select(CatalogState.generation).where(CatalogState.id == 1).scalar_subquery()

    @staticmethod
    def _in_force(as_of: str):
        return (ObligationRow.valid_from <= as_of) & or_(ObligationRow.valid_until.is_(None),
                                                         ObligationRow.valid_until > as_of)

    def obligations_for(self, target: str, as_of: str, activity: str | None = None) -> list[dict]:
        """The target's obligations in force on `as_of` (for one activity, if given)."""
        return self.check_reads(target, as_of, activity)[0]

    def check_reads(self, target: str, as_of: str, activity: str | None = None) -> tuple[list[dict], bool]:
        """What an eligibility check reads: the target's obligations in force on `as_of` (for one
        activity, if given), and whether the store knows the target at all.

        Every check pays for this, so it is one statement on a pooled DB-API connection
        (store/driver.py), in autocommit: through SQLAlchemy's ORM row machinery the read cost
        360 µs, through exec_driver_sql 60 µs, here ~20 µs on SQLite (index
        ix_obligations_target); on PostgreSQL one round trip instead of four. The subject is
        joined from a one-row select so that a known subject without obligations still
        returns a row (with NULL obligation columns).
        """
        sql = self._check_sql()
        with driver_cursor(self.engine, reads_only=True) as cursor:
            cursor.execute(sql, (target, target, as_of, as_of))
            names = [d[0] for d in cursor.description]
            fetched = cursor.fetchall()
        rows = [dict(zip(names[1:], row[1:])) for row in fetched if row[1] is not None]  # row[1]: o.id
        known = bool(rows) or any(row[0] for row in fetched)
        if activity is not None:  # a subject has few obligations: filtering here beats a LIKE in SQL
            needle = f",{activity},"
            rows = [row for row in rows if needle in row["activities"]]
        for row in rows:
            for name in ("effects", "provenance"):
                if isinstance(row[name], str):  # SQLite returns JSON as text, PostgreSQL decoded
                    row[name] = json.loads(row[name])
        return rows, known

    def _check_sql(self) -> str:
        cache = self.__dict__.setdefault("_sql_cache", {})
        if not cache:
            mark = param_mark(self.engine)
            columns = ", ".join(f"o.{c.name}" for c in ObligationRow.__table__.columns)
            cache["check"] = (
                f"SELECT s.code IS NOT NULL AS known, {columns} FROM (SELECT 1 AS one) AS q "
                f"LEFT JOIN subjects AS s ON s.code = {mark} "
                f"LEFT JOIN obligations AS o ON o.target_code = {mark} "
                f"AND o.generation = (SELECT generation FROM catalog_state WHERE id = 1) "
                f"AND o.valid_from <= {mark} AND (o.valid_until IS NULL OR o.valid_until > {mark}) ORDER BY o.id")
            cache["known"] = f"SELECT 1 FROM subjects WHERE code = {mark}"
        return cache["check"]

    def obligations_for_department(self, department: str, as_of: str, limit: int = 1000, offset: int = 0) -> list[dict]:
        query = (select(ObligationRow).where(ObligationRow.generation == self._current_generation(),
                                             ObligationRow.department == department, self._in_force(as_of))
                 .order_by(ObligationRow.target_code, ObligationRow.measure).limit(limit).offset(offset))
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(query)]

    def known(self, code: str) -> bool:
        self._check_sql()
        with driver_cursor(self.engine, reads_only=True) as cursor:
            cursor.execute(self._sql_cache["known"], (code,))
            return cursor.fetchone() is not None

