from engine.bundle import parse_bundle
from engine.temporal import record_states

from conftest import bundle, entry, org_code


def states(vocab, *records, as_of="2025-06-30"):
    b = parse_bundle(bundle(org_code(5), *records))
    return [record_states(b.records, as_of, vocab)[r.id] for r in b.records]


def test_a_repair_counts_from_its_date_not_before(vocab):
    rec = entry("tax.major_violation", "2024-01-01", status="repaired", status_on="2025-03-01")
    (before,) = states(vocab, rec, as_of="2025-02-28")
    (after,) = states(vocab, rec, as_of="2025-03-01")
    assert before.live and before.status == "active" and before.valid_until == "2025-03-01"
    assert not after.live and after.status == "repaired"


def test_expires_on_default_term_and_publication_max(vocab):
    court = entry("court.judgment_defaulter", "2023-01-10")  # default term P2Y
    (s,) = states(vocab, court, as_of="2025-01-09")
    assert s.live and s.valid_until == "2025-01-10" and s.ended_by == "default_term"
    (s,) = states(vocab, court, as_of="2025-01-10")
    assert not s.live and s.status == "expired"
    long = entry("court.judgment_defaulter", "2019-01-10", expires_on="2030-01-01")  # publication max P5Y
    (s,) = states(vocab, long, as_of="2025-06-30")
    assert not s.live and s.ended_by == "publication_max" and s.valid_until == "2024-01-10"


def test_a_record_that_starts_later_is_pending(vocab):
    (s,) = states(vocab, entry("tax.major_violation", "2025-07-01"))
    assert s.status == "pending" and not s.live


def test_only_the_latest_rating_is_current(vocab):
    a = {"id": "a", "kind": "rating", "scheme": "tax.credit", "grade": "A", "decided_on": "2024-04-01"}
    b = {"id": "b", "kind": "rating", "scheme": "tax.credit", "grade": "B", "decided_on": "2025-04-01"}
    sa, sb = states(vocab, a, b)
    assert sb.current and sb.live
    assert not sa.current and sa.status == "superseded"
    sa, sb = states(vocab, a, b, as_of="2025-01-01")  # before the B rating, A was the grade
    assert sa.current and sa.live and sa.valid_until == "2025-04-01"
