"""POST /v1/eligibility and /v1/eligibility/batch on real data, on SQLite and PostgreSQL."""
from __future__ import annotations

from apitest import (A_GRADE, AS_OF, DISPUTED, REP, SUSPENDED, TAX_DOCUMENT, UNKNOWN, VIOLATOR, app, auth,  # noqa: F401
                     client, keys, seeded, service, today)


def check(client, key, subject, activity="government_procurement", as_of=AS_OF):
    body = {"subject": subject, "activity": activity}
    if as_of is not None:
        body["as_of"] = as_of
    response = client.post("/v1/eligibility", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()


def test_tax_violator_is_barred_from_procurement_with_the_reasons(client, keys, seeded):
    answer = check(client, keys["system"], VIOLATOR)
    assert answer["eligible"] is False and answer["known"] is True
    assert answer["subject"] == VIOLATOR and answer["as_of"] == AS_OF and answer["decision_id"]
    [ban] = answer["restrictions"]
    assert ban["measure"] == "tax.procurement_ban" and ban["effect"] == "deny"
    assert ban["department"] == {"code": "finance", "name": "市财政局"}
    assert ban["rule"] == "tax.major_violator.subject" and ban["relation"] == "subject"
    assert {b["id"] for b in ban["basis"]} == {"gpl.art22", "mou_2016_2798"}
    assert any(b.get("article") == "第二十二条" for b in ban["basis"])
    [record] = ban["records"]
    assert record["list"] == "tax.major_violation" and record["document"] == TAX_DOCUMENT
    assert record["listed_on"] == "2024-03-15"
    assert (ban["valid_from"], ban["valid_until"], ban["disputed"]) == ("2024-03-15", "2027-03-15", False)


def test_legal_representative_is_restricted_from_senior_management(client, keys, seeded):
    answer = check(client, keys["auditor"], REP, "senior_management")
    assert answer["eligible"] is False
    [restriction] = answer["restrictions"]
    assert restriction["measure"] == "tax.director_restriction" and restriction["effect"] == "restrict"
    assert restriction["relation"] == "legal_representative" and restriction["source_subject"] == VIOLATOR
    assert restriction["department"]["code"] == "market"
    assert restriction["records"][0]["document"] == TAX_DOCUMENT


def test_a_grade_taxpayer_enjoys_its_incentive(client, keys, seeded):
    answer = check(client, keys["system"], A_GRADE)
    assert answer["eligible"] is True and answer["restrictions"] == []
    [incentive] = answer["incentives"]
    assert incentive["measure"] == "incentives.a_grade_procurement_and_subsidy_priority"
    assert incentive["effect"] == "priority" and incentive["status"] == "active" and incentive["suspended_by"] == []
    assert incentive["records"][0]["decided_on"] == "2025-04-01"


def test_an_incentive_is_suspended_by_a_punishment_in_force(client, keys, seeded):
    answer = check(client, keys["system"], SUSPENDED)
    assert answer["eligible"] is False
    assert [r["measure"] for r in answer["restrictions"]] == ["procurement.credit_record_refusal"]
    [incentive] = answer["incentives"]
    assert incentive["status"] == "suspended"
    assert "procurement.credit_record_refusal" in incentive["suspended_by"]


def test_a_disputed_record_marks_its_restriction_disputed(client, keys, seeded):
    answer = check(client, keys["system"], DISPUTED)
    [ban] = answer["restrictions"]
    assert ban["measure"] == "tax.procurement_ban" and ban["disputed"] is True
    assert answer["eligible"] is False  # a dispute is reported; it does not lift the ban


def test_an_earlier_date_is_answered_from_the_intervals(client, keys, seeded):
    assert check(client, keys["system"], VIOLATOR, as_of="2024-03-14")["eligible"] is True
    assert check(client, keys["system"], VIOLATOR, as_of="2024-03-15")["eligible"] is False
    assert check(client, keys["system"], VIOLATOR, as_of="2027-03-15")["eligible"] is True  # the term ran out


def test_as_of_defaults_to_today(client, keys, seeded):
    assert check(client, keys["system"], A_GRADE, as_of=None)["as_of"] == today()


def test_a_valid_code_the_store_does_not_know_is_eligible_and_unknown(client, keys, seeded):
    answer = check(client, keys["system"], UNKNOWN)
    assert (answer["eligible"], answer["known"], answer["restrictions"]) == (True, False, [])


def test_consortium_batch_names_the_restricted_member(client, keys, seeded):
    body = {"subjects": [A_GRADE, VIOLATOR, UNKNOWN], "activity": "government_procurement", "as_of": AS_OF,
            "consortium": True}
    response = client.post("/v1/eligibility/batch", json=body, headers=auth(keys["system"]))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["eligible"] is False and result["consortium"] is True and result["decision_id"]
    [member] = result["restricted_members"]
    assert member["subject"] == VIOLATOR
    assert [r["measure"] for r in member["restrictions"]] == ["tax.procurement_ban"]
    assert [(a["subject"], a["eligible"]) for a in result["answers"]] == [(A_GRADE, True), (VIOLATOR, False),
                                                                         (UNKNOWN, True)]


def test_a_batch_without_consortium_answers_each_subject_only(client, keys, seeded):
    body = {"subjects": [VIOLATOR, A_GRADE], "activity": "government_procurement", "as_of": AS_OF}
    result = client.post("/v1/eligibility/batch", json=body, headers=auth(keys["auditor"])).json()
    assert result["consortium"] is False and result["eligible"] is None and result["restricted_members"] is None
    assert [a["eligible"] for a in result["answers"]] == [False, True]


def test_a_database_restart_is_at_most_one_503_and_the_retry_succeeds(client, keys, seeded, service):
    import pytest
    from sqlalchemy import text

    from store.db import make_engine

    if service.engine.dialect.name != "postgresql":
        pytest.skip("a server-side disconnect needs a database server")
    check(client, keys["system"], VIOLATOR)  # the check's connections exist now
    admin = make_engine(service.settings.database_url)  # as if the database server restarted
    with admin.connect() as c:
        c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    admin.dispose()
    body = {"subject": VIOLATOR, "activity": "government_procurement", "as_of": AS_OF}
    statuses = []
    for _ in range(3):  # a lost session is noticed before reuse, or fails one request and is replaced
        response = client.post("/v1/eligibility", json=body, headers=auth(keys["system"]))
        statuses.append(response.status_code)
        if response.status_code == 503:
            assert response.json()["code"] == "store_unavailable"
            assert response.headers["Retry-After"] == "1"
        else:
            break
    assert statuses[-1] == 200 and len(statuses) <= 2, statuses
    assert response.json()["eligible"] is False


def test_an_unreachable_database_is_503_store_unavailable(client, keys, seeded, service):
    import pytest

    if service.engine.dialect.name != "postgresql":
        pytest.skip("a database server that stops answering")
    check(client, keys["system"], VIOLATOR)
    reachable, service.loop_access.dsn = service.loop_access.dsn, "postgresql://postgres@127.0.0.1:1/nowhere"
    service.loop_access.terminate()  # its connections are gone with the server
    body = {"subject": VIOLATOR, "activity": "government_procurement", "as_of": AS_OF}
    try:
        response = client.post("/v1/eligibility", json=body, headers=auth(keys["system"]))
    finally:
        service.loop_access.dsn = reachable
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.json()["code"] == "store_unavailable"
    assert client.post("/v1/eligibility", json=body, headers=auth(keys["system"])).status_code == 200
