"""A subject's obligations over all time, as validity intervals.

An evaluation answers for one date. The store keeps obligations with their validity
intervals so that an eligibility check for any date is an indexed read, not a rule run
(architecture: "eligibility is answered from materialised obligations"). This module sweeps
a bundle through time: it evaluates on the first day anything can apply, then on each day
something can change (a record starts, ends, is repaired, a window or a measure's term runs
out, a department is succeeded), and merges the segments into intervals. Between two such
days nothing can change, so the intervals are exact.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .bundle import Bundle
from .evaluator import Action, Evaluator

__all__ = ["ObligationInterval", "obligation_timeline"]

MAX_SEGMENTS = 256


@dataclass
class ObligationInterval:
    """One action, unchanged (same status, department, suspension) from valid_from until valid_until."""

    source_subject: str
    measure: str
    kind: str
    target_code: str
    target_relation: str | None
    target_name: str
    rule: str
    rulebook: str
    department: str
    department_name: str
    assigned_as: list[str]
    effects: list[dict]
    basis: list[str]
    records: list[str]
    status: str
    suspended_by: list[str]
    valid_from: str
    valid_until: str | None
    revision: str = ""  # the rulebook revision that produced it (set by whoever knows the era)

    @property
    def identity(self) -> tuple:
        return (self.measure, self.target_code, self.rule, self.status, self.department,
                tuple(self.suspended_by), tuple(self.records))


def _interval(bundle: Bundle, action: Action, start: str, end: str | None) -> ObligationInterval:
    return ObligationInterval(
        source_subject=bundle.subject.code, measure=action.measure.id, kind=action.measure.kind,
        target_code=action.target_code, target_relation=action.target_relation, target_name=action.target_name,
        rule=action.rule.id, rulebook=action.rule.rulebook, department=action.department.code,
        department_name=action.department.name, assigned_as=[d.code for d in action.departments[:-1]],
        effects=[e.to_dict() for e in action.measure.effects], basis=list(action.measure.basis),
        records=list(action.records), status=action.status, suspended_by=list(action.suspended_by),
        valid_from=start, valid_until=end)


def _change_days(bundle: Bundle, evaluation, after: str) -> set[str]:
    days = set()
    for record in bundle.records:
        for day in (record.start, record.expires_on, record.status_on):
            if day and day > after:
                days.add(day)
    for state in evaluation.states.values():
        if state.valid_until and state.valid_until > after:
            days.add(state.valid_until)
    for action in evaluation.actions:
        if action.valid_until and action.valid_until > after:
            days.add(action.valid_until)
        for dept in action.departments:
            if dept.successor and dept.succeeded_on and dept.succeeded_on.isoformat() > after:
                days.add(dept.succeeded_on.isoformat())
    return days


def obligation_timeline(evaluator: Evaluator, bundle: Bundle) -> list[ObligationInterval]:
    """Every obligation the bundle gives rise to, at any date, with exact validity intervals."""
    catalog = evaluator.catalog
    starts = sorted(r.start for r in bundle.records
                    if r.start and catalog.route_for(r.kind, r.key, r.grade) is not None)
    if not starts:
        return []
    day = starts[0]
    open_: dict[tuple, ObligationInterval] = {}
    closed: list[ObligationInterval] = []
    for _ in range(MAX_SEGMENTS):
        evaluation = evaluator.evaluate(bundle, date.fromisoformat(day))
        seen = set()
        for action in evaluation.actions:
            candidate = _interval(bundle, action, day, None)
            key = candidate.identity
            seen.add(key)
            if key not in open_:
                open_[key] = candidate
        for key in [k for k in open_ if k not in seen]:
            interval = open_.pop(key)
            interval.valid_until = day
            closed.append(interval)
        upcoming = _change_days(bundle, evaluation, day)
        # record starts still ahead also matter when nothing is open yet
        if not upcoming:
            break
        day = min(upcoming)
    closed.extend(open_.values())  # still open: valid until further notice
    closed.sort(key=lambda i: (i.target_code, i.measure, i.rule, i.valid_from))
    return closed
