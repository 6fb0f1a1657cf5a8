"""The record lifecycle over HTTP: an objection disputes a record at once and the listing
department decides it; credit repair after the minimum period; feedback, report, change feed."""
from __future__ import annotations

from datetime import date, timedelta

from apitest import app, auth, client, keys, service  # noqa: F401

from conftest import bundle, entry, org_code

TODAY = date.today()
LISTED = (TODAY - timedelta(days=400)).isoformat()  # past the tax list's one-year minimum
SUBJECT = org_code(7600)
FRESH = org_code(7601)


def seed(client, keys):
    bundles = [bundle(SUBJECT, entry("tax.major_violation", LISTED, department="tax", document="达税〔2025〕1号")),
               bundle(FRESH, entry("tax.major_violation", (TODAY - timedelta(days=10)).isoformat(), department="tax"))]
    r = client.post("/v1/records", json={"bundles": bundles}, headers=auth(keys["tax"]))
    assert r.status_code < 300, r.text
    return [b["records"][0]["id"] for b in bundles]


def check(client, keys, subject, day=None):
    body = {"subject": subject, "activity": "government_procurement", "as_of": (day or TODAY).isoformat()}
    return client.post("/v1/eligibility", json=body, headers=auth(keys["system"])).json()


def test_objection_disputes_at_once_and_an_upheld_one_lifts_the_ban(client, keys):
    record, _ = seed(client, keys)
    assert check(client, keys, SUBJECT)["restrictions"][0]["disputed"] is False
    r = client.post("/v1/objections", json={"subject": SUBJECT, "record": record, "grounds": "主体认定错误",
                                             "on_behalf_of": "法定代表人 张某"}, headers=auth(keys["finance"]))
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["department"] == "tax" and case["state"] == "pending" and "张某" in case["filed_by"]
    answer = check(client, keys, SUBJECT)
    assert answer["eligible"] is False and answer["restrictions"][0]["disputed"] is True
    queue = client.get("/v1/departments/tax/queue", headers=auth(keys["tax"])).json()
    assert [o["id"] for o in queue["objections"]] == [case["id"]]
    assert client.get("/v1/departments/tax/queue", headers=auth(keys["finance"])).status_code == 403
    wrong = client.post(f"/v1/objections/{case['id']}/decision", json={"decision": "uphold", "reasons": "x"},
                        headers=auth(keys["finance"]))
    assert wrong.status_code == 403
    r = client.post(f"/v1/objections/{case['id']}/decision", json={"decision": "uphold", "reasons": "核实有误，撤销"},
                    headers=auth(keys["tax"]))
    assert r.status_code == 200 and r.json()["state"] == "upheld"
    assert check(client, keys, SUBJECT)["eligible"] is True
    assert check(client, keys, SUBJECT, TODAY - timedelta(days=1))["eligible"] is False  # earlier answers stand
    explain = client.get(f"/v1/subjects/{SUBJECT}/explain?as_of={(TODAY - timedelta(days=1)).isoformat()}",
                         headers=auth(keys["auditor"]))
    assert explain.status_code == 200
    kinds = {n.get("type") for n in explain.json()["nodes"]}
    assert any(k and ("objection" in k or "lifecycle" in k or "decision" in k) for k in kinds), kinds


def test_repair_only_after_the_minimum_period_then_lifts_from_its_date(client, keys):
    record, fresh = seed(client, keys)
    early = client.post("/v1/repairs", json={"subject": FRESH, "record": fresh, "statement": "已补缴"},
                        headers=auth(keys["tax"]))
    assert early.status_code == 422 and early.json()["code"] == "repair_too_early"
    assert early.json()["errors"][0]["earliest"] > TODAY.isoformat()
    r = client.post("/v1/repairs", json={"subject": SUBJECT, "record": record, "statement": "已补缴税款和滞纳金"},
                    headers=auth(keys["tax"]))
    assert r.status_code == 201, r.text
    decided = client.post(f"/v1/repairs/{r.json()['id']}/decision", json={"decision": "approve", "reasons": "符合条件"},
                          headers=auth(keys["tax"]))
    assert decided.status_code == 200 and decided.json()["state"] == "approved"
    assert check(client, keys, SUBJECT)["eligible"] is True
    assert check(client, keys, SUBJECT, TODAY - timedelta(days=1))["eligible"] is False


def test_feedback_report_and_change_feed(client, keys):
    seed(client, keys)
    work = client.get(f"/v1/departments/finance/actions?as_of={TODAY.isoformat()}", headers=auth(keys["finance"])).json()
    ban = next(o for o in work["obligations"] if o["measure"] == "tax.procurement_ban")
    key = ban["obligation_key"]
    assert client.post(f"/v1/obligations/{key}/feedback", json={"state": "applied"}, headers=auth(keys["tax"])).status_code == 403
    r = client.post(f"/v1/obligations/{key}/feedback", json={"state": "applied", "note": "已在采购系统标记"},
                    headers=auth(keys["finance"]))
    assert r.status_code == 200, r.text
    report = client.get("/v1/reports/feedback", headers=auth(keys["auditor"])).json()
    finance = next(d for d in report["departments"] if d["code"] == "finance")
    assert finance["applied"] == 1 and finance["pending"] >= 1
    feed = client.get("/v1/departments/finance/changes", headers=auth(keys["finance"])).json()
    assert {c["change"] for c in feed["changes"]} >= {"added"}
    assert client.get("/v1/departments/finance/changes", headers=auth(keys["tax"])).status_code == 403
    assert client.get("/v1/reports/feedback", headers=auth(keys["system"])).status_code == 403
