"""Reading and writing subjects, records and materialised obligations.

Writes and the reads that materialising does are driver-level statements over many rows
(store/bulk.py): an import of a million subjects must not build a million ORM objects nor pay
SQLAlchemy's per-row parameter processing. Reads that answer an eligibility check are single
indexed queries.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from operator import itemgetter
from typing import Callable, Iterable, Iterator, NamedTuple

import sqlalchemy.exc
from sqlalchemy import Connection, Engine, case, delete, func, or_, select

from engine.bundle import Bundle, Record, Subject as BundleSubject
from engine.jsontext import loads

from .driver import param_mark, read
from .bulk import dumps, insert_many, select_in, upsert_many
from .changefeed import diff_obligations
from .models import CatalogState, ObligationChange, ObligationRow, RecordRow, Subject
from .rows import CHANGE_COLUMNS, OBLIGATION_COLUMNS, Materialised, as_dicts

log = logging.getLogger("jointcredit.store")

__all__ = ["Repository", "Saved", "BundleRows", "CheckRead", "GenerationConflict", "bundle_of", "now_iso",
           "CATALOG_CHANNEL"]

# The PostgreSQL channel a generation switch notifies (store/catalog_watch.py listens on it).
CATALOG_CHANNEL = "jointcredit_catalog"
DROP_BATCH = 2000  # obligation ids per transaction when a replaced generation is deleted
# Which rows answer checks in generation G, with base B (CatalogState): those written in a
# generation from B (the last full rebuild) to G, and not retired by a generation up to G.
# Parameters: B, G, G.
_ANSWERING_SQL = ("{table}.generation >= {mark} AND {table}.generation <= {mark} "
                  "AND ({table}.retired_in IS NULL OR {table}.retired_in > {mark})")

_RECORD_FIELDS = ("kind", "list", "scheme", "grade", "severity", "category", "type", "other", "status", "start",
                  "expires_on", "status_on", "department", "document")


_SUBJECT_COLUMNS = ("code", "kind", "name", "updated_at")
_RECORD_COLUMNS = ("subject_code", "record_id", "raw", *_RECORD_FIELDS)
_LOAD_COLUMNS = ("subject_code", "record_id", *_RECORD_FIELDS)  # read back in this order by _record
_KIND, _OTHER = _LOAD_COLUMNS.index("kind"), _LOAD_COLUMNS.index("other")
# what the change feed compares (store/changefeed.py)
_DIFF_COLUMNS = ("obligation_key", "source_subject", "target_code", "target_relation", "measure", "rule", "department",
                 "status", "effects", "provenance", "valid_from", "valid_until")


def _same_rows(old: list[dict], done: Materialised | None) -> bool:
    """Whether `done` would write exactly the rows `old` (read back, JSON decoded) holds."""
    new = as_dicts(done) if done is not None else []
    if len(old) != len(new):
        return False
    return sorted(map(_canonical, old)) == sorted(map(_canonical, new))


def _canonical(row: dict) -> str:
    return json.dumps(row, sort_keys=True, ensure_ascii=False, default=str)


class GenerationConflict(RuntimeError):
    """A rebuild found another generation in force when it came to switch: two rebuilds ran at
    once, which the cluster lock (store/cluster_lock.py) exists to prevent."""


class CheckRead(NamedTuple):
    """What one eligibility check read (Repository.check_reads)."""

    obligations: list[dict]
    known: bool  # the store knows the subject
    generation: int  # the generation the obligations belong to


@dataclass
class Saved:
    """One save_batch: the rows written (subjects and records, as upserted) and the codes of the
    subjects that were not in the store before it."""

    subjects: dict[str, tuple]  # code -> _SUBJECT_COLUMNS
    records: dict[tuple[str, str], tuple]  # (code, record id) -> _RECORD_COLUMNS
    new: set[str]


# a subject row (code, kind, name), its record rows (_LOAD_COLUMNS) in id order, and the rows
# of the subjects its relation records point to, one per such record
BundleRows = tuple[tuple, list[tuple], list[tuple]]


def bundle_of(rows: BundleRows) -> Bundle:
    subject, records, related = rows
    return Bundle(subject=BundleSubject(*subject), records=[_record(r) for r in records],
                  related=[Bundle(subject=BundleSubject(*other), records=[]) for other in related])


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _record(row: tuple) -> Record:
    """A Record from a row of _LOAD_COLUMNS."""
    (_code, record_id, kind, list_, scheme, grade, severity, category, type_, other, status, start, expires_on,
     status_on, department, document) = row
    key = {"list_entry": list_, "rating": scheme, "penalty": severity}.get(kind)
    return Record(id=record_id, kind=kind, status=status, start=start, key=key, list=list_, scheme=scheme,
                  grade=grade, severity=severity, category=category, type=type_, other=other,
                  department=department, document=document, expires_on=expires_on, status_on=status_on)


class Repository:
    def __init__(self, engine: Engine):
        self.engine = engine

    # -- subjects and records ----------------------------------------------------------------
    def save_bundles(self, bundles: list[Bundle]) -> set[str]:
        """Upsert subjects and their records (idempotent by record id). Returns the codes touched."""
        return set(self.save_batch(bundles).subjects)

    def save_batch(self, bundles: list[Bundle]) -> Saved:
        """save_bundles, keeping what was written and which subjects the store did not know before."""
        stamp = now_iso()
        subjects: dict[str, tuple] = {}
        records: dict[tuple[str, str], tuple] = {}
        for bundle in bundles:
            for item in [bundle, *bundle.related]:
                s = item.subject
                known = subjects.get(s.code)
                if known is None or (s.name and not known[2]):
                    subjects[s.code] = (s.code, s.kind, s.name, stamp)
                for r in item.records:
                    records[(s.code, r.id)] = (s.code, r.id, dumps(r.to_dict()), *[getattr(r, f) for f in _RECORD_FIELDS])
        with self.engine.begin() as c:
            stored = {row[0] for row in select_in(c, "SELECT code FROM subjects WHERE code IN ({in})", list(subjects))}
            upsert_many(c, Subject.__table__, _SUBJECT_COLUMNS, ("code",), list(subjects.values()))
            upsert_many(c, RecordRow.__table__, _RECORD_COLUMNS, ("subject_code", "record_id"), list(records.values()))
        return Saved(subjects, records, set(subjects) - stored)

    def load_bundle(self, code: str) -> Bundle | None:
        return self.load_bundles([code]).get(code)

    def load_bundles(self, codes: Iterable[str], saved: Saved | None = None) -> dict[str, Bundle]:
        """Bundles of many subjects, in code order, records in id order (see load_rows)."""
        return {code: bundle_of(rows) for code, rows in self.load_rows(codes, saved).items()}

    def load_rows(self, codes: Iterable[str], saved: Saved | None = None) -> dict[str, BundleRows]:
        """What bundle_of needs for each of `codes` that is stored, in code order; plain tuples,
        cheap to send to another process.

        Subjects that `saved` (the batch just saved) brought into the store are taken from
        what was written, not read back: their records are exactly the batch's. Related
        subjects are looked up either way (they may be stored by other batches)."""
        codes = sorted(set(codes))
        if not codes:
            return {}
        new = saved.new if saved is not None else set()
        with self.engine.connect() as c:
            subjects = {row[0]: row for row in select_in(c, "SELECT code, kind, name FROM subjects WHERE code IN ({in})",
                                                         [code for code in codes if code not in new])}
            rows_by_subject: dict[str, list] = {}
            for row in select_in(c, f"SELECT {', '.join(_LOAD_COLUMNS)} FROM records WHERE subject_code IN ({{in}})",
                                 list(subjects)):
                rows_by_subject.setdefault(row[0], []).append(row)
            for rows in rows_by_subject.values():  # in Python: the same order whatever the database's collation
                rows.sort(key=itemgetter(1))
            if new:
                subjects.update({code: saved.subjects[code][:3] for code in new})
                for key in sorted(k for k in saved.records if k[0] in new):
                    values = saved.records[key]
                    rows_by_subject.setdefault(key[0], []).append((values[0], values[1], *values[3:]))
            others = sorted({r[_OTHER] for rows in rows_by_subject.values() for r in rows
                             if r[_KIND] == "relation" and r[_OTHER]} - set(subjects))
            related = dict(subjects)
            related.update({row[0]: row for row in select_in(c, "SELECT code, kind, name FROM subjects WHERE code IN ({in})",
                                                             others)})
        out = {}
        for code in codes:
            subject = subjects.get(code)
            if subject is None:
                continue
            rows = rows_by_subject.get(code, [])
            out[code] = (tuple(subject), rows, [tuple(related[r[_OTHER]]) for r in rows
                                                if r[_KIND] == "relation" and r[_OTHER] in related])
        return out

    def subject(self, code: str) -> dict | None:
        bundle = self.load_bundle(code)
        if bundle is None:
            return None
        return {"subject": bundle.subject.to_dict(), "records": [r.to_dict() for r in bundle.records],
                "related": [b.subject.to_dict() for b in bundle.related]}

    def linked_codes(self, codes: Iterable[str]) -> set[str]:
        """Subjects linked to `codes` by a relation record, in either direction."""
        codes = sorted(set(codes))
        if not codes:
            return set()
        with self.engine.connect() as c:
            pointing_in = select_in(c, "SELECT subject_code FROM records WHERE kind = 'relation' AND other IN ({in})",
                                    codes)
            pointing_out = select_in(c, "SELECT other FROM records WHERE kind = 'relation' "
                                        "AND subject_code IN ({in})", codes)
        return ({row[0] for row in pointing_in} | {row[0] for row in pointing_out if row[0]}) - set(codes)

    def subjects_holding(self, patterns: Iterable[tuple[str, str | None]]) -> set[str]:
        """The codes of the subjects holding a record that matches one of `patterns` (engine/reads.py:
        (kind, None) any record of the kind; else a list code, a rating scheme or "scheme:grade",
        or a penalty severity), found through ix_records_route."""
        clauses, parameters = [], []
        mark = param_mark(self.engine)
        for kind, key in sorted(patterns, key=lambda p: (p[0], p[1] or "")):
            column = {"list_entry": "list", "rating": "scheme", "penalty": "severity"}.get(kind)
            if key is None or column is None:
                clauses.append(f"kind = {mark}")
                parameters.append(kind)
            elif kind == "rating" and ":" in key:
                scheme, grade = key.split(":", 1)
                clauses.append(f"(kind = {mark} AND scheme = {mark} AND grade = {mark})")
                parameters += [kind, scheme, grade]
            else:
                clauses.append(f"(kind = {mark} AND {column} = {mark})")
                parameters += [kind, key]
        if not clauses:
            return set()
        with self.engine.connect() as c:
            return {row[0] for row in c.exec_driver_sql(
                f"SELECT DISTINCT subject_code FROM records WHERE {' OR '.join(clauses)}", tuple(parameters))}

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

    def has_obligations(self) -> bool:
        """Whether any obligation is stored, in any generation (an initial load has none)."""
        with self.engine.connect() as c:
            return c.exec_driver_sql("SELECT 1 FROM obligations LIMIT 1").first() is not None

    def refresh_statistics(self) -> bool:
        """Table statistics for the planner, after a bulk load; True if anything was done.

        PostgreSQL plans from statistics that only ANALYZE (or autovacuum, which may be off, as
        on the benchmark machine) gathers: after a 1M-subject import without them the planner
        expected 7,420 obligations for one subject and chose bitmap scans, and left the prepared
        check statement flapping between plans. ANALYZE samples each table (3.4 s for 1M
        subjects). SQLite's planner serves these indexed reads well without statistics: nothing
        is done there."""
        if self.engine.dialect.name != "postgresql":
            return False
        with self.engine.connect() as c:
            c.exec_driver_sql("ANALYZE")
            c.commit()
        return True

    def write_out(self) -> bool:
        """After a bulk load on PostgreSQL, its data written to the data files now (CHECKPOINT);
        True if done. Left to the next timed checkpoint and the kernel's writeback, the
        gigabytes an import leaves dirty were written while the service answered, and the
        decision log's commits waited for their WAL flushes behind them (open-loop p99 40.6 ms,
        max 96 ms right after a 1M-subject import, 5.9 ms on the same store later). CHECKPOINT
        needs a superuser or the pg_checkpoint role: without either, nothing is lost (the data
        is in the WAL already), the import only does not wait, and says so in the log."""
        if self.engine.dialect.name != "postgresql":
            return False
        try:
            with self.engine.connect() as c:
                c.exec_driver_sql("CHECKPOINT")
        except sqlalchemy.exc.ProgrammingError as exc:  # psycopg's InsufficientPrivilege
            log.warning("no CHECKPOINT after the import (%s): the database writes it out on its own schedule",
                        str(exc.orig).strip().splitlines()[0])
            return False
        return True

    def count_subjects(self) -> int:
        with self.engine.connect() as c:
            return c.execute(select(func.count()).select_from(Subject)).scalar_one()

    # -- obligations ---------------------------------------------------------------------------
    def replace_obligations(self, sources: Iterable[str], computed: list[Materialised], generation: int | None = None,
                            cause: dict | None = None, *, incremental: bool = False) -> int:
        """Swap the obligations caused by `sources` for `computed` (store/rows.py), in one
        transaction; how many sources' rows were written.

        Without `generation`, the rows answering checks now are deleted and the new ones answer
        at once (a record push). A rebuild passes the generation it builds, which answers from
        its switch (switch_generation): a full one leaves the old rows for the switch to make
        stale (CatalogState.base); an `incremental` one marks them `retired_in` that generation,
        and leaves alone a source whose rows it would write again unchanged, so an affected
        subject whose obligations do not change costs a read, not a rewrite.
        Either way the difference from the rows answering checks now goes to the change feed
        (store/changefeed.py), tagged with `cause`; a rebuild's entries are stamped at the switch.
        A source with no rows answering checks now (a subject new to the store) takes the
        entries `computed` made for that case, which are what the diff would give.
        """
        sources = list(sources)
        by_code = {m.code: m for m in computed}
        with self.engine.begin() as c:
            current, base = c.exec_driver_sql("SELECT generation, base FROM catalog_state WHERE id = 1").one()
            old: dict[str, list[dict]] = {}
            ids: dict[str, list[int]] = {}
            for values in select_in(c, f"SELECT id, {', '.join(OBLIGATION_COLUMNS)} FROM obligations "
                                       f"WHERE {_ANSWERING_SQL.format(table='obligations', mark='{m}')} "
                                       "AND source_subject IN ({in})", sources, (base, current, current)):
                row = dict(zip(OBLIGATION_COLUMNS, values[1:]))
                for name in ("effects", "provenance"):
                    if isinstance(row[name], str):  # text from sqlite3 and asyncpg, decoded by psycopg
                        row[name] = loads(row[name])
                old.setdefault(row["source_subject"], []).append(row)
                ids.setdefault(row["source_subject"], []).append(values[0])
            if incremental:
                unchanged = {code for code in old if _same_rows(old[code], by_code.get(code))}
                sources = [code for code in sources if code not in unchanged]
                computed = [m for m in computed if m.code not in unchanged]
            stale = sorted(i for code in sources for i in ids.get(code, ()))
            if generation is None:
                generation = current
                select_in(c, "DELETE FROM obligations WHERE id IN ({in})", stale)
            elif incremental:
                select_in(c, "UPDATE obligations SET retired_in = {m} WHERE id IN ({in})", stale, (generation,))
            at = now_iso() if generation == current else ""
            tail = (dumps(cause), at, generation)
            insert_many(c, ObligationRow.__table__, (*OBLIGATION_COLUMNS, "generation"),
                        [(*row, generation) for m in computed for row in m.rows])
            changes: list[tuple] = []
            for code in sources:
                done = by_code.get(code)
                if code not in old:
                    if done is not None:
                        changes.extend((*entry, *tail) for entry in done.added)
                    continue
                for entry in diff_obligations(old[code], as_dicts(done) if done else [], at=at, generation=generation,
                                              cause=cause):
                    changes.append((*(dumps(entry[k]) if k in ("before", "after") else entry[k] for k in CHANGE_COLUMNS),
                                    *tail))
            changes.sort(key=lambda entry: entry[1])  # by obligation key, as one diff of all the sources gives
            insert_many(c, ObligationChange.__table__, (*CHANGE_COLUMNS, "cause", "at", "generation"), changes)
        return len(sources)

    def generation(self) -> int:
        with self.engine.connect() as c:
            return c.execute(select(CatalogState.generation).where(CatalogState.id == 1)).scalar_one()

    def allocate_generation(self) -> tuple[int, int]:
        """(the generation answering checks, a new number for a rebuild to write into), the
        number taken from catalog_state.allocated in a write transaction: no two rebuilds, in
        any processes, are handed the same one, and the number of a rebuild that died is never
        handed out again (its rows go with the next switch)."""
        state = CatalogState.__table__
        with self.engine.begin() as c:  # the write first: SQLite takes its write lock before reading
            taken = case((state.c.allocated > state.c.generation, state.c.allocated), else_=state.c.generation)
            c.execute(state.update().where(state.c.id == 1).values(allocated=taken + 1))
            current, allocated = c.execute(select(state.c.generation, state.c.allocated)
                                           .where(state.c.id == 1)).one()
        return current, allocated

    def switch_generation(self, new: int, expected: int | None = None,
                          with_switch: Callable[[Connection], None] | None = None,
                          through_id: int | None = None, *, full: bool = True) -> None:
        """Make generation `new` answer checks (one small transaction), then delete the rows it
        superseded, a few thousand per transaction.

        `full`: the rebuild wrote every subject, so every older row is stale (`new` becomes the
        base; `through_id`: the rebuild's last_obligation_id before it wrote). Otherwise (an
        incremental rebuild) the stale rows are the ones it retired.
        `expected`: the generation the rebuild started from; the switch is refused
        (GenerationConflict) if another one answers checks by now, as it would if two rebuilds
        ran at once. `with_switch` writes what must become visible together with the
        generation (the publications it was built from). On PostgreSQL the switch notifies
        every process listening on CATALOG_CHANNEL when it commits (store/catalog_watch.py)."""
        state = CatalogState.__table__
        with self.engine.begin() as c:
            switched = state.update().where(state.c.id == 1).values(generation=new, **({"base": new} if full else {}))
            if expected is not None:
                switched = switched.where(state.c.generation == expected)
            if c.execute(switched).rowcount != 1:
                raise GenerationConflict(f"generation {expected} no longer answers checks: another rebuild "
                                         f"switched first, so generation {new} was not put in force")
            if with_switch is not None:
                with_switch(c)
            # the rebuild's change-feed entries become visible with the generation they describe
            c.execute(ObligationChange.__table__.update().where(ObligationChange.generation == new,
                                                                ObligationChange.at == "").values(at=now_iso()))
            c.execute(delete(ObligationChange).where(ObligationChange.generation != new, ObligationChange.at == ""))
            if self.engine.dialect.name == "postgresql":
                c.exec_driver_sql("SELECT pg_notify(%s, %s)", (CATALOG_CHANNEL, str(new)))
        if full:
            self.drop_generations_before(new, through_id)
        else:
            self.drop_retired(new)

    def last_obligation_id(self) -> int:
        """The highest obligation id so far (0: none); a rebuild notes it before writing, so that
        every row of the generations it replaces has an id at most this (store/materialise.py)."""
        with self.engine.connect() as c:
            return c.execute(select(func.max(ObligationRow.id))).scalar() or 0

    def drop_generations_before(self, keep: int, through_id: int | None = None) -> int:
        """Delete the obligations of the generations before `keep` (with ids up to `through_id`,
        if known), walking the primary key DROP_BATCH ids per transaction; how many rows went.

        One DELETE of a replaced generation (~900k rows at 200k subjects) held SQLite's write
        lock, and on PostgreSQL wrote its WAL, for 15-39 s, and every check and decision-log
        append waited behind it. In small transactions the checks and appends go in between.
        The caller holds the cluster lock (nothing else writes obligations meanwhile)."""
        return self._walk_delete("generation < {m}", (keep,), through_id)

    def _walk_delete(self, condition: str, parameters: tuple, through_id: int | None = None,
                     step: int | None = None) -> int:
        """DELETE the obligations matching `condition` ({m}: its parameters), `step` ids per
        transaction (DROP_BATCH unless given)."""
        step = step or DROP_BATCH
        mark = param_mark(self.engine)
        top = self.last_obligation_id() if through_id is None else through_id
        with self.engine.connect() as c:
            low = c.execute(select(func.min(ObligationRow.id))).scalar()
        if low is None:
            return 0
        dropped = 0
        for start in range(low - 1, top, step):
            with self.engine.begin() as c:
                dropped += c.exec_driver_sql(f"DELETE FROM obligations WHERE id > {mark} AND id <= {mark} "
                                             f"AND {condition.replace('{m}', mark)}",
                                             (start, min(start + step, top), *parameters)).rowcount
        return dropped

    def drop_retired(self, through: int) -> int:
        """Delete the rows retired by generation `through` or before, DROP_BATCH per transaction;
        how many went."""
        return self._each_retired("DELETE FROM obligations", "<=", through)

    def _each_retired(self, statement: str, comparison: str, generation: int) -> int:
        """Run `statement` (a DELETE, or an UPDATE of obligations) on the rows retired in a
        generation `comparison` `generation`, found by the partial index ix_obligations_retired,
        DROP_BATCH rows per transaction; how many rows it touched."""
        mark = param_mark(self.engine)
        touched = 0
        while True:
            with self.engine.begin() as c:
                done = c.exec_driver_sql(
                    f"{statement} WHERE id IN (SELECT id FROM obligations WHERE retired_in IS NOT NULL "
                    f"AND retired_in {comparison} {mark} LIMIT {DROP_BATCH})", (generation,)).rowcount
            touched += done
            if done < DROP_BATCH:
                return touched

    def discard_unswitched(self) -> int:
        """Undo what rebuilds that never switched left behind (their process died, or they failed):
        their rows deleted, the rows they retired answering again; how many rows were touched.

        Called under the cluster lock, when no rebuild can be running (at start-up, before each
        rebuild). Until it runs, those rows are invisible to checks (a generation above the one
        answering, or retired by one), but a later generation would reach them. Costs nothing
        when every generation handed out was switched to."""
        state = CatalogState.__table__
        with self.engine.connect() as c:
            current, allocated = c.execute(select(state.c.generation, state.c.allocated).where(state.c.id == 1)).one()
        if allocated <= current:
            return 0
        touched = self._each_retired("UPDATE obligations SET retired_in = NULL", ">", current)
        touched += self._walk_delete("generation > {m}", (current,), step=DROP_BATCH * 10)
        with self.engine.begin() as c:
            c.execute(delete(ObligationChange).where(ObligationChange.generation > current, ObligationChange.at == ""))
            # nothing of the numbers above `current` remains: the next rebuild may take them again
            c.execute(state.update().where(state.c.id == 1, state.c.generation == current).values(allocated=current))
        return touched

    @staticmethod
    def answering_now():
        """The obligation rows that answer checks now (see _ANSWERING_SQL), as a WHERE clause."""
        state = CatalogState.__table__
        current = select(state.c.generation).where(state.c.id == 1).scalar_subquery()
        base = select(state.c.base).where(state.c.id == 1).scalar_subquery()
        return ((ObligationRow.generation >= base) & (ObligationRow.generation <= current)
                & or_(ObligationRow.retired_in.is_(None), ObligationRow.retired_in > current))

    @staticmethod
    def _in_force(as_of: str):
        return (ObligationRow.valid_from <= as_of) & or_(ObligationRow.valid_until.is_(None),
                                                         ObligationRow.valid_until > as_of)

    def obligations_for(self, target: str, as_of: str, activity: str | None = None) -> list[dict]:
        """The target's obligations in force on `as_of` (for one activity, if given)."""
        return self.check_reads(target, as_of, activity).obligations

    def check_reads(self, target: str, as_of: str, activity: str | None = None) -> CheckRead:
        """What an eligibility check reads: the target's obligations in force on `as_of` (for one
        activity, if given), whether the store knows the target at all, and the generation the
        obligations were read from (whose catalog revisions the answer reports).

        Every check pays for this, so it is one statement on a pooled DB-API connection
        (store/driver.py), in autocommit: through SQLAlchemy's ORM row machinery the read cost
        360 µs, through exec_driver_sql 60 µs, here ~20 µs on SQLite (index
        ix_obligations_target); on PostgreSQL one round trip instead of four. The subject is
        joined from a one-row select so that a known subject without obligations still
        returns a row (with NULL obligation columns); the generation comes with it from the same
        snapshot, so a process learns on every check, at no extra cost, whether another process
        has switched the catalog since (store/service.py).
        """
        return self.check_result(read(self.engine, *self.check_statement(target, as_of)), activity)

    def check_statement(self, target: str, as_of: str) -> tuple[str, tuple]:
        """The one statement check_reads runs, for a caller that joins another to it (driver.beside)."""
        return self._check_sql(), (target, target, as_of, as_of)

    def check_result(self, result: tuple[list[str], list[tuple]], activity: str | None = None) -> CheckRead:
        """check_reads' answer from what check_statement's statement returned."""
        names, fetched = result
        # row[2] is o.id: None on the one row of a subject without obligations; sorted here, as
        # the statement may have been joined with another (driver.beside) and lost its order
        found = sorted((row for row in fetched if row[2] is not None), key=itemgetter(2))
        rows = [dict(zip(names[2:], row[2:])) for row in found]
        known = bool(rows) or any(row[0] for row in fetched)
        if activity is not None:  # a subject has few obligations: filtering here beats a LIKE in SQL
            needle = f",{activity},"
            rows = [row for row in rows if needle in row["activities"]]
        for row in rows:
            for name in ("effects", "provenance"):
                if isinstance(row[name], str):  # text from sqlite3 and asyncpg, decoded by psycopg
                    row[name] = loads(row[name])
        return CheckRead(rows, known, fetched[0][1])

    def _check_sql(self) -> str:
        cache = self.__dict__.setdefault("_sql_cache", {})
        if not cache:
            mark = param_mark(self.engine)
            columns = ", ".join(f"o.{c.name}" for c in ObligationRow.__table__.columns)
            cache["check"] = (
                f"SELECT s.code IS NOT NULL AS known, q.generation AS read_generation, {columns} "
                f"FROM (SELECT generation, base FROM catalog_state WHERE id = 1) AS q "
                f"LEFT JOIN subjects AS s ON s.code = {mark} "
                f"LEFT JOIN obligations AS o ON o.target_code = {mark} AND o.generation >= q.base "
                f"AND o.generation <= q.generation AND (o.retired_in IS NULL OR o.retired_in > q.generation) "
                f"AND o.valid_from <= {mark} AND (o.valid_until IS NULL OR o.valid_until > {mark})")
            cache["known"] = f"SELECT 1 FROM subjects WHERE code = {mark}"
        return cache["check"]

    def obligations_for_department(self, department: str, as_of: str, limit: int = 1000, offset: int = 0) -> list[dict]:
        query = (select(ObligationRow).where(self.answering_now(),
                                             ObligationRow.department == department, self._in_force(as_of))
                 .order_by(ObligationRow.target_code, ObligationRow.measure).limit(limit).offset(offset))
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(query)]

    def known(self, code: str) -> bool:
        self._check_sql()
        return bool(read(self.engine, self._sql_cache["known"], (code,))[1])

