"""Bad input gets a 4xx with a stable code, never a 500.

The TestClient re-raises any server error, so a case that reached a 500 would fail loudly
here rather than pass as "some error". A hypothesis run throws arbitrary JSON at the two
endpoints that take bodies.
"""
from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from api.deps import get_service
from apitest import AS_OF, VIOLATOR, app, auth, client, keys, seeded, service  # noqa: F401
from fastapi.testclient import TestClient

from conftest import bundle, entry, org_code

OK = {"subject": VIOLATOR, "activity": "government_procurement", "as_of": AS_OF}
BAD_CODE = "91511700000000000X"  # right shape, wrong check character
GOOD = bundle(org_code(7300), entry("tax.major_violation", "2025-01-01"))


def record(**changes) -> dict:
    return {**entry("tax.major_violation", "2025-01-01"), **changes}


def edit(base: dict, **changes) -> dict:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not ...}


# id, method, path, body (dict/list, or bytes sent as-is), status, code
CASES = [
    ("bad-code", "POST", "/v1/eligibility", edit(OK, subject=BAD_CODE), 422, "invalid_subject_code"),
    ("not-a-code", "POST", "/v1/eligibility", edit(OK, subject="ACME Ltd"), 422, "invalid_subject_code"),
    ("code-not-string", "POST", "/v1/eligibility", edit(OK, subject=915117), 422, "invalid_request"),
    ("unknown-activity", "POST", "/v1/eligibility", edit(OK, activity="government_procurment"), 422, "unknown_activity"),
    ("impossible-date", "POST", "/v1/eligibility", edit(OK, as_of="2025-02-30"), 422, "invalid_date"),
    ("date-format", "POST", "/v1/eligibility", edit(OK, as_of="30/06/2025"), 422, "invalid_date"),
    ("date-number", "POST", "/v1/eligibility", edit(OK, as_of=20250630), 422, "invalid_request"),
    ("malformed-json", "POST", "/v1/eligibility", b'{"subject": "9151', 422, "invalid_request"),
    ("not-an-object", "POST", "/v1/eligibility", [OK], 422, "invalid_request"),
    ("missing-fields", "POST", "/v1/eligibility", {}, 422, "invalid_request"),
    ("missing-activity", "POST", "/v1/eligibility", edit(OK, activity=...), 422, "invalid_request"),
    ("misspelt-field", "POST", "/v1/eligibility", edit(OK, as_of=..., asof=AS_OF), 422, "invalid_request"),
    ("null-subject", "POST", "/v1/eligibility", edit(OK, subject=None), 422, "invalid_request"),
    ("empty-batch", "POST", "/v1/eligibility/batch", {"subjects": [], "activity": "honours"}, 422, "empty_batch"),
    ("bad-member", "POST", "/v1/eligibility/batch", {"subjects": [VIOLATOR, BAD_CODE], "activity": "honours"},
     422, "invalid_subject_code"),
    ("batch-activity", "POST", "/v1/eligibility/batch", {"subjects": [VIOLATOR], "activity": "x"}, 422,
     "unknown_activity"),
    ("batch-date", "POST", "/v1/eligibility/batch", {"subjects": [VIOLATOR], "activity": "honours", "as_of": "2025"},
     422, "invalid_date"),
    ("huge-batch", "POST", "/v1/eligibility/batch", {"subjects": [VIOLATOR] * 1001, "activity": "honours"}, 422,
     "invalid_request"),
    ("consortium-not-bool", "POST", "/v1/eligibility/batch",
     {"subjects": [VIOLATOR], "activity": "honours", "consortium": "perhaps"}, 422, "invalid_request"),
    ("subject-bad-code", "GET", f"/v1/subjects/{BAD_CODE}", None, 422, "invalid_subject_code"),
    ("subject-unknown", "GET", f"/v1/subjects/{org_code(7301)}", None, 404, "unknown_subject"),
    ("actions-bad-code", "GET", "/v1/subjects/123/actions", None, 422, "invalid_subject_code"),
    ("actions-bad-date", "GET", f"/v1/subjects/{VIOLATOR}/actions?as_of=yesterday", None, 422, "invalid_date"),
    ("explain-unknown", "GET", f"/v1/subjects/{org_code(7301)}/explain", None, 404, "unknown_subject"),
    ("explain-bad-code", "GET", f"/v1/subjects/{BAD_CODE}/explain", None, 422, "invalid_subject_code"),
    ("explain-format", "GET", f"/v1/subjects/{VIOLATOR}/explain?format=png", None, 422, "invalid_request"),
    ("explain-measure", "GET", f"/v1/subjects/{VIOLATOR}/explain?measure=tax.procurment_ban", None, 422,
     "unknown_measure"),
    ("measure-as-dot", "GET", f"/v1/subjects/{VIOLATOR}/explain?measure=tax.procurement_ban&format=dot", None, 422,
     "invalid_request"),
    ("explain-bad-date", "GET", f"/v1/subjects/{VIOLATOR}/explain?as_of=2025-13-01", None, 422, "invalid_date"),
    ("unknown-department", "GET", "/v1/departments/treasury/actions", None, 404, "unknown_department"),
    ("limit-zero", "GET", "/v1/departments/finance/actions?limit=0", None, 422, "invalid_request"),
    ("limit-huge", "GET", "/v1/departments/finance/actions?limit=100000", None, 422, "invalid_request"),
    ("limit-text", "GET", "/v1/departments/finance/actions?limit=ten", None, 422, "invalid_request"),
    ("offset-negative", "GET", "/v1/departments/finance/actions?offset=-1", None, 422, "invalid_request"),
    ("department-bad-date", "GET", "/v1/departments/finance/actions?as_of=2025-6-30", None, 422, "invalid_date"),
    ("no-bundles", "POST", "/v1/records", {"bundles": []}, 422, "invalid_request"),
    ("bundles-not-list", "POST", "/v1/records", {"bundles": GOOD}, 422, "invalid_request"),
    ("bundle-not-object", "POST", "/v1/records", {"bundles": ["x"]}, 422, "invalid_bundle"),
    ("bundle-bad-code", "POST", "/v1/records", {"bundles": [bundle(BAD_CODE)]}, 422, "invalid_subject_code"),
    ("bundle-unknown-list", "POST", "/v1/records", {"bundles": [bundle(org_code(7302), entry("tax.major", "2025-01-01"))]},
     422, "unknown_list"),
    ("bundle-bad-date", "POST", "/v1/records", {"bundles": [bundle(org_code(7302), entry("tax.major_violation", "2025"))]},
     422, "invalid_date"),
    ("records-malformed", "POST", "/v1/records", b'{"bundles": [', 422, "invalid_request"),
    # what parse_bundle lets through but the database cannot hold (see api/storable.py)
    ("related-not-list", "POST", "/v1/records", {"bundles": [{**bundle(org_code(7303)), "related": 5}]}, 422,
     "invalid_bundle"),
    ("kind-is-list", "POST", "/v1/records", {"bundles": [bundle(org_code(7303), {"id": "x", "kind": ["list_entry"]})]},
     422, "wrong_type"),
    ("status-is-object", "POST", "/v1/records", {"bundles": [bundle(org_code(7303), record(status={"a": 1}))]}, 422,
     "wrong_type"),
    ("list-is-list", "POST", "/v1/records", {"bundles": [bundle(org_code(7303), record(list=["tax.major_violation"]))]},
     422, "wrong_type"),
    ("department-is-object", "POST", "/v1/records", {"bundles": [bundle(org_code(7303), record(department={}))]}, 422,
     "wrong_type"),
    ("category-is-list", "POST", "/v1/records", {"bundles": [bundle(org_code(7303), record(category=[1]))]}, 422,
     "wrong_type"),
    ("id-too-long", "POST", "/v1/records", {"bundles": [bundle(org_code(7303), record(id="X" * 101))]}, 422,
     "value_too_long"),
    ("document-too-long", "POST", "/v1/records", {"bundles": [bundle(org_code(7303), record(document="D" * 201))]},
     422, "value_too_long"),
    ("name-too-long", "POST", "/v1/records",
     {"bundles": [{"subject": {"code": org_code(7303), "name": "名" * 201}, "records": []}]}, 422, "value_too_long"),
    ("nul-character", "POST", "/v1/records", {"bundles": [bundle(org_code(7303), record(document="a\x00b"))]}, 422,
     "invalid_character"),
    ("related-too-long", "POST", "/v1/records", {"bundles": [{**bundle(org_code(7303)), "related": [
        {"subject": {"code": "511702199106244592", "name": "x" * 201}}]}]}, 422, "value_too_long"),
    ("week-date", "POST", "/v1/records", {"bundles": [bundle(org_code(7303), record(listed_on="2025-W01-1"))]}, 422,
     "invalid_date"),
    ("date-at-calendar-end", "POST", "/v1/records",
     {"bundles": [bundle(org_code(7303), record(listed_on="9999-12-30", expires_on="9999-12-31"))]}, 422,
     "invalid_date"),
    ("ancient-as-of", "GET", f"/v1/subjects/{VIOLATOR}/explain?as_of=0001-01-01&measure=tax.procurement_ban", None,
     422, "invalid_date"),
    ("week-as-of", "POST", "/v1/eligibility", edit(OK, as_of="2025-W01-1"), 422, "invalid_date"),
    ("far-as-of", "GET", "/v1/departments/finance/actions?as_of=9999-12-31", None, 422, "invalid_date"),
    ("decision-not-uuid", "GET", "/v1/decisions/" + "x" * 300, None, 404, "unknown_decision"),
    ("decision-nul", "GET", "/v1/decisions/%00", None, 404, "unknown_decision"),
    ("unknown-decision", "GET", "/v1/decisions/00000000-0000-0000-0000-000000000000", None, 404, "unknown_decision"),
    ("unknown-route", "GET", "/v1/nothing-here", None, 404, "not_found"),
    ("wrong-method", "GET", "/v1/eligibility", None, 405, "method_not_allowed"),
]


def _group(path: str) -> str:
    part = path.split("/")[2].split("?")[0]
    return part if part in ("eligibility", "subjects", "departments", "records", "decisions") else "routing"


# One app per endpoint group, not per case: every case of the group runs, and all mismatches are reported.
GROUPS: dict[str, list] = {}
for case in CASES:
    GROUPS.setdefault(_group(case[2]), []).append(case)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_bad_input_has_a_stable_code(client, keys, seeded, group):
    headers = auth(keys["admin"])
    wrong = []
    for name, method, path, body, status, code in GROUPS[group]:
        if isinstance(body, bytes):
            response = client.request(method, path, content=body,
                                      headers={**headers, "Content-Type": "application/json"})
        else:
            response = client.request(method, path, json=body, headers=headers)
        error = response.json()
        if (response.status_code, error.get("code")) != (status, code):
            wrong.append((name, response.status_code, response.text[:300]))
        elif set(error) != {"code", "message", "errors"} or not error["message"]:
            wrong.append((name, "not the error shape", error))
    assert wrong == []


def test_field_errors_name_the_fields(client, keys):
    response = client.post("/v1/eligibility", json={"as_of": 5}, headers=auth(keys["admin"]))
    fields = {(e["in"], e["field"]) for e in response.json()["errors"]}
    assert {("body", "subject"), ("body", "activity"), ("body", "as_of")} <= fields


def test_every_bad_bundle_is_reported_and_none_is_stored(client, keys):
    body = {"bundles": [GOOD, bundle(BAD_CODE), "x"]}
    response = client.post("/v1/records", json=body, headers=auth(keys["tax"]))
    assert response.status_code == 422
    assert [(e["index"], e["code"]) for e in response.json()["errors"]] == [(1, "invalid_subject_code"),
                                                                            (2, "invalid_bundle")]
    assert client.get(f"/v1/subjects/{org_code(7300)}", headers=auth(keys["tax"])).status_code == 404


def test_an_unknown_activity_suggests_the_closest(client, keys):
    body = {"subject": VIOLATOR, "activity": "government_procurment"}
    message = client.post("/v1/eligibility", json=body, headers=auth(keys["system"])).json()["message"]
    assert "government_procurement" in message


def test_an_unexpected_failure_is_a_500_with_nothing_inside(app, keys):
    class Broken:
        def __getattr__(self, name):
            raise RuntimeError("secret connection string postgres://admin:pw@db")

    with TestClient(app, raise_server_exceptions=False) as client:
        key = app.state.service.keys.create("admin", "ops")
        app.dependency_overrides[get_service] = lambda: Broken()
        response = client.get(f"/v1/subjects/{VIOLATOR}/actions", headers=auth(key))
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error" and "secret" not in response.text


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4), max_leaves=12)
eligibility_bodies = st.fixed_dictionaries({}, optional={"subject": st.sampled_from([VIOLATOR]) | json_values,
                                                         "activity": st.sampled_from(["honours", "x"]) | json_values,
                                                         "as_of": st.sampled_from(["0001-01-01", "9999-12-31"])
                                                         | st.text(max_size=12) | json_values}) | json_values
field_values = st.sampled_from(["list_entry", "rating", "relation", "tax.major_violation", "tax.credit", "A",
                                 "active", "2025-01-01", "0001-01-01", "9999-12-31", "2025-W01-1",
                                 "511702199106244592", "legal_representative", "x\x00", "y" * 300]) | json_values
# A valid bundle with one to three values replaced: each push gets past most checks, then hits one.
VALID = bundle(org_code(7304), {**entry("tax.major_violation", "2025-01-01"), "department": "tax", "document": "D"},
               {"id": "rel", "kind": "relation", "type": "legal_representative", "other": "511702199106244592"},
               related=["511702199106244592"])
PATHS = [("subject",), ("subject", "code"), ("subject", "kind"), ("subject", "name"), ("records",), ("related",),
         ("related", 0, "subject", "name"), ("related", 0, "records")] + [
    ("records", i, name) for i in (0, 1) for name in ("id", "kind", "list", "status", "listed_on", "expires_on",
                                                      "status_on", "type", "other", "category", "department",
                                                      "document")]


def _step(value, key):
    if isinstance(key, int):
        return value[key] if isinstance(value, list) and key < len(value) else None
    return value.get(key) if isinstance(value, dict) else None


@st.composite
def pushed_bundles(draw):
    obj = copy.deepcopy(VALID)
    for path in draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=3, unique=True)):
        target = obj
        for step in path[:-1]:  # an earlier replacement may have cut the path: then skip it
            target = _step(target, step)
        last = path[-1]
        if isinstance(target, dict) or (isinstance(target, list) and _step(target, last) is not None):
            target[last] = draw(field_values)
    return obj


record_bodies = st.fixed_dictionaries({"bundles": st.lists(pushed_bundles(), min_size=1, max_size=2)}) | json_values


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=eligibility_bodies)
def test_arbitrary_eligibility_bodies_never_fail_the_server(client, keys, body):
    response = client.post("/v1/eligibility", json=body, headers=auth(keys["system"]))
    assert response.status_code in (200, 422), response.text


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=record_bodies)
def test_arbitrary_record_pushes_never_fail_the_server(client, keys, body):
    response = client.post("/v1/records", json=body, headers=auth(keys["tax"]))
    assert response.status_code in (200, 422), response.text


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
def test_a_body_not_sent_as_json_is_told_which_header_to_send(client, keys, content_type):
    """curl -d sends a form's content type; FastAPI then reads the body as bytes, and its own
    message ('a valid dictionary') did not say what to change."""
    headers = {**auth(keys["system"]), **({"Content-Type": content_type} if content_type else {})}
    response = client.post("/v1/eligibility", content=json.dumps(OK), headers=headers)
    body = response.json()
    assert (response.status_code, body["code"]) == (422, "invalid_request")
    assert "Content-Type: application/json" in body["message"]
    assert (content_type or "no content type") in body["message"]
    # sent as JSON, the same body is answered
    assert client.post("/v1/eligibility", json=OK, headers=auth(keys["system"])).status_code == 200


def test_every_problem_of_a_question_is_named_at_once(client, keys):
    body = {"subject": BAD_CODE, "activity": "government_procurment", "as_of": "2025-02-30"}
    response = client.post("/v1/eligibility", json=body, headers=auth(keys["system"]))
    error = response.json()
    assert response.status_code == 422 and error["code"] == "invalid_subject_code"  # the first problem's code
    assert [(e["code"], e["field"]) for e in error["errors"]] == [
        ("invalid_subject_code", "subject"), ("unknown_activity", "activity"), ("invalid_date", "as_of")]
    assert "government_procurement" in error["message"] and "2025-02-30" in error["message"]


def test_a_batch_names_its_bad_members_activity_and_date_at_once(client, keys):
    body = {"subjects": [VIOLATOR, BAD_CODE, "x"], "activity": "x", "as_of": "2025"}
    error = client.post("/v1/eligibility/batch", json=body, headers=auth(keys["system"])).json()
    assert error["code"] == "invalid_subject_code" and error["message"].startswith("2 invalid subject code(s); ")
    assert [(e["code"], e["field"]) for e in error["errors"]] == [
        ("invalid_subject_code", "subjects[1]"), ("invalid_subject_code", "subjects[2]"),
        ("unknown_activity", "activity"), ("invalid_date", "as_of")]
