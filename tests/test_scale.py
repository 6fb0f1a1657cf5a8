"""One process evaluates 100,000 subjects, most with no matching record, with no error and
no memory growth (the durable-rules traps show up only at this scale)."""
from datetime import date

import engine

from conftest import bundle, entry, org_code, person_code


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def population(n):
    for i in range(n):
        kind = i % 50
        if kind == 0:
            yield bundle(org_code(i), entry("safety.dishonest", "2025-01-01"))
        elif kind == 1:
            yield bundle(org_code(i), entry("tax.major_violation", "2024-06-01"),
                         {"id": "rel", "kind": "relation", "type": "legal_representative", "other": person_code(i)})
        elif kind == 2:
            yield bundle(org_code(i), {"id": "a", "kind": "rating", "scheme": "tax.credit", "grade": "A", "decided_on": "2025-04-01"})
        else:
            yield bundle(org_code(i),
                         {"id": "p", "kind": "penalty", "severity": "general", "decided_on": "2021-03-01"},
                         {"id": "b", "kind": "rating", "scheme": "tax.credit", "grade": "B", "decided_on": "2025-04-01"},
                         entry("tax.major_violation", "2019-01-01", status="expired", status_on="2022-01-01"))


def test_100000_subjects_without_error_or_memory_growth(evaluator):
    as_of = date(2025, 6, 30)
    counts = {"subjects": 0, "with_actions": 0, "actions": 0}
    checkpoint = None
    for i, obj in enumerate(population(100_000)):
        evaluation = evaluator.evaluate(engine.parse_bundle(obj), as_of)
        counts["subjects"] += 1
        counts["actions"] += len(evaluation.actions)
        counts["with_actions"] += bool(evaluation.actions)
        if i == 20_000:
            checkpoint = rss_mb()
    growth = rss_mb() - checkpoint
    assert counts["subjects"] == 100_000
    assert counts["with_actions"] == 3 * 100_000 // 50
    # 2,000 safety (1 action) + 2,000 tax violators (6 subject actions + 1 for the person) + 2,000 A-grade (2)
    assert counts["actions"] == 2000 * 1 + 2000 * 7 + 2000 * 2
    assert growth < 15, f"RSS grew {growth:.1f} MB between subject 20,000 and 100,000"
