"""From a subject's bundle to the rows the store writes for it: its obligation rows, and the
change-feed entries they raise if the subject had no obligations before.

This is the CPU-heavy half of materialising (the rules run here) and it needs no database,
so an import can run it in worker processes (store/pool.py) while the parent reads and
writes. Rows leave here as tuples with their JSON already serialised: tuples pickle cheaply
and go to the driver as they are. The change-feed entries are made on the guess that the
subject is new to the store (true for nearly every subject of a first import); the writer
checks the guess against the rows it finds and diffs properly when it is wrong.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from operator import itemgetter

from engine.bundle import Bundle
from engine.jsontext import loads
from engine.timeline import ObligationInterval, obligation_timeline

from .bulk import dumps
from .changefeed import diff_obligations, obligation_key
from .history import CatalogHistory

__all__ = ["Materialised", "OBLIGATION_COLUMNS", "CHANGE_COLUMNS", "intervals", "materialise", "as_dicts"]

# obligations columns a Materialised row fills, in order (the writer appends `generation`)
OBLIGATION_COLUMNS = ("source_subject", "target_code", "target_relation", "measure", "kind", "department",
                      "department_name", "rule", "rulebook", "revision", "status", "effects", "activities",
                      "provenance", "valid_from", "valid_until", "obligation_key")
# obligation_changes columns of an entry, in order (the writer appends cause, at, generation)
CHANGE_COLUMNS = ("department", "obligation_key", "change", "effective", "source_subject", "target_code", "measure",
                  "rule", "ended_by", "before", "after")
# The columns' values of a row dict in order, by one C call: a generator over the columns with a
# test for the JSON ones cost ~5% of a profiled import's CPU (8 million steps for 100,000 subjects).
_OBLIGATION_VALUES, _CHANGE_VALUES = itemgetter(*OBLIGATION_COLUMNS), itemgetter(*CHANGE_COLUMNS)
_EFFECTS_AT, _PROVENANCE_AT = OBLIGATION_COLUMNS.index("effects"), OBLIGATION_COLUMNS.index("provenance")
_BEFORE_AT, _AFTER_AT = CHANGE_COLUMNS.index("before"), CHANGE_COLUMNS.index("after")


@dataclass(slots=True)
class Materialised:
    """One source subject's obligation rows and the entries they raise if it is new to the store."""

    code: str
    rows: list[tuple] = field(default_factory=list)  # in OBLIGATION_COLUMNS order
    added: list[tuple] = field(default_factory=list)  # in CHANGE_COLUMNS order, sorted by key


def _details(bundle: Bundle) -> dict[str, dict]:
    out = {}
    for r in bundle.records:
        item = {"id": r.id, "kind": r.kind}
        for name in ("list", "scheme", "grade", "severity", "document", "department", "status"):
            value = getattr(r, name)
            if value is not None:
                item[name] = value
        if r.start:
            item["listed_on" if r.kind in ("list_entry", "relation") else "decided_on"] = r.start
        out[r.id] = item
    return out


def _clip(intervals: list[ObligationInterval], start: str, end: str | None) -> list[ObligationInterval]:
    """The parts of `intervals` inside an era [start, end)."""
    kept = []
    for i in intervals:
        if end is not None and i.valid_from >= end:
            continue
        if i.valid_until is not None and i.valid_until <= start:
            continue
        if i.valid_from < start:
            i.valid_from = start
        if end is not None and (i.valid_until is None or i.valid_until > end):
            i.valid_until = end
            i.ended_by, i.ended_by_record = "rulebook_revision", None  # the next era judges it afresh
        kept.append(i)
    return kept


def intervals(history: CatalogHistory, bundle: Bundle, every_era: bool = False) -> list[ObligationInterval]:
    """The bundle's obligations over all time, each era judged by the catalog in force then;
    only the eras at whose start a rulebook its records reach changes are judged apart
    (CatalogHistory.spans), and an obligation that an era boundary cut but that goes on the same
    after it is one interval again (_joined). `every_era`: judge each era apart all the same,
    the definition the spans shortcut must agree with (tests/test_incremental_publish.py)."""
    found = []
    keys = frozenset((r.kind, r.key, r.grade) for r in bundle.records)
    spans = [(era.start, era.end, era) for era in history.eras] if every_era else history.spans(keys)
    for start, end, era in spans:
        for interval in _clip(obligation_timeline(era.evaluator, bundle), start, end):
            interval.revision = era.revisions.get(interval.rulebook, "")
            found.append(interval)
    return _joined(found)


_SAME_EXCEPT = ("valid_from", "valid_until", "ended_by", "ended_by_record")


def _content(i: ObligationInterval) -> tuple:
    return tuple(getattr(i, f.name) if not isinstance(getattr(i, f.name), list) else repr(getattr(i, f.name))
                 for f in fields(ObligationInterval) if f.name not in _SAME_EXCEPT)


def _joined(found: list[ObligationInterval]) -> list[ObligationInterval]:
    """`found` with each interval cut at an era boundary (ended_by rulebook_revision) joined to
    the one that starts there and says the same (same action, department, status, effects,
    records, revision): one row, not a split that no change explains."""
    if len(found) < 2:
        return found
    open_at: dict[tuple, ObligationInterval] = {}  # (content, valid_until) of an interval cut at a boundary
    out: list[ObligationInterval] = []
    for i in sorted(found, key=lambda i: i.valid_from):
        before = open_at.pop((_content(i), i.valid_from), None)
        if before is not None:
            before.valid_until, before.ended_by, before.ended_by_record = i.valid_until, i.ended_by, i.ended_by_record
            i = before
        else:
            out.append(i)
        if i.ended_by == "rulebook_revision" and i.valid_until is not None:
            open_at[(_content(i), i.valid_until)] = i
    out.sort(key=lambda i: (i.target_code, i.measure, i.rule, i.valid_from))
    return out


def _row(i: ObligationInterval, details: dict[str, dict]) -> dict:
    return {
        "source_subject": i.source_subject, "target_code": i.target_code, "target_relation": i.target_relation,
        "measure": i.measure, "kind": i.kind, "department": i.department, "department_name": i.department_name,
        "rule": i.rule, "rulebook": i.rulebook, "revision": i.revision, "status": i.status,
        "effects": i.effects, "activities": "," + ",".join(e["activity"] for e in i.effects) + ",",
        "provenance": {
            "records": [details.get(rid, {"id": rid}) for rid in i.records],
            "basis": i.basis, "suspended_by": i.suspended_by, "assigned_as": i.assigned_as,
            "target_name": i.target_name, "ended_by": i.ended_by, "ended_by_record": i.ended_by_record,
        },
        "valid_from": i.valid_from, "valid_until": i.valid_until,
        "obligation_key": obligation_key(i.source_subject, i.target_code, i.measure, i.rule),
    }


_EFFECTS: dict[tuple, str] = {}  # a measure's effects -> their JSON: a catalog has a few hundred


def _effects_json(effects: list[dict]) -> str:
    key = tuple(tuple(e.items()) for e in effects)
    try:
        text = _EFFECTS.get(key)
    except TypeError:  # a value that cannot be hashed: serialise it every time
        return dumps(effects)
    if text is None:
        if len(_EFFECTS) > 10_000:  # not a catalog's measures any more: do not grow for ever
            _EFFECTS.clear()
        text = _EFFECTS[key] = dumps(effects)
    return text


def materialise(history: CatalogHistory, bundle: Bundle, every_era: bool = False) -> Materialised:
    """The rows to store for `bundle`'s subject as a source of obligations (`every_era`: see intervals)."""
    found = intervals(history, bundle, every_era)
    done = Materialised(bundle.subject.code)
    if not found:
        return done
    details = _details(bundle)
    rows = [_row(i, details) for i in found]
    done.rows = [_stored_row(r) for r in rows]
    done.added = [_stored_change(e) for e in diff_obligations([], rows, at="", generation=0)]
    return done


def _stored_row(row: dict) -> tuple:
    """An obligation row's values in OBLIGATION_COLUMNS order, its JSON columns as text."""
    values = list(_OBLIGATION_VALUES(row))
    values[_EFFECTS_AT] = _effects_json(values[_EFFECTS_AT])
    values[_PROVENANCE_AT] = dumps(values[_PROVENANCE_AT])
    return tuple(values)


def _stored_change(entry: dict) -> tuple:
    """A change-feed entry's values in CHANGE_COLUMNS order, its JSON columns as text."""
    values = list(_CHANGE_VALUES(entry))
    values[_BEFORE_AT] = dumps(values[_BEFORE_AT])
    values[_AFTER_AT] = dumps(values[_AFTER_AT])
    return tuple(values)


def as_dicts(done: Materialised) -> list[dict]:
    """The rows of `done` as dicts with JSON decoded, for a diff against stored rows."""
    rows = []
    for values in done.rows:
        row = dict(zip(OBLIGATION_COLUMNS, values))
        row["effects"] = loads(row["effects"])
        row["provenance"] = loads(row["provenance"])
        rows.append(row)
    return rows
