"""Reading subjects, their actions and explanations; department worklists; pushing records."""
from __future__ import annotations

from engine.codes import mask_citizen_id

from apitest import (A_GRADE, AS_OF, FINANCE_OFFICER, REP, TAX_DOCUMENT, VIOLATOR, app, auth,  # noqa: F401
                     client, keys, seeded, service)

from conftest import bundle, entry, org_code, person_code


def get(client, key, path, **params):
    response = client.get(path, params=params, headers=auth(key))
    assert response.status_code == 200, response.text
    return response


# -- GET /v1/subjects/{code} -------------------------------------------------------------------
def test_subject_shows_records_and_linked_persons(client, keys, seeded):
    found = get(client, keys["auditor"], f"/v1/subjects/{VIOLATOR}").json()
    assert found["subject"]["code"] == VIOLATOR and found["subject"]["kind"] == "legal_person"
    assert {r["id"] for r in found["records"]} >= {"REL-LR", "REL-FO"}
    assert any(r.get("document") == TAX_DOCUMENT for r in found["records"])
    assert {p["code"] for p in found["related"]} == {REP, FINANCE_OFFICER}


def test_a_system_key_sees_linked_persons_masked(client, keys, seeded):
    response = get(client, keys["system"], f"/v1/subjects/{VIOLATOR}")
    assert REP not in response.text and FINANCE_OFFICER not in response.text
    found = response.json()
    assert found["subject"]["code"] == VIOLATOR
    assert {p["code"] for p in found["related"]} == {mask_citizen_id(REP), mask_citizen_id(FINANCE_OFFICER)}
    assert {r["other"] for r in found["records"] if r["kind"] == "relation"} == {p["code"] for p in found["related"]}


def test_a_system_key_sees_the_code_it_asked_about(client, keys, seeded):
    found = get(client, keys["system"], f"/v1/subjects/{REP}").json()
    assert found["subject"]["code"] == REP


# -- GET /v1/subjects/{code}/actions -----------------------------------------------------------
def test_actions_list_obligations_with_provenance(client, keys, seeded):
    found = get(client, keys["finance"], f"/v1/subjects/{VIOLATOR}/actions", as_of=AS_OF).json()
    assert found["known"] is True and found["as_of"] == AS_OF
    by_measure = {o["measure"]: o for o in found["obligations"]}
    ban = by_measure["tax.procurement_ban"]
    assert ban["department"] == "finance" and ban["kind"] == "punishment" and ban["target_code"] == VIOLATOR
    assert ban["provenance"]["records"][0]["document"] == TAX_DOCUMENT
    assert ban["provenance"]["basis"] == ["gpl.art22", "mou_2016_2798"]
    assert "activities" not in ban and "id" not in ban  # storage details stay inside
    assert get(client, keys["finance"], f"/v1/subjects/{VIOLATOR}/actions", as_of="2024-01-01").json()["obligations"] == []


def test_actions_of_a_linked_person_name_the_company(client, keys, seeded):
    found = get(client, keys["system"], f"/v1/subjects/{REP}/actions", as_of=AS_OF).json()
    [restriction] = found["obligations"]
    assert restriction["measure"] == "tax.director_restriction" and restriction["target_code"] == REP
    assert restriction["source_subject"] == VIOLATOR and restriction["target_relation"] == "legal_representative"


# -- GET /v1/subjects/{code}/explain -----------------------------------------------------------
def test_explain_as_node_link_json(client, keys, seeded):
    graph = get(client, keys["auditor"], f"/v1/subjects/{VIOLATOR}/explain", as_of=AS_OF).json()
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert {"measure:tax.procurement_ban", "department:finance", "basis:gpl.art22", f"subject:{REP}"} <= set(nodes)
    edges = {(e["source"], e["target"]): e["relation"] for e in graph["edges"]}
    assert edges[("basis:gpl.art22", "measure:tax.procurement_ban")] == "grounds"
    assert edges[(f"subject:{VIOLATOR}", f"subject:{REP}")] == "legal_representative"


def test_explain_masks_linked_persons_for_a_system_key(client, keys, seeded):
    response = get(client, keys["system"], f"/v1/subjects/{VIOLATOR}/explain", as_of=AS_OF)
    assert REP not in response.text and VIOLATOR in response.text
    ids = {n["id"] for n in response.json()["nodes"]}
    assert f"subject:{mask_citizen_id(REP)}" in ids and f"subject:{mask_citizen_id(FINANCE_OFFICER)}" in ids


def test_why_a_measure_applies_and_why_another_does_not(client, keys, seeded):
    url = f"/v1/subjects/{VIOLATOR}/explain"
    applies = get(client, keys["auditor"], url, as_of=AS_OF, measure="tax.director_restriction").json()
    assert applies["applies"] is True
    targets = {c["target"]["code"]: c for c in applies["chains"]}
    assert set(targets) == {REP, FINANCE_OFFICER}
    chain = targets[REP]
    assert chain["target"]["relation"] == "legal_representative" and chain["rule"]["id"] == "tax.major_violator.persons"
    assert chain["conditions"][0]["records"][0]["document"] == TAX_DOCUMENT
    masked = get(client, keys["system"], url, as_of=AS_OF, measure="tax.director_restriction")
    assert REP not in masked.text and mask_citizen_id(REP) in masked.text
    not_applying = get(client, keys["auditor"], url, as_of=AS_OF, measure="incentives.a_grade_green_channel").json()
    assert not_applying["applies"] is False and not_applying["why_not"]


def test_explain_as_dot(client, keys, seeded):
    response = get(client, keys["auditor"], f"/v1/subjects/{VIOLATOR}/explain", as_of=AS_OF, format="dot")
    assert response.headers["content-type"].startswith("text/vnd.graphviz")
    assert response.text.startswith("digraph explanation") and "tax.procurement_ban" in response.text
    masked = get(client, keys["system"], f"/v1/subjects/{VIOLATOR}/explain", as_of=AS_OF, format="dot").text
    assert REP not in masked and mask_citizen_id(REP) in masked


def test_explain_as_svg(client, keys, seeded):
    response = get(client, keys["auditor"], f"/v1/subjects/{VIOLATOR}/explain", as_of=AS_OF, format="svg")
    assert response.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in response.content and REP.encode() in response.content
    masked = get(client, keys["system"], f"/v1/subjects/{VIOLATOR}/explain", as_of=AS_OF, format="svg").content
    assert b"<svg" in masked and REP.encode() not in masked


# -- GET /v1/departments/{code}/actions --------------------------------------------------------
def test_department_worklist_pages_through_obligations(client, keys, seeded):
    url = "/v1/departments/finance/actions"
    found = get(client, keys["finance"], url, as_of=AS_OF).json()
    assert found["department"] == {"code": "finance", "name": "市财政局"}
    pairs = {(o["target_code"], o["measure"]) for o in found["obligations"]}
    assert (VIOLATOR, "tax.procurement_ban") in pairs
    assert (A_GRADE, "incentives.a_grade_procurement_and_subsidy_priority") in pairs
    assert all(o["department"] == "finance" for o in found["obligations"])
    pages = [get(client, keys["auditor"], url, as_of=AS_OF, limit=1, offset=i).json()["obligations"]
             for i in range(len(found["obligations"]) + 1)]
    assert [p[0] for p in pages[:-1]] == found["obligations"] and pages[-1] == []


# -- POST /v1/records --------------------------------------------------------------------------
def test_pushed_records_are_answered_from_when_the_call_returns(client, keys, service):
    company, person = org_code(7100), person_code(7100)
    obj = bundle(company, entry("tax.major_violation", "2025-01-10", department="tax", document="达税稽罚〔2025〕3号"),
                 {"id": "REL-LR", "kind": "relation", "type": "legal_representative", "other": person,
                  "listed_on": "2020-01-01"}, related=[person])
    response = client.post("/v1/records", json={"bundles": [obj]}, headers=auth(keys["tax"]))
    assert response.status_code == 200, response.text
    assert sorted(response.json()["subjects"]) == sorted([company, person]) and response.json()["refreshed"] >= 2

    def eligible(code, activity, as_of):
        body = {"subject": code, "activity": activity, "as_of": as_of}
        return client.post("/v1/eligibility", json=body, headers=auth(keys["system"])).json()["eligible"]

    assert eligible(company, "government_procurement", AS_OF) is False
    assert eligible(person, "senior_management", AS_OF) is False
    # the listing is repaired: answers from the repair on change at once, answers before it do not
    obj["records"][0].update(status="repaired", status_on="2025-05-01")
    assert client.post("/v1/records", json={"bundles": [obj]}, headers=auth(keys["admin"])).status_code == 200
    assert eligible(company, "government_procurement", "2025-06-30") is True
    assert eligible(person, "senior_management", "2025-06-30") is True
    assert eligible(company, "government_procurement", "2025-04-30") is False


def test_records_are_readable_after_a_push(client, keys, service):
    obj = bundle(org_code(7101), {"id": "TCR-A", "kind": "rating", "scheme": "tax.credit", "grade": "A",
                                  "decided_on": "2025-04-01"})
    client.post("/v1/records", json={"bundles": [obj]}, headers=auth(keys["tax"]))
    found = get(client, keys["tax"], f"/v1/subjects/{org_code(7101)}").json()
    assert found["records"] == [{"id": "TCR-A", "kind": "rating", "status": "active",
                                                         "scheme": "tax.credit", "grade": "A",
                                                         "decided_on": "2025-04-01"}]
