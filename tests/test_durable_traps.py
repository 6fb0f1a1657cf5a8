"""Each trap of ../shared/docs/durable-rules-notes.md, with a test that fails without its
handling in engine/adapter.py (or engine/compiler.py)."""
import json
import subprocess
import sys
import threading
import tomllib
from datetime import date
from pathlib import Path

import pytest

import engine
from engine.adapter import RECYCLE_AFTER, DurableRulesAdapter

from conftest import ROOT, TEST_RULEBOOKS, bundle, entry, org_code


def spec(list_code="L"):
    return {"r1": {"all": [{"a0": {"$and": [{"kind": "list_entry"}, {"list": list_code}, {"live": True}]}}]}}


def test_a_fact_no_rule_matches_is_not_an_error():
    adapter = DurableRulesAdapter()
    adapter.register("unmatched", spec())
    with adapter.session() as s:
        assert s.assert_fact("unmatched", {"id": "x", "kind": "penalty"}) == []
        assert [r for _, r, _ in s.assert_fact("unmatched", {"id": "y", "kind": "list_entry", "list": "L", "live": True})] == ["r1"]


def test_unmatched_routed_facts_through_the_evaluator(evaluate):
    # live, so it is routed to the ruleset that reads its list, but outside the rule's P1Y window
    old = entry("environment.serious_violation", "2023-09-01")
    ev = evaluate(bundle(org_code(30), old))
    assert ev.actions == [] and ev.states[old["id"]].live


def test_firings_are_exact_for_many_facts_in_one_subject(evaluate):
    """The batch path drops firings; one fact at a time gives every one of them."""
    records = [entry("safety.dishonest", f"2025-0{1 + i % 5}-0{1 + i % 9}") for i in range(40)]
    ev = evaluate(bundle(org_code(31), *records))
    assert len([f for f in ev.firings if f.rule == "rewards.safety_listed"]) == 40
    assert ev.actions_for("rewards.safety_inspections")[0].records == [r["id"] for r in records]


def test_more_than_1024_subjects_in_one_process(evaluator):
    """A sid per subject would raise MemoryError at the 1025th; one fixed sid never does."""
    for i in range(1500):
        ev = evaluator.evaluate(engine.parse_bundle(bundle(org_code(1000 + i), entry("safety.dishonest", "2025-01-01"))),
                                date(2025, 6, 30))
        assert len(ev.actions) == 1


def test_subjects_with_only_unmatched_facts_do_not_crash_the_process():
    """delete_state on a sid that only saw unmatched facts is a SIGSEGV: run it in a child."""
    code = f"""
import sys; sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r})
from datetime import date
import engine
from conftest import bundle, entry, org_code
ev = engine.Evaluator(engine.compile_rulebooks([{str(TEST_RULEBOOKS)!r}]))
n = 0
for i in range(3000):
    recs = [entry("tax.major_violation", "2010-01-01")] if i % 2 else [entry("safety.dishonest", "2025-01-01")]
    n += len(ev.evaluate(engine.parse_bundle(bundle(org_code(i), *recs)), date(2025, 6, 30)).actions)
print(n)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "1500"


def test_the_compiler_never_emits_a_nex_only_condition(shipped, test_catalog):
    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)
    for catalog in (shipped, test_catalog):
        keys = set(walk(catalog.rulesets))
        assert "$nex" not in keys and "$ex" not in keys
        for rules in catalog.rulesets.values():
            for rule in rules.values():
                for condition in rule["all"]:
                    (expr,) = condition.values()
                    assert "kind" in expr or "$and" in expr  # every condition names its record kind


def test_reloading_rulebooks_while_serving(tmp_path):
    """A ruleset name registers once only: revisions get their own names, old evaluators keep working."""
    source = (TEST_RULEBOOKS / "rewards.yaml").read_text(encoding="utf-8")
    path = tmp_path / "rewards.yaml"
    path.write_text(source, encoding="utf-8")
    first = engine.Evaluator(engine.compile_rulebooks([str(path)]))
    again = engine.Evaluator(engine.compile_rulebooks([str(path)]))  # same revision: reused, no error
    path.write_text(source.replace("list: safety.dishonest", "list: environment.serious_violation"), encoding="utf-8")
    second = engine.Evaluator(engine.compile_rulebooks([str(path)]))
    obj = bundle(org_code(40), entry("safety.dishonest", "2025-01-01"))
    assert first.evaluate(engine.parse_bundle(obj), date(2025, 6, 30)).actions
    assert again.evaluate(engine.parse_bundle(obj), date(2025, 6, 30)).actions
    assert not second.evaluate(engine.parse_bundle(obj), date(2025, 6, 30)).actions
    assert first.catalog.revisions != second.catalog.revisions


def test_retired_rulesets_are_recycled_with_a_fresh_host():
    adapter = DurableRulesAdapter()
    adapter.register("keep", spec("K"))
    for i in range(RECYCLE_AFTER):
        adapter.register(f"old{i}", spec())
        adapter.retire(f"old{i}")
    assert adapter.hosts_created == 2
    assert adapter.live_rulesets == ["keep"]
    with adapter.session() as s:  # the live ruleset was registered again on the new host
        assert s.assert_fact("keep", {"id": "k", "kind": "list_entry", "list": "K", "live": True})


def test_concurrent_evaluations_agree_with_serial(evaluator):
    objs = [bundle(org_code(2000 + i), entry("safety.dishonest", "2025-01-01"),
                   {"id": "a", "kind": "rating", "scheme": "tax.credit", "grade": "A", "decided_on": "2025-04-01"})
            for i in range(200)]
    serial = [json.dumps(evaluator.evaluate(engine.parse_bundle(o), date(2025, 6, 30)).to_dict()) for o in objs]
    results, errors = {}, []

    def work(offset):
        try:
            for i in range(offset, len(objs), 4):
                results[i] = json.dumps(evaluator.evaluate(engine.parse_bundle(objs[i]), date(2025, 6, 30)).to_dict())
        except Exception as exc:  # pragma: no cover - surfaced below
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [results[i] for i in range(len(objs))] == serial


def test_python_313_is_excluded():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    from packaging.specifiers import SpecifierSet

    spec_set = SpecifierSet(project["requires-python"])
    assert "3.12.5" in spec_set and "3.11.0" in spec_set and "3.13.0" not in spec_set


def test_an_exception_in_a_rule_action_is_raised_not_swallowed():
    """durable-rules drops a firing whose action raises; the adapter turns that into an error."""
    from engine.errors import EvaluationError

    adapter = DurableRulesAdapter()
    adapter.register("raising", spec())

    class Exploding(list):
        def append(self, item):
            raise RuntimeError("boom")

    adapter._buffer = Exploding()
    with pytest.raises(EvaluationError, match="boom"):
        with adapter.session() as s:
            s.assert_fact("raising", {"id": "y", "kind": "list_entry", "list": "L", "live": True})


def test_hosts_start_no_background_dispatch_threads():
    """durable-rules' Host re-arms a threading.Timer per ruleset every 0.2 s for ever (also for a
    replaced Host); jointcredit never needs them, and in the server they cost ~10% of the CPU."""
    started = []
    original = threading.Thread.start

    def spy(self):
        started.append(self.name)
        return original(self)

    threading.Thread.start = spy
    try:
        adapter = DurableRulesAdapter()
        adapter.register("keep", spec("K"))
        for i in range(RECYCLE_AFTER):  # a replaced Host too
            adapter.register(f"old{i}", spec())
            adapter.retire(f"old{i}")
        with adapter.session() as s:
            assert s.assert_fact("keep", {"id": "k", "kind": "list_entry", "list": "K", "live": True})
    finally:
        threading.Thread.start = original
    assert adapter.hosts_created == 2
    assert started == []
