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
from .temporal import shift

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
    ended_by: str | None = None  # why it ended at valid_until (None while open-ended)
    ended_by_record: str | None = None  # the record whose end ended it, when one did

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
    """Days after `after` on which the answer can change. Records no rule reads (and that
    are not relations, which carry measures to linked persons) cannot change it."""
    days = set()
    catalog = evaluation.catalog
    for record in bundle.records:
        if record.kind != "relation" and catalog.route_for(record.kind, record.key, record.grade) is None:
            continue
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


def _why_ended(action: Action, evaluation, day: str, continuing: set[tuple]) -> tuple[str, str | None]:
    """Why `action`, last seen in `evaluation`, no longer holds from `day`."""
    if (action.measure.id, action.target_code, action.rule.id) in continuing:
        return "continued", None
    states = evaluation.states
    for rid in action.records:
        state = states.get(rid)
        if state is not None and state.valid_until == day:
            record = evaluation.records.get(rid)
            if state.ended_by == "derived" and record is not None and record.derived_from:
                # a derived record ends with the action that derived it: give that action's reason
                measure_id, rule_id = record.derived_from
                for source in evaluation.actions_for(measure_id):
                    if source.target_relation is None and source.rule.id == rule_id:
                        return _why_ended(source, evaluation, day, set())
            return state.ended_by or "record_ended", rid
    if action.relation_record:
        state = states.get(action.relation_record)
        if state is not None and state.valid_until == day:
            return "relation_ended", action.relation_record
    lasts = action.measure.lasts
    if lasts != "while_listed" and action.valid_from and shift(action.valid_from, lasts) == day:
        return "measure_term", None
    if any(c.within for c in action.rule.conditions) and action.valid_until == day:
        return "window", None
    return "no_longer_matches", None


def obligation_timeline(evaluator: Evaluator, bundle: Bundle) -> list[ObligationInterval]:
    """Every obligation the bundle gives rise to, at any date, with exact validity intervals."""
    catalog = evaluator.catalog
    starts = sorted(r.start for r in bundle.records
                    if r.start and catalog.route_for(r.kind, r.key, r.grade) is not None)
    if not starts:
        return []
    day = starts[0]
    open_: dict[tuple, ObligationInterval] = {}
    last_seen: dict[tuple, tuple[Action, object]] = {}  # identity -> (action, evaluation) it was last seen in
    closed: list[ObligationInterval] = []
    for _ in range(MAX_SEGMENTS):
        evaluation = evaluator.evaluate(bundle, date.fromisoformat(day))
        seen = set()
        continuing = set()
        for action in evaluation.actions:
            candidate = _interval(bundle, action, day, None)
            key = candidate.identity
            seen.add(key)
            continuing.add((action.measure.id, action.target_code, action.rule.id))
            last_seen[key] = (action, evaluation)
            if key not in open_:
                open_[key] = candidate
        for key in [k for k in open_ if k not in seen]:
            interval = open_.pop(key)
            interval.valid_until = day
            action, previous = last_seen.pop(key)
            interval.ended_by, interval.ended_by_record = _why_ended(action, previous, day, continuing)
            closed.append(interval)
        upcoming = _change_days(bundle, evaluation, day)
        # record starts still ahead also matter when nothing is open yet
        if not upcoming:
            break
        day = min(upcoming)
    closed.extend(open_.values())  # still open: valid until further notice
    closed.sort(key=lambda i: (i.target_code, i.measure, i.rule, i.valid_from))
    return closed
