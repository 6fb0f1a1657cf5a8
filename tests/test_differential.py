"""The compiled durable-rules expressions against an independent oracle.

durable-rules accepts a wrongly shaped expression (operator inside the field) without a word
and never matches it; a compiler bug of that kind passes any test that only checks positive
cases. Here random bundles are matched both by durable-rules and by the plain-Python reading
of the same conditions, and every firing must agree, both ways.
"""
from datetime import date, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

import engine
from engine.reference import rule_matches

from conftest import org_code

PROBE = Path(__file__).resolve().parent / "data" / "differential"
LISTS = ["tax.major_violation", "procurement.serious_violation", "court.judgment_defaulter", "market.serious_illegal",
         "construction.blacklist", "safety.dishonest"]
STATUSES = ["active", "repaired", "revoked", "expired", "disputed"]
BASE = date(2025, 6, 30)


def day(offset):
    return (BASE - timedelta(days=offset)).isoformat()


def listed_then_status(offsets):
    """listed_on, and a status_on not before it (a bundle refuses one that is: status_before_start)."""
    listed, later = offsets
    return {"listed_on": day(listed), "status_on": day(max(listed - later, -30))}


record = st.one_of(
    st.tuples(st.fixed_dictionaries({
        "kind": st.just("list_entry"), "list": st.sampled_from(LISTS), "status": st.sampled_from(STATUSES),
        "document": st.sampled_from(["D1", "D2"]),
    }), st.tuples(st.integers(-30, 2000), st.integers(0, 930)).map(listed_then_status)).map(lambda p: {**p[0], **p[1]}),
    st.fixed_dictionaries({
        "kind": st.just("rating"), "scheme": st.just("tax.credit"), "grade": st.sampled_from(["A", "B", "M", "C", "D"]),
        "decided_on": st.integers(0, 1000).map(day), "status": st.sampled_from(["active", "disputed"]),
    }),
    st.fixed_dictionaries({
        "kind": st.just("penalty"), "severity": st.sampled_from(["general", "serious"]),
        "decided_on": st.integers(0, 1500).map(day), "department": st.sampled_from(["housing", "market", "tax"]),
        "document": st.sampled_from(["D1", "D2"]), "status": st.just("active"),
    }),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record, min_size=0, max_size=6), st.integers(0, 400))
def test_durable_rules_and_the_reference_agree(records, shift):
    catalog = _catalog()
    for i, r in enumerate(records):
        r["id"] = f"r{i}"
    as_of = BASE - timedelta(days=shift)
    evaluation = _evaluator().evaluate(engine.parse_bundle({"subject": {"code": org_code(77)}, "records": records}), as_of)
    fired = {(f.rule, tuple(sorted(f.bindings.items()))) for f in evaluation.firings}
    expected = set()
    recs = list(evaluation.bundle.records)
    states = {r.id: s for r, s in ((r, evaluation.states.get(r.id)) for r in recs) if s is not None}
    # records the router never read are in no state; the oracle reads them as they are
    from engine.temporal import record_states
    all_states = record_states(recs, as_of.isoformat(), catalog.vocab)
    all_states.update(states)
    for rule in catalog.rules.values():
        for binding in rule_matches(rule, recs, all_states, as_of.isoformat()):
            expected.add((rule.id, tuple(sorted(binding.items()))))
    assert fired == expected


_cache = {}


def _catalog():
    if "c" not in _cache:
        _cache["c"] = engine.compile_rulebooks([str(PROBE)])
    return _cache["c"]


def _evaluator():
    if "e" not in _cache:
        _cache["e"] = engine.Evaluator(_catalog())
    return _cache["e"]


def test_the_inner_operator_spelling_is_silently_wrong():
    """The trap the differential test guards against, shown on durable-rules itself.

    Measured here (durable-rules 2.0.28): the inner spelling is accepted and then ignores
    its operator, matching any fact that has the field, so it fires where it must not.
    """
    from engine.adapter import DurableRulesAdapter

    adapter = DurableRulesAdapter()
    adapter.register("shape_probe", {
        "outer": {"all": [{"a0": {"$lte": {"listed_on": "2025-01-01"}}}]},
        "inner": {"all": [{"a0": {"listed_on": {"$lte": "2025-01-01"}}}]},
    })
    with adapter.session() as s:
        before = [rule for _, rule, _ in s.assert_fact("shape_probe", {"id": "x", "listed_on": "2024-06-01"})]
    with adapter.session() as s:
        after = [rule for _, rule, _ in s.assert_fact("shape_probe", {"id": "y", "listed_on": "2026-06-01"})]
    assert "outer" in before and "outer" not in after  # the form the compiler emits is right
    assert "inner" in after  # the other form matches a date it should reject
