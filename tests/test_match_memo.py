"""The match memo (engine/match_memo.py): firings recalled by fact values must be exactly
what durable-rules answers, bound to the asking session's own facts."""
from datetime import timedelta

from hypothesis import HealthCheck, given, settings, strategies as st

import engine
from engine.adapter import DurableRulesAdapter
from engine.match_memo import MatchMemo, fields_read

from conftest import org_code
from test_differential import BASE, PROBE, record

JOINED = {
    # a list entry and a penalty decided under the same document
    "joined": {"all": [{"a0": {"$and": [{"kind": "list_entry"}, {"list": "L"}]}},
                       {"a1": {"$and": [{"kind": "penalty"}, {"document": {"a0": "document"}}]}}]},
    "serious": {"all": [{"a0": {"$and": [{"kind": "penalty"}, {"severity": "serious"}]}}]},
}


def entry(fact_id, document="D1", **more):
    return {"id": fact_id, "kind": "list_entry", "list": "L", "document": document, **more}


def penalty(fact_id, severity, document="D1", **more):
    return {"id": fact_id, "kind": "penalty", "severity": severity, "document": document, **more}


def fired(session, fact):
    return sorted((rule, tuple(sorted(bound.items()))) for _, rule, bound in session.assert_fact("joined", fact))


def adapter_with(spec):
    adapter = DurableRulesAdapter()
    adapter.register("joined", spec)
    return adapter


def test_a_recalled_fact_is_sent_before_the_next_fact_durable_rules_must_match():
    adapter = adapter_with(JOINED)
    with adapter.session() as s:
        fired(s, entry("e1"))
        assert fired(s, penalty("p1", "general")) == [("joined", (("a0", "e1"), ("a1", "p1")))]
    with adapter.session() as s:
        assert fired(s, entry("e2")) == []  # recalled: not sent to durable-rules
        assert adapter.memo.hits == 1
        # a sequence never seen: only a durable-rules that holds e2 can join it
        assert fired(s, penalty("p2", "serious")) == [("joined", (("a0", "e2"), ("a1", "p2"))),
                                                      ("serious", (("a0", "p2"),))]
    with adapter.session() as s:  # and everything sent was retracted: nothing left to join with
        assert fired(s, penalty("p3", "serious", document="D9")) == [("serious", (("a0", "p3"),))]


def test_recalled_firings_name_the_asking_sessions_facts_and_ignore_fields_no_rule_reads():
    adapter = adapter_with(JOINED)
    with adapter.session() as s:
        fired(s, entry("e1", note="first"))
        fired(s, penalty("p1", "general", note="x"))
    hits = adapter.memo.hits
    with adapter.session() as s:
        fired(s, entry("other-entry", note="second"))  # `note` is read by no rule
        assert fired(s, penalty("other-penalty", "general", note="y")) == \
            [("joined", (("a0", "other-entry"), ("a1", "other-penalty")))]
    assert adapter.memo.hits == hits + 2
    with adapter.session() as s:  # `document` is read (joined on): another value is another question
        fired(s, entry("e3", document="D2"))
        assert fired(s, penalty("p3", "general")) == []
    assert adapter.memo.hits == hits + 2


def test_a_ruleset_that_reads_fact_ids_is_always_asked():
    spec = {"one": {"all": [{"a0": {"id": "chosen"}}]}}
    assert fields_read(spec) is None and fields_read(JOINED) is not None
    adapter = adapter_with(spec)
    for fact_id, expected in (("chosen", ["one"]), ("another", []), ("chosen", ["one"])):
        with adapter.session() as s:
            assert [rule for _, rule, _ in s.assert_fact("joined", {"id": fact_id})] == expected
    assert adapter.memo.hits == 0 and len(adapter.memo) == 0


def test_a_value_that_cannot_be_hashed_leaves_the_rest_of_the_session_to_durable_rules():
    adapter = adapter_with(JOINED)
    for _ in range(2):
        with adapter.session() as s:
            fired(s, entry("e1", document=["not", "hashable"]))
            assert fired(s, penalty("p1", "serious")) == [("serious", (("a0", "p1"),))]
    assert adapter.memo.hits == 0


def test_a_full_memo_starts_afresh():
    memo = MatchMemo(limit=2)
    for n in range(3):
        memo.keep(("r", n), ["x"], [("rule", {"a0": "x"})])
    assert len(memo) == 1 and memo.recall(("r", 2), ["y"]) == [("rule", {"a0": "y"})]
    assert memo.recall(("r", 0), ["y"]) is None
    memo.keep(("r", 9), ["x", "x"], [])  # two facts with one id: a position would be ambiguous
    assert memo.recall(("r", 9), ["x", "x"]) is None


_evaluators = {}


def evaluators():
    """Two evaluators of one catalog on their own Hosts: one asks durable-rules every time."""
    if not _evaluators:
        catalog = engine.compile_rulebooks([str(PROBE)])
        plain = DurableRulesAdapter()
        plain.memo = None
        _evaluators["plain"] = engine.Evaluator(catalog, plain)
        _evaluators["memo"] = engine.Evaluator(catalog, DurableRulesAdapter())
    return _evaluators["plain"], _evaluators["memo"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record, min_size=0, max_size=6), st.integers(0, 400))
def test_recalled_evaluations_equal_durable_rules_own(records, shift):
    plain, memo = evaluators()
    as_of = BASE - timedelta(days=shift)

    def evaluate(evaluator, prefix):
        raw = [dict(r, id=f"{prefix}{i}") for i, r in enumerate(records)]
        return evaluator.evaluate(engine.parse_bundle({"subject": {"code": org_code(77)}, "records": raw}), as_of)

    expected = evaluate(plain, "r")
    evaluate(memo, "first")  # teaches the memo this bundle's sequences (where durable-rules is asked)
    misses = memo.adapter.memo.misses
    again = evaluate(memo, "r")  # the same values under other ids: every fact recalled, none sent
    assert memo.adapter.memo.misses == misses
    assert [(f.rule, f.bindings, f.round) for f in again.firings] == \
        [(f.rule, f.bindings, f.round) for f in expected.firings]
    assert again.to_dict() == expected.to_dict()
