"""Evaluation end to end on the test rulebooks: actions, targets, departments and their
successors, validity, resolution of incentives, disputed records, derived-record chains."""
from datetime import date

import engine

from conftest import bundle, entry, org_code, person_code


def rel(type_, other, **extra):
    return {"id": f"rel-{type_}-{other[-4:]}", "kind": "relation", "type": type_, "other": other,
            "listed_on": "2020-01-01", **extra}


def a_grade(decided_on="2025-04-01"):
    return {"id": "rating-A", "kind": "rating", "scheme": "tax.credit", "grade": "A", "decided_on": decided_on}


def by_measure(evaluation):
    return {(a.measure.id, a.target_code): a for a in evaluation.actions}


def test_a_subject_with_no_relevant_record_gets_nothing(evaluate):
    ev = evaluate(bundle(org_code(10), {"id": "p", "kind": "penalty", "severity": "general", "decided_on": "2020-01-01"}))
    assert ev.actions == [] and ev.firings == []


def test_major_violator_fans_out_to_departments_and_the_legal_representative(evaluate):
    person = person_code(10)
    ev = evaluate(bundle(org_code(11), entry("tax.major_violation", "2024-03-15", document="达税稽罚〔2024〕1号"),
                         rel("legal_representative", person), related=[person]))
    actions = by_measure(ev)
    assert actions[("tax.procurement_ban", org_code(11))].department.code == "finance"
    restriction = actions[("tax.director_restriction", person)]
    assert restriction.target_relation == "legal_representative"
    assert restriction.target_name == f"个人{person[-4:]}"
    assert restriction.valid_from == "2024-03-15" and restriction.valid_until == "2027-03-15"
    data = ev.to_dict()
    assert data["rulebooks"]["taxation"] == ev.catalog.rulebooks["taxation"].revision
    ban = next(a for a in data["actions"] if a["measure"] == "tax.procurement_ban")
    assert ban["effects"] == [{"activity": "government_procurement", "effect": "deny"}]
    assert {b["id"] for b in ban["basis"]} == {"gpl.art22", "mou_2016_2798"}
    assert ban["target"] == {"code": org_code(11), "relation": "subject"}


def test_a_measure_of_an_abolished_department_reaches_its_successor(evaluate):
    rec = entry("tax.major_violation", "2018-01-10")
    before = by_measure(evaluate(bundle(org_code(12), rec), date(2018, 5, 1)))
    after = by_measure(evaluate(bundle(org_code(12), rec), date(2019, 5, 1)))
    grade_d_before = before[("tax.credit_grade_d", org_code(12))]
    grade_d_after = after[("tax.credit_grade_d", org_code(12))]
    assert [d.code for d in grade_d_before.departments] == ["state_tax"]
    assert [d.code for d in grade_d_after.departments] == ["state_tax", "tax"]
    assert grade_d_after.department.name == "市税务局"


def test_derived_d_grade_chains_into_another_rule(evaluate):
    ev = evaluate(bundle(org_code(13), entry("tax.major_violation", "2024-03-15")))
    invoice = by_measure(ev)[("tax.d_grade_invoice_control", org_code(13))]
    assert invoice.records == ["derived:tax.credit_grade_d"]
    assert ev.records["derived:tax.credit_grade_d"].derived_from == ("tax.credit_grade_d", "tax.major_violator.subject")
    assert [f.round for f in ev.firings] == [0, 0, 1]


def test_incentives_are_suspended_by_any_punishment(evaluate):
    clean = by_measure(evaluate(bundle(org_code(14), a_grade())))
    assert clean[("rewards.green_channel", org_code(14))].status == "active"
    listed = by_measure(evaluate(bundle(org_code(14), a_grade(), entry("safety.dishonest", "2025-01-01"))))
    green = listed[("rewards.green_channel", org_code(14))]
    assert green.status == "suspended" and green.suspended_by == ["rewards.safety_inspections"]
    assert listed[("rewards.bank_credit", org_code(14))].status == "suspended"


def test_a_disputed_record_triggers_and_is_marked(evaluate):
    ev = evaluate(bundle(org_code(15), entry("tax.major_violation", "2025-01-01", status="disputed")))
    assert {a.status for a in ev.actions} == {"disputed"}


def test_repaired_revoked_and_expired_stop_from_their_date(evaluate):
    for status in ("repaired", "revoked", "expired"):
        rec = entry("tax.major_violation", "2024-01-01", status=status, status_on="2025-02-01")
        assert evaluate(bundle(org_code(16), rec), date(2025, 1, 31)).actions
        assert evaluate(bundle(org_code(16), rec), date(2025, 2, 1)).actions == []


def test_measure_term_limits_validity_and_lapses(evaluate):
    ev = evaluate(bundle(org_code(17), entry("safety.dishonest", "2025-01-01", expires_on="2027-01-01")))
    assert by_measure(ev)[("rewards.safety_inspections", org_code(17))].valid_until == "2026-01-01"  # lasts P1Y
    ev = evaluate(bundle(org_code(17), entry("safety.dishonest", "2024-01-01", expires_on="2027-01-01")))
    assert ev.actions == []  # the one-year measure has run out although the entry has not


def test_targets_without_a_linked_person_produce_subject_actions_only(evaluate):
    ev = evaluate(bundle(org_code(18), entry("safety.dishonest", "2025-01-01")))
    assert [a.target_relation for a in ev.actions] == [None]
    person = person_code(18)
    ev = evaluate(bundle(org_code(18), entry("safety.dishonest", "2025-01-01"), rel("principal", person)))
    assert sorted((a.target_relation or "") for a in ev.actions) == ["", "principal"]
    ended = rel("principal", person, status="revoked", status_on="2025-03-01")
    ev = evaluate(bundle(org_code(18), entry("safety.dishonest", "2025-01-01"), ended))
    assert [a.target_relation for a in ev.actions] == [None]


def test_joins_bind_records_with_the_same_document(evaluate):
    court = entry("court.judgment_defaulter", "2025-01-01", document="(2025)川17执1号")
    same = {"id": "pen", "kind": "penalty", "severity": "serious", "decided_on": "2025-02-01", "document": "(2025)川17执1号"}
    other = dict(same, id="pen2", document="other")
    assert evaluate(bundle(org_code(19), court, same)).actions_for("rewards.safety_inspections")
    assert not evaluate(bundle(org_code(19), court, other)).actions_for("rewards.safety_inspections")


def test_the_same_inputs_give_the_same_output(evaluator):
    obj = bundle(org_code(20), a_grade(), entry("tax.major_violation", "2024-03-15"), rel("financial_officer", person_code(20)))
    first = evaluator.evaluate(engine.parse_bundle(obj), date(2025, 6, 30)).to_dict()
    for _ in range(3):
        assert evaluator.evaluate(engine.parse_bundle(obj), date(2025, 6, 30)).to_dict() == first


def test_a_later_rating_supersedes_an_earlier_one_nobody_reads(evaluate):
    """Regression: B ratings are not routed, but they still end the A grade."""
    b = {"id": "rating-B", "kind": "rating", "scheme": "tax.credit", "grade": "B", "decided_on": "2025-04-15"}
    assert evaluate(bundle(org_code(21), a_grade("2024-04-12"), b)).actions == []
    assert evaluate(bundle(org_code(21), a_grade("2024-04-12"), b), date(2025, 4, 14)).actions
