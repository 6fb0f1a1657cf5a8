"""Personal data (issue 15): who may see citizen IDs, natural persons' names and objection and
repair cases (the table in api/privacy.py and the README's service section).

The walk sends a request to EVERY route of the app (iterated: a route without a sample below
fails the test) with a key of EVERY role, against a store holding natural persons linked to a
company and persons with an objection and a repair filed about them, and fails on any of their
citizen IDs or names reaching a role that may not see it.
"""
from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from api.privacy import mask_name
from apitest import auth, client, app, service  # noqa: F401
from store.lifecycle import Lifecycle
from store.service import bundles_from

from conftest import org_code, person_code

COMPANY = org_code(7501)  # on the major tax violation list, with two linked persons
REPRESENTATIVE, OFFICER = person_code(7501), person_code(7502)
OBJECTOR, REPAIRER, PUSHED = person_code(7503), person_code(7504), person_code(7505)
NAMES = {REPRESENTATIVE: "张三丰", OFFICER: "李四光", OBJECTOR: "王五福", REPAIRER: "赵六顺", PUSHED: "孙七巧"}
# key name -> (role, key label, department): tax decides the objection and filed the repair; finance
# decides the repair and filed the objection; market has nothing to do with either.
PRINCIPALS = {"system": ("system", "procurement-platform", None), "tax": ("department", "tax-desk", "tax"),
              "finance": ("department", "finance-desk", "finance"), "market": ("department", "market-desk", "market"),
              "auditor": ("auditor", "audit-office", None), "admin": ("admin", "operations", None)}
ROLES = list(PRINCIPALS)
AS_OF = "2025-06-30"


def person(code: str, *records: dict) -> dict:
    return {"subject": {"code": code, "kind": "natural_person", "name": NAMES[code]}, "records": list(records)}


def seed_bundles(today: date) -> list[dict]:
    recent = (today - timedelta(days=200)).isoformat()  # a general penalty: repairable, still live
    return [
        {"subject": {"code": COMPANY, "kind": "legal_person", "name": "达州某建材有限公司"},
         "records": [{"id": "T-1", "kind": "list_entry", "list": "tax.major_violation", "status": "active",
                      "listed_on": "2024-03-15", "department": "tax", "document": "达税稽罚〔2024〕12号"},
                     {"id": "L-1", "kind": "relation", "type": "legal_representative", "other": REPRESENTATIVE,
                      "listed_on": "2019-01-01"},
                     {"id": "L-2", "kind": "relation", "type": "financial_officer", "other": OFFICER,
                      "listed_on": "2019-01-01"}],
         "related": [person(REPRESENTATIVE), person(OFFICER)]},
        person(OBJECTOR, {"id": "P-1", "kind": "penalty", "severity": "serious", "decided_on": "2025-01-10",
                          "department": "tax", "document": "达税罚〔2025〕3号"}),
        person(REPAIRER, {"id": "P-2", "kind": "penalty", "severity": "general", "decided_on": recent,
                          "department": "finance", "document": "达财罚〔2026〕7号"}),
    ]


@pytest.fixture
def seeded_people(service):
    """The store above, a key of every role, an objection (filed by finance's desk, decided by
    tax) and a repair application (filed by tax's desk, decided by finance), and logged checks."""
    keys = {name: service.keys.create(role, label, dept) for name, (role, label, dept) in PRINCIPALS.items()}
    service.save(bundles_from(seed_bundles(date.today()), service.vocab))
    lifecycle = Lifecycle(service)
    objection = lifecycle.file_objection(OBJECTOR, "P-1", f"不是{NAMES[OBJECTOR]}本人 {OBJECTOR}",
                                         filed_by=f"department:finance-desk@finance for {NAMES[OBJECTOR]}")
    repair = lifecycle.apply_repair(REPAIRER, "P-2", f"department:tax-desk@tax for {NAMES[REPAIRER]}",
                                    f"{NAMES[REPAIRER]}已整改")
    decisions = {subject: service.eligibility(subject, "government_procurement", AS_OF, "system:procurement-platform")
                 ["decision_id"] for subject in (COMPANY, REPRESENTATIVE)}
    obligation = service.actions(REPRESENTATIVE, AS_OF)["obligations"][0]["obligation_key"]
    return {"keys": keys, "objection": objection["id"], "repair": repair["id"], "decisions": decisions,
            "obligation": obligation}


def samples(seed: dict) -> dict[tuple[str, str], list[dict]]:
    """Requests for every route: (method, path template) -> [{path params, query, body}]."""
    objection, repair = str(seed["objection"]), str(seed["repair"])
    pushed = {"subject": {"code": org_code(7502), "kind": "legal_person", "name": "某公司"},
              "records": [{"id": "L-9", "kind": "relation", "type": "legal_representative", "other": PUSHED,
                           "listed_on": "2020-01-01"}], "related": [person(PUSHED)]}
    return {
        ("POST", "/v1/eligibility"): [{"body": {"subject": s, "activity": "government_procurement", "as_of": AS_OF}}
                                      for s in (COMPANY, REPRESENTATIVE, OBJECTOR)],
        ("POST", "/v1/eligibility/batch"): [{"body": {"subjects": [COMPANY, OBJECTOR], "activity": "public_bidding",
                                                      "as_of": AS_OF, "consortium": True}}],
        ("GET", "/v1/subjects/{code}"): [{"path": {"code": c}} for c in (COMPANY, REPRESENTATIVE, OBJECTOR)],
        ("GET", "/v1/subjects/{code}/actions"): [{"path": {"code": c}, "query": {"as_of": AS_OF}}
                                                 for c in (COMPANY, REPRESENTATIVE)],
        ("GET", "/v1/subjects/{code}/explain"): [
            {"path": {"code": COMPANY}, "query": {"as_of": AS_OF}},
            {"path": {"code": COMPANY}, "query": {"as_of": AS_OF, "format": "dot"}},
            {"path": {"code": COMPANY}, "query": {"as_of": AS_OF, "measure": "tax.director_restriction"}},
            {"path": {"code": OBJECTOR}}, {"path": {"code": REPAIRER}, "query": {"format": "dot"}}],
        ("GET", "/v1/departments/{code}/actions"): [{"path": {"code": d}, "query": {"as_of": AS_OF}}
                                                    for d in ("tax", "finance", "market")],
        ("POST", "/v1/records"): [{"body": {"bundles": [pushed]}}],
        ("GET", "/v1/decisions/verify"): [{}],
        # a system key's own checks: it sent those subjects when it asked
        ("GET", "/v1/decisions/{decision_id}"): [{"path": {"decision_id": d}, "asked": s}
                                                 for s, d in seed["decisions"].items()],
        ("GET", "/v1/rulebooks"): [{}],
        ("GET", "/v1/rulebooks/{name}"): [{"path": {"name": "taxation"}}],
        ("PUT", "/v1/rulebooks/{name}"): [{"path": {"name": "taxation"}, "body": {"text": "x", "comment": "c"}}],
        ("POST", "/v1/rulebooks/{name}/dry-run"): [{"path": {"name": "taxation"}, "body": {"revision": "HEAD"},
                                                    "head": True}],
        ("POST", "/v1/rulebooks/{name}/publish"): [{"path": {"name": "taxation"}, "body": {"revision": "0" * 64}}],
        ("POST", "/v1/rulebooks/{name}/rollback"): [{"path": {"name": "taxation"}, "body": {"to": "0" * 64}}],
        ("GET", "/v1/rulebooks/{name}/revisions"): [{"path": {"name": "taxation"}}],
        ("GET", "/v1/rulebooks/{name}/diff"): [{"path": {"name": "taxation"}, "query": {"from": "a", "to": "b"}}],
        ("GET", "/v1/rulebooks/{name}/changes"): [{"path": {"name": "taxation"}}],
        ("GET", "/v1/rebuilds"): [{}],
        ("GET", "/v1/rebuilds/{rebuild_id}"): [{"path": {"rebuild_id": 1}}],
        ("POST", "/v1/objections"): [{"body": {"subject": OBJECTOR, "record": "P-1", "grounds": "再次"}}],
        ("GET", "/v1/objections/{case_id}"): [{"path": {"case_id": objection}}],
        ("POST", "/v1/objections/{case_id}/decision"): [{"path": {"case_id": objection},
                                                         "body": {"decision": "sometimes", "reasons": "r"}}],
        ("POST", "/v1/repairs"): [{"body": {"subject": REPAIRER, "record": "P-2", "statement": "再次"}}],
        ("GET", "/v1/repairs/{case_id}"): [{"path": {"case_id": repair}}],
        ("POST", "/v1/repairs/{case_id}/decision"): [{"path": {"case_id": repair},
                                                      "body": {"decision": "sometimes", "reasons": "r"}}],
        ("GET", "/v1/departments/{code}/queue"): [{"path": {"code": d}} for d in ("tax", "finance")],
        ("GET", "/v1/departments/{code}/changes"): [{"path": {"code": d}} for d in ("tax", "finance")],
        ("POST", "/v1/obligations/{key}/feedback"): [{"path": {"key": seed["obligation"]},
                                                      "body": {"state": "applied"}}],
        ("GET", "/v1/reports/feedback"): [{}],
    }


def every_route(app) -> list[tuple[str, str]]:
    return [(method, context.path) for context in iter_route_contexts(app.routes)
            if isinstance(context.original_route, APIRoute) for method in sorted(context.original_route.methods)]


# Who may read each case: the department that decides it, the desk that filed it, auditors, admins.
CASE_READERS = {"objection": {"tax", "finance", "auditor", "admin"}, "repair": {"tax", "finance", "auditor", "admin"}}


def forbidden_people(role: str, method: str, template: str, sent: str) -> set[str]:
    """The persons (citizen IDs) whose ID and name `role` may not see in this answer."""
    case_route = template.startswith(("/v1/objections/", "/v1/repairs/"))
    kind = "objection" if template.startswith("/v1/objections/") else "repair"
    if role == "system" or (case_route and role not in CASE_READERS[kind]):
        return {code for code in NAMES if code not in sent}  # only what it sent itself
    return set()


def test_no_role_sees_a_person_it_may_not_see_on_any_route(client, seeded_people):
    keys, table = seeded_people["keys"], samples(seeded_people)
    routes = every_route(client.app)
    assert set(routes) - set(table) == set(), "a route without a sample request: add one above"
    head = client.get("/v1/rulebooks/taxation", headers=auth(keys["admin"])).json()["revision"]
    leaks, answered = [], 0
    for method, template in routes:
        for sample in table[(method, template)]:
            path = template.format(**sample.get("path", {}))
            body = sample.get("body")
            if sample.get("head"):
                body = {**body, "revision": head}
            for role in ROLES:
                response = client.request(method, path, params=sample.get("query"), json=body,
                                          headers={**auth(keys[role]), "If-Match": '"stale"'})
                answered += response.status_code < 300
                sent = path + json.dumps(sample, ensure_ascii=False)
                for code in forbidden_people(role, method, template, sent):
                    for secret in (code, NAMES[code]):
                        if secret in response.text:
                            leaks.append((role, method, path, response.status_code, secret))
    assert leaks == []
    assert answered > 60  # the walk reached the data, not only refusals


def test_what_a_system_key_sees_of_linked_persons_is_masked(client, seeded_people):
    """The walk's counterpart: the data is there, masked."""
    system = auth(seeded_people["keys"]["system"])
    subject = client.get(f"/v1/subjects/{COMPANY}", headers=system).json()
    assert {p["name"] for p in subject["related"]} == {mask_name(NAMES[REPRESENTATIVE]), mask_name(NAMES[OFFICER])}
    assert all(re.fullmatch(r"\d{6}\*{8}\d{3}[0-9X]", p["code"]) for p in subject["related"])
    own = client.get(f"/v1/subjects/{REPRESENTATIVE}", headers=system).json()
    assert own["subject"]["code"] == REPRESENTATIVE and own["subject"]["name"] == mask_name(NAMES[REPRESENTATIVE])
    assert client.get(f"/v1/subjects/{COMPANY}", headers=auth(seeded_people["keys"]["market"])).json() \
        ["related"][0]["name"] in (NAMES[REPRESENTATIVE], NAMES[OFFICER])


@pytest.mark.parametrize("kind", ["objection", "repair"])
def test_a_case_is_readable_only_by_its_departments_auditors_and_admins(client, seeded_people, kind):
    keys, case_id = seeded_people["keys"], seeded_people[kind]
    path = f"/v1/{kind}s/{case_id}"
    for role in ROLES:
        response = client.get(path, headers=auth(keys[role]))
        if role in CASE_READERS[kind]:
            assert response.status_code == 200 and response.json()["id"] == case_id, role
        else:  # the very answer a case that does not exist gets
            missing = client.get(f"/v1/{kind}s/{case_id + 1000}", headers=auth(keys[role]))
            assert response.status_code == missing.status_code == 404, role
            assert response.text == missing.text.replace(str(case_id + 1000), str(case_id)), role


def test_an_explanation_outlines_a_case_to_a_caller_that_may_not_read_it(client, seeded_people):
    keys = seeded_people["keys"]
    Lifecycle(client.app.state.service).decide_objection(seeded_people["objection"], "reject", "证据不足，秘密理由",
                                                          "department:tax-desk@tax", department="tax")
    for role, sees in (("market", False), ("tax", True), ("system", False)):
        graph = client.get(f"/v1/subjects/{OBJECTOR}/explain", headers=auth(keys[role])).text
        assert ("秘密理由" in graph) is sees and ("rejected" in graph), role


@pytest.mark.parametrize("kind, decision", [("objection", "reject"), ("repair", "refuse")])
def test_a_department_that_may_not_read_a_case_cannot_learn_of_it_by_deciding_it(client, seeded_people, kind,
                                                                                  decision):
    keys, case_id = seeded_people["keys"], seeded_people[kind]
    body = {"decision": decision, "reasons": "r"}
    refused = client.post(f"/v1/{kind}s/{case_id}/decision", json=body, headers=auth(keys["market"]))
    missing = client.post(f"/v1/{kind}s/{case_id + 1000}/decision", json=body, headers=auth(keys["market"]))
    assert refused.status_code == missing.status_code == 404
    assert refused.text == missing.text.replace(str(case_id + 1000), str(case_id))
    filer = "finance" if kind == "objection" else "tax"  # its desk filed it: it knows the case, may not decide it
    assert client.post(f"/v1/{kind}s/{case_id}/decision", json=body,
                       headers=auth(keys[filer])).json()["code"] == "not_your_case"
