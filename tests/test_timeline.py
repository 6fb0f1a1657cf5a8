"""Materialised intervals answer for any date exactly what an evaluation on that date says."""
from datetime import date, timedelta

import pytest

import engine
from engine.timeline import obligation_timeline

from conftest import bundle, entry, org_code, person_code

CASES = [
    bundle(org_code(60), entry("tax.major_violation", "2017-12-01"),
           entry("safety.dishonest", "2025-01-01", status="repaired", status_on="2025-05-01"),
           {"id": "a", "kind": "rating", "scheme": "tax.credit", "grade": "A", "decided_on": "2024-04-01"},
           {"id": "b", "kind": "rating", "scheme": "tax.credit", "grade": "B", "decided_on": "2025-04-01"}),
    bundle(org_code(61), entry("court.judgment_defaulter", "2023-02-01", document="D"),
           {"id": "p", "kind": "penalty", "severity": "serious", "decided_on": "2023-03-01", "document": "D"},
           entry("environment.serious_violation", "2022-06-01", status="disputed"),
           {"id": "rel", "kind": "relation", "type": "principal", "other": person_code(61), "listed_on": "2022-01-01",
            "status": "revoked", "status_on": "2024-01-01"},
           entry("safety.dishonest", "2023-06-01", expires_on="2024-03-01")),
]


@pytest.mark.parametrize("obj", CASES, ids=["tax-rating-repair", "court-join-dispute-relation"])
def test_intervals_agree_with_point_evaluations(evaluator, obj):
    b = engine.parse_bundle(obj)
    intervals = obligation_timeline(evaluator, b)
    assert intervals
    day = date(2016, 1, 1)
    while day < date(2030, 1, 1):
        d = day.isoformat()
        at = {(a.measure.id, a.target_code, a.rule.id, a.status, a.department.code)
              for a in evaluator.evaluate(b, day).actions}
        held = {(i.measure, i.target_code, i.rule, i.status, i.department) for i in intervals
                if i.valid_from <= d and (i.valid_until is None or d < i.valid_until)}
        assert held == at, d
        day += timedelta(days=11)


def test_no_routed_record_means_no_obligation_and_no_evaluation(evaluator):
    b = engine.parse_bundle(bundle(org_code(62), {"id": "p", "kind": "penalty", "severity": "general", "decided_on": "2021-01-01"}))
    assert obligation_timeline(evaluator, b) == []
