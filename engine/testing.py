"""Run the test cases each rulebook carries (bundle, as_of, expected actions).

A failed expectation says what was expected, what came out instead, and, when a measure
did not apply at all, which condition failed for which record (the same "why not" the CLI
prints), so a rulebook author can fix the rule without a debugger.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from .bundle import parse_bundle
from .compiler import CompiledCatalog
from .errors import BundleError
from .evaluator import Action, Evaluator
from .explain import why

__all__ = ["TestOutcome", "run_rulebook_tests"]


@dataclass
class TestOutcome:
    rulebook: str
    name: str
    file: str
    line: int
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def _matches(action: Action, expected: dict) -> bool:
    if action.measure.id != expected["measure"]:
        return False
    if "target" in expected and action.target_code != expected["target"]:
        return False
    if "status" in expected and action.status != expected["status"]:
        return False
    if "department" in expected and action.department.code != expected["department"]:
        return False
    if "valid_until" in expected and action.valid_until != expected["valid_until"]:
        return False
    return True


def _describe(action: Action) -> str:
    return (f"{action.measure.id} -> {action.target_code} [{action.status}, {action.department.code}, "
            f"until {action.valid_until}]")


def run_rulebook_tests(catalog: CompiledCatalog, evaluator: Evaluator | None = None,
                       only: set[str] | None = None) -> list[TestOutcome]:
    """Run every test of every rulebook (or of the rulebooks named in `only`)."""
    evaluator = evaluator or Evaluator(catalog)
    outcomes = []
    for name, rulebook in sorted(catalog.rulebooks.items()):
        if only and name not in only:
            continue
        for test in rulebook.tests:
            line, _ = rulebook.located.where(("tests", test.index))
            outcome = TestOutcome(name, test.name, rulebook.path, line)
            outcomes.append(outcome)
            try:
                bundle = parse_bundle(test.bundle, vocab=catalog.vocab, source=f"test {test.name!r}")
            except BundleError as exc:
                outcome.failures.append(f"bundle is invalid: {exc.message}")
                continue
            evaluation = evaluator.evaluate(bundle, date.fromisoformat(test.as_of))
            used = set()
            for expected in test.expect:
                found = [a for a in evaluation.actions if _matches(a, expected)]
                if found:
                    used.update(id(a) for a in found)
                    continue
                same_measure = evaluation.actions_for(expected["measure"])
                wanted = ", ".join(f"{k}={v}" for k, v in expected.items())
                if same_measure:
                    got = "; ".join(_describe(a) for a in same_measure)
                    outcome.failures.append(f"expected {wanted}, got {got}")
                else:
                    outcome.failures.append(f"expected {wanted}, but it did not apply: {_why_not(evaluation, expected['measure'])}")
            for measure_id in test.absent:
                for action in evaluation.actions_for(measure_id):
                    outcome.failures.append(f"expected {measure_id} not to apply, got {_describe(action)}")
            if test.only:
                for action in evaluation.actions:
                    if id(action) not in used:
                        outcome.failures.append(f"unexpected action {_describe(action)} (rule {action.rule.id})")
    return outcomes


def _why_not(evaluation, measure_id: str) -> str:
    result = why(evaluation, measure_id)
    reasons = []
    for rule in result["why_not"]:
        for cond in rule["conditions"]:
            if cond["satisfied_by"]:
                continue
            if cond.get("missing"):
                reasons.append(f"rule {rule['rule']} condition {cond['alias']}: {cond['missing']}")
            for near in cond["closest"][:1]:
                reasons.append(f"rule {rule['rule']} condition {cond['alias']}: record {near['record']} "
                               + "; ".join(near["fails"]))
        if rule.get("targets_missing"):
            reasons.append(f"rule {rule['rule']}: no linked {', '.join(rule['targets_missing'])}")
    return " | ".join(reasons) or "no rule applies it"
