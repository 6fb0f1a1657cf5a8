"""Evaluate one subject bundle on one date: route records to rulesets, match them on
durable-rules, turn firings into obligated actions per department, follow derived records,
then resolve incentives against punishments.

The clock is never read: `as_of` is an argument, so the same bundle, date and rulebook
revisions give the same actions, always. Records no rule can read never reach durable-rules
(most subjects have none), which is what makes evaluation fast.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from catalog.vocabulary import Department

from .adapter import DurableRulesAdapter, default_adapter
from .bundle import Bundle, Record, Subject
from .compiler import CompiledCatalog, window_field
from .model import Measure, Rule, SUBJECT
from .resolve import resolve
from .temporal import RecordState, record_states, shift, window_start

__all__ = ["Action", "FiringTrace", "Evaluation", "Evaluator"]

_KEY_FIELDS = ("list", "scheme", "grade", "severity", "category", "type", "department", "document")


@dataclass
class FiringTrace:
    """One match: a rule, the records bound to its conditions, and the round it happened in."""

    rule: str
    bindings: dict[str, str]  # rulebook alias -> record id
    round: int


@dataclass
class Action:
    """An obligation of one department towards one target, with where it came from."""

    measure: Measure
    rule: Rule
    target_code: str
    target_relation: str | None  # None: the subject itself
    target_name: str
    relation_record: str | None
    departments: list[Department]  # the department the measure names, then successors
    records: list[str]
    valid_from: str | None
    valid_until: str | None
    disputed: bool
    firings: list[int] = field(default_factory=list)
    status: str = "active"
    suspended_by: list[str] = field(default_factory=list)

    @property
    def department(self) -> Department:
        return self.departments[-1]

    def to_dict(self, catalog: CompiledCatalog) -> dict:
        dept = self.department
        data = {
            "measure": self.measure.id,
            "kind": self.measure.kind,
            "action": self.measure.action,
            "department": {"code": dept.code, "name": dept.name},
            "effects": [e.to_dict() for e in self.measure.effects],
            "rule": self.rule.id,
            "rulebook": self.rule.rulebook,
            "target": {"code": self.target_code, "relation": self.target_relation or SUBJECT},
            "records": list(self.records),
            "basis": [catalog.vocab.bases[b].to_dict() for b in self.measure.basis],
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "status": self.status,
            "suspended_by": list(self.suspended_by),
        }
        if len(self.departments) > 1:
            data["department"]["assigned_as"] = [{"code": d.code, "name": d.name} for d in self.departments[:-1]]
        return data


@dataclass
class Evaluation:
    subject: Subject
    as_of: str
    revisions: dict[str, str]
    actions: list[Action]
    firings: list[FiringTrace]
    records: dict[str, Record]
    states: dict[str, RecordState]
    bundle: Bundle
    catalog: CompiledCatalog = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject.to_dict(),
            "as_of": self.as_of,
            "rulebooks": dict(self.revisions),
            "actions": [a.to_dict(self.catalog) for a in self.actions],
        }

    def actions_for(self, measure_id: str) -> list[Action]:
        return [a for a in self.actions if a.measure.id == measure_id]


class Evaluator:
    """Evaluates bundles against a compiled catalog. Safe to share between threads."""

    MAX_ROUNDS = 16

    def __init__(self, catalog: CompiledCatalog, adapter: DurableRulesAdapter | None = None):
        self.catalog = catalog
        self.adapter = adapter or default_adapter()
        for name, rules in catalog.rulesets.items():
            self.adapter.register(name, rules)

    def evaluate(self, bundle: Bundle, as_of: date) -> Evaluation:
        catalog = self.catalog
        as_of_s = as_of.isoformat()
        routed: list[tuple[Record, set[str], set[str], bool]] = []
        for record in bundle.records:
            route = catalog.route_for(record.kind, record.key, record.grade)
            if route is not None:
                routed.append((record, *route))
        records = {r.id: r for r in bundle.records}
        evaluation = Evaluation(subject=bundle.subject, as_of=as_of_s, revisions=catalog.revisions, actions=[],
                                firings=[], records=records, states={}, bundle=bundle, catalog=catalog)
        if not routed:
            return evaluation  # nothing any rule reads: the common case, no engine round trip
        relations = [r for r in bundle.records if r.kind == "relation"]
        considered = [r for r, *_ in routed] + relations
        if any(r.kind == "rating" for r in considered):
            # a later rating supersedes an earlier one even when no rule reads its grade
            considered += [r for r in bundle.records if r.kind == "rating" and r not in considered]
        states = record_states(considered, as_of_s, catalog.vocab)
        evaluation.states = states
        pending = []
        for record, rulesets, windows, reads_inactive in routed:
            state = states[record.id]
            if state.live or reads_inactive:
                pending.append((self._fact(record, state, windows, as_of_s), rulesets))
        if not pending:
            return evaluation
        builder = _ActionBuilder(evaluation, relations, as_of, as_of_s)
        with self.adapter.session() as session:
            for round_no in range(self.MAX_ROUNDS):
                fired = []
                for fact, rulesets in pending:
                    for ruleset in sorted(rulesets):
                        fired.extend(session.assert_fact(ruleset, fact))
                new_actions = builder.add(fired, round_no)
                pending = self._derived_facts(new_actions, evaluation, as_of_s)
                if not pending:
                    break
        evaluation.actions = resolve(builder.finish())
        return evaluation

    @staticmethod
    def _fact(record: Record, state: RecordState, windows, as_of_s: str) -> dict:
        fact = {"id": record.id, "kind": record.kind, "status": state.status, "live": state.live}
        for name in _KEY_FIELDS:
            value = getattr(record, name)
            if value is not None:
                fact[name] = value
        if record.kind == "rating":
            fact["current"] = state.current
        for period in windows:
            fact[window_field(period)] = record.start is not None and record.start >= window_start(as_of_s, period)
        return fact

    def _derived_facts(self, new_actions: list[Action], evaluation: Evaluation, as_of_s: str) -> list:
        pending = []
        for action in new_actions:
            derives = action.measure.derives
            if derives is None or action.target_relation is not None:
                continue
            rid = f"derived:{action.measure.id}"
            if rid in evaluation.records:
                continue
            record = Record(id=rid, kind=derives.record, status="disputed" if action.disputed else "active",
                            start=action.valid_from, expires_on=action.valid_until, list=derives.list,
                            scheme=derives.scheme, grade=derives.grade, key=derives.key,
                            derived_from=(action.measure.id, action.rule.id))
            state = RecordState(record.status, True, action.valid_from, action.valid_until, "derived")
            evaluation.records[rid] = record
            evaluation.states[rid] = state
            route = self.catalog.route_for(record.kind, record.key, record.grade)
            if route is not None:
                rulesets, windows, _ = route
                pending.append((self._fact(record, state, windows, as_of_s), rulesets))
        return pending


class _ActionBuilder:
    """Turns firings into actions, merging the same measure for the same target and rule."""

    def __init__(self, evaluation: Evaluation, relations: list[Record], as_of: date, as_of_s: str):
        self.evaluation = evaluation
        self.catalog = evaluation.catalog
        self.relations = relations
        self.as_of = as_of
        self.as_of_s = as_of_s
        self.actions: dict[tuple[str, str, str], Action] = {}

    def _targets(self, rule: Rule):
        subject = self.evaluation.subject
        bundle = self.evaluation.bundle
        states = self.evaluation.states
        for target in rule.targets:
            if target == SUBJECT:
                yield subject.code, None, subject.name, None, None
                continue
            for rel in self.relations:
                if rel.type != target or rel.other is None:
                    continue
                state = states.get(rel.id)
                if state is None or not state.live:
                    continue
                other = bundle.related_subject(rel.other)
                yield rel.other, target, other.name if other else "", rel.id, state.valid_until

    def add(self, fired, round_no: int) -> list[Action]:
        catalog, evaluation = self.catalog, self.evaluation
        states = evaluation.states
        created = []
        for _ruleset, rule_id, bound in fired:
            rule = catalog.rules[rule_id]
            names = catalog.alias_names[rule_id]
            bindings = {names[a]: rid for a, rid in bound.items()}
            index = len(evaluation.firings)
            evaluation.firings.append(FiringTrace(rule_id, bindings, round_no))
            record_ids = [bindings[c.alias] for c in rule.conditions]
            starts = [states[r].valid_from for r in record_ids if states[r].valid_from]
            valid_from = max(starts) if starts else None
            ends = [states[r].valid_until for r in record_ids if states[r].valid_until]
            for c in rule.conditions:
                start = states[bindings[c.alias]].valid_from
                if c.within and start:
                    ends.append(shift(start, c.within))
            disputed = any(states[r].status == "disputed" for r in record_ids)
            for code, relation, name, rel_id, rel_until in self._targets(rule):
                target_ends = ends + ([rel_until] if rel_until else [])
                for measure_id in rule.apply:
                    measure = catalog.measures[measure_id]
                    until_candidates = list(target_ends)
                    if measure.lasts != "while_listed" and valid_from:
                        until_candidates.append(shift(valid_from, measure.lasts))
                    valid_until = min(until_candidates) if until_candidates else None
                    if valid_until is not None and valid_until <= self.as_of_s:
                        continue  # the measure's own term has run out
                    key = (measure_id, code, rule_id)
                    action = self.actions.get(key)
                    if action is None:
                        action = Action(measure=measure, rule=rule, target_code=code, target_relation=relation,
                                        target_name=name, relation_record=rel_id,
                                        departments=catalog.vocab.department_chain(measure.department, self.as_of),
                                        records=list(record_ids), valid_from=valid_from, valid_until=valid_until,
                                        disputed=disputed, firings=[index])
                        self.actions[key] = action
                        created.append(action)
                        continue
                    action.firings.append(index)
                    for rid in record_ids:
                        if rid not in action.records:
                            action.records.append(rid)
                    if valid_from and (action.valid_from is None or valid_from < action.valid_from):
                        action.valid_from = valid_from
                    if action.valid_until is not None and (valid_until is None or valid_until > action.valid_until):
                        action.valid_until = valid_until
                    # An obligation is disputed only if every record that supports it is.
                    action.disputed = action.disputed and disputed
        return created

    def finish(self) -> list[Action]:
        return sorted(self.actions.values(),
                      key=lambda a: (a.department.code, a.measure.id, a.target_code, a.rule.id))
