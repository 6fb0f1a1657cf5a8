"""A plain-Python reading of conditions, record by record.

durable-rules decides what matches; this module says, for a record that did not match,
which part of a condition it failed ("why not"), and gives tests an independent oracle to
check the compiled durable-rules expressions against (a compiler that emits the wrong JSON
shape is accepted silently by durable-rules and simply never matches).
"""
from __future__ import annotations

from itertools import product

from .bundle import Record
from .model import Condition, Rule
from .temporal import RecordState, window_start

__all__ = ["describe_condition", "condition_failures", "rule_matches"]

def describe_condition(c: Condition) -> str:
    parts = [c.record]
    if c.lists:
        parts.append("list " + "|".join(c.lists))
    if c.scheme:
        parts.append(f"scheme {c.scheme}")
    if c.grades:
        parts.append("grade " + "|".join(c.grades))
    if c.severities:
        parts.append("severity " + "|".join(c.severities))
    if c.categories:
        parts.append("category " + "|".join(c.categories))
    if c.types:
        parts.append("type " + "|".join(c.types))
    if c.departments:
        parts.append("department " + "|".join(c.departments))
    parts.append("status " + (c.status if isinstance(c.status, str) else "|".join(c.status)))
    if c.within:
        parts.append(f"within {c.within}")
    for j in c.joins:
        parts.append(f"{j.field} = {j.alias}.{j.other_field}")
    return ", ".join(parts)

def condition_failures(c: Condition, record: Record, state: RecordState | None, as_of: str,
                       bound: dict[str, Record] | None = None) -> list[str]:
    """Why `record` does not satisfy `c` on `as_of` (empty when it does)."""
    failures = []
    if record.kind != c.record:
        return [f"is a {record.kind}, not a {c.record}"]

    def check(attr: str, allowed) -> None:
        value = getattr(record, attr)
        if allowed is not None and value not in allowed:
            failures.append(f"{attr} is {value!r}, not {'|'.join(allowed)}")

    check("list", c.lists)
    check("scheme", (c.scheme,) if c.scheme else None)
    check("grade", c.grades)
    check("severity", c.severities)
    check("category", c.categories)
    check("type", c.types)
    check("department", c.departments)
    if state is None:
        failures.append("was not read on this date")
        return failures
    if c.record == "rating" and not state.current:
        failures.append("is not the latest rating in its scheme")
    if c.status == "live":
        if not state.live:
            reason = f" ({state.ended_by} {state.valid_until})" if state.ended_by and state.valid_until else ""
            failures.append(f"is {state.status} on {as_of}{reason}, not active or disputed")
    elif c.status != "any" and state.status not in c.status:
        failures.append(f"status on {as_of} is {state.status}, not {'|'.join(c.status)}")
    if c.within:
        first = window_start(as_of, c.within)
        if not record.start or record.start < first:
            failures.append(f"started {record.start}, before the {c.within} window that opens {first}")
    for j in c.joins:
        other = (bound or {}).get(j.alias)
        if other is not None and getattr(record, j.field, None) != getattr(other, j.other_field, None):
            failures.append(f"{j.field} {getattr(record, j.field, None)!r} differs from {j.alias}.{j.other_field}")
    return failures

def rule_matches(rule: Rule, records: list[Record], states: dict[str, RecordState], as_of: str) -> list[dict]:
    """Every binding of distinct records to the rule's conditions that satisfies all of them."""
    candidates = []
    for c in rule.conditions:
        candidates.append([r for r in records
                           if not condition_failures(c, r, states.get(r.id), as_of, None)])
    matches = []
    for combo in product(*candidates):
        if len({r.id for r in combo}) != len(combo):
            continue
        bound = {}
        ok = True
        for c, r in zip(rule.conditions, combo):
            if condition_failures(c, r, states.get(r.id), as_of, bound):
                ok = False
                break
            bound[c.alias] = r
        if ok:
            matches.append({c.alias: r.id for c, r in zip(rule.conditions, combo)})
    return matches

