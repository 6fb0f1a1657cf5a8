"""What changed when a subject's obligations were replaced: the entries of the change feed.

An obligation keeps its key across re-materialisations (a hash of whose records caused it,
whom it targets, the measure and the rule), while its rows (one per interval) are deleted and
rewritten each time. Comparing the old rows and the new rows key by key gives what a
department's own system needs to hear about:

- `added`: a key with no rows before;
- `lifted`: a key whose last interval now ends earlier (or that has no rows any more:
  `ended_by` is then `withdrawn`);
- `changed`: anything else that differs on some day (status, department, suspension,
  effects, the records it rests on, an earlier start or a later end).

`effective` is the first day on which the old and new answers differ. Rows that are split or
ended differently but say the same thing on every day (a new catalog era that changes nothing
for this obligation) raise no entry.

An obligation that ends by itself (publication_max, a measure's term) raises no entry on the
day it ends: its end is already in `valid_until` when it is added.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Iterable

__all__ = ["obligation_key", "diff_obligations", "interval_summary"]

_SUMMARY_FIELDS = ("valid_from", "valid_until", "status", "department")


def obligation_key(source_subject: str, target_code: str, measure: str, rule: str) -> str:
    """A stable key for one duty: the same across re-materialisations and catalog generations."""
    raw = "\x1f".join((source_subject, target_code, measure, rule))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:24]


def interval_summary(row: dict) -> dict:
    provenance = row.get("provenance") or {}
    summary = {name: row.get(name) for name in _SUMMARY_FIELDS}
    summary["ended_by"] = provenance.get("ended_by")
    if provenance.get("suspended_by"):
        summary["suspended_by"] = provenance["suspended_by"]
    return summary


def _state(row: dict) -> tuple:
    """What the obligation is on a day it covers (its dates and why it ends aside); compared
    with ==, never hashed (effects are a list of dicts)."""
    provenance = row.get("provenance") or {}
    return (row["status"], row["department"], row.get("target_relation"), provenance.get("suspended_by") or [],
            [r.get("id") for r in provenance.get("records") or ()], row.get("effects"))


def _state_on(rows: list[dict], day: str) -> tuple | None:
    for r in rows:
        if r["valid_from"] <= day and (r["valid_until"] is None or day < r["valid_until"]):
            return _state(r)
    return None


def _first_difference(was: list[dict], now: list[dict]) -> str | None:
    """The first day on which the old and the new intervals say different things (None: never)."""
    days = {r["valid_from"] for r in was + now} | {r["valid_until"] for r in was + now if r["valid_until"]}
    for day in sorted(days):
        if _state_on(was, day) != _state_on(now, day):
            return day
    return None


def _end(rows: list[dict]) -> str | None:
    """The last day-after of a key's intervals; None when one is open-ended."""
    ends = [r["valid_until"] for r in rows]
    return None if any(e is None for e in ends) else max(ends)


def _earlier(a: str | None, b: str | None) -> bool:
    """`a` ends before `b` (None: never ends)."""
    return a is not None and (b is None or a < b)


def diff_obligations(old: Iterable[dict], new: Iterable[dict], *, at: str, generation: int,
                     cause: dict | None = None) -> list[dict]:
    """Change-feed rows for the difference between `old` and `new` obligation rows (dicts with
    obligation_key, source_subject, target_code, measure, rule, department, status, effects,
    provenance, valid_from, valid_until). One row per key and department concerned."""
    before: dict[str, list[dict]] = defaultdict(list)
    after: dict[str, list[dict]] = defaultdict(list)
    for row in old:
        before[row["obligation_key"]].append(row)
    for row in new:
        after[row["obligation_key"]].append(row)
    entries = []
    for key in sorted(set(before) | set(after)):
        was = sorted(before.get(key, []), key=lambda r: r["valid_from"])
        now = sorted(after.get(key, []), key=lambda r: r["valid_from"])
        if was and [(r["valid_from"], r["valid_until"], _state(r)) for r in was] == \
                [(r["valid_from"], r["valid_until"], _state(r)) for r in now]:
            continue  # the common case: nothing changed (a key new to the store always changed)
        if not was or not now:  # all appear or all go: the first day of the other side differs
            effective = (now or was)[0]["valid_from"]
        else:
            effective = _first_difference(was, now)
        if effective is None:
            continue  # split or re-dated differently, but the same obligation on every day
        if not was:
            change, ended_by = "added", now[-1]["provenance"].get("ended_by")
        elif not now:
            change, ended_by = "lifted", "withdrawn"
        elif _earlier(_end(now), _end(was)):
            change, effective, ended_by = "lifted", _end(now), now[-1]["provenance"].get("ended_by")
        else:
            change, ended_by = "changed", now[-1]["provenance"].get("ended_by")
        sample = (now or was)[0]
        departments = sorted({r["department"] for r in was} | {r["department"] for r in now})
        for department in departments:
            entries.append({
                "at": at, "generation": generation, "department": department, "obligation_key": key,
                "change": change, "effective": effective, "source_subject": sample["source_subject"],
                "target_code": sample["target_code"], "measure": sample["measure"], "rule": sample["rule"],
                "ended_by": ended_by, "before": [interval_summary(r) for r in was],
                "after": [interval_summary(r) for r in now], "cause": cause,
            })
    return entries
