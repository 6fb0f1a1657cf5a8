"""Who may call what: every endpoint against no key, a bad key and every kind of key.

The matrix is data: for each endpoint, the principals let through; everyone else with a
valid key gets 403 `forbidden`, and no key or a bad one gets 401 `unauthorized` with a
Bearer challenge.
"""
from __future__ import annotations

import pytest
from sqlalchemy import text

from apitest import AS_OF, PRINCIPALS, VIOLATOR, app, auth, client, keys, seeded, service  # noqa: F401

from conftest import bundle, org_code

EVERYONE = set(PRINCIPALS)
CHECK = {"subject": VIOLATOR, "activity": "government_procurement", "as_of": AS_OF}
PUSH = {"bundles": [bundle(org_code(7200), {"id": "TCR-B", "kind": "rating", "scheme": "tax.credit", "grade": "B",
                                            "decided_on": "2025-04-01"})]}

# id, method, path ({decision} is a decision made by the "system" key), body, allowed principals
MATRIX = [
    ("eligibility", "POST", "/v1/eligibility", CHECK, {"system", "other_system", "auditor", "admin"}),
    ("batch", "POST", "/v1/eligibility/batch", {"subjects": [VIOLATOR], "activity": "honours", "consortium": True},
     {"system", "other_system", "auditor", "admin"}),
    ("subject", "GET", f"/v1/subjects/{VIOLATOR}", None, EVERYONE),
    ("subject-actions", "GET", f"/v1/subjects/{VIOLATOR}/actions?as_of={AS_OF}", None, EVERYONE),
    ("explain", "GET", f"/v1/subjects/{VIOLATOR}/explain?as_of={AS_OF}", None, EVERYONE),
    ("explain-dot", "GET", f"/v1/subjects/{VIOLATOR}/explain?as_of={AS_OF}&format=dot", None, EVERYONE),
    ("own-department", "GET", "/v1/departments/finance/actions", None, {"finance", "auditor", "admin"}),
    ("other-department", "GET", "/v1/departments/tax/actions", None, {"tax", "auditor", "admin"}),
    ("records", "POST", "/v1/records", PUSH, {"finance", "tax", "admin"}),
    ("decision", "GET", "/v1/decisions/{decision}", None, {"system", "auditor", "admin"}),
    ("verify", "GET", "/v1/decisions/verify", None, {"auditor", "admin"}),
]


@pytest.mark.parametrize("method, path, body, allowed", [pytest.param(*row[1:], id=row[0]) for row in MATRIX])
def test_role_matrix(client, keys, seeded, method, path, body, allowed):
    made = client.post("/v1/eligibility", json=CHECK, headers=auth(keys["system"])).json()["decision_id"]
    path = path.replace("{decision}", made)
    callers = {None: None, "bad-key": "jc_not-a-key", **keys}
    wrong = []
    for name, key in callers.items():
        response = client.request(method, path, json=body, headers=auth(key))
        if name in (None, "bad-key"):
            want = (401, "unauthorized")
        else:
            want = (200, None) if name in allowed else (403, "forbidden")
        got = (response.status_code, response.json().get("code") if response.status_code != 200 else None)
        if got != want:
            wrong.append((name, got, want, response.text[:200]))
        if response.status_code == 401 and response.headers.get("www-authenticate") != "Bearer":
            wrong.append((name, "no Bearer challenge", dict(response.headers)))
    assert wrong == []


def test_a_revoked_key_is_refused(client, keys, service):
    with service.engine.begin() as c:
        c.execute(text("update api_keys set revoked = :yes where name = 'procurement-platform'"), {"yes": True})
    response = client.post("/v1/eligibility", json=CHECK, headers=auth(keys["system"]))
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"
    assert client.post("/v1/eligibility", json=CHECK, headers=auth(keys["other_system"])).status_code == 200


def test_malformed_authorization_headers_are_refused(client, keys):
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "jc_key-without-scheme", f"Token {keys['admin']}"]:
        response = client.post("/v1/eligibility", json=CHECK, headers={"Authorization": header})
        assert (response.status_code, response.json()["code"]) == (401, "unauthorized"), header
        assert response.headers["www-authenticate"] == "Bearer"


def test_the_docs_need_no_key(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/eligibility", "/v1/eligibility/batch", "/v1/subjects/{code}", "/v1/subjects/{code}/actions",
            "/v1/subjects/{code}/explain", "/v1/departments/{code}/actions", "/v1/records",
            "/v1/decisions/verify", "/v1/decisions/{decision_id}"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    operations = [op for ops in spec["paths"].values() for op in ops.values()]
    assert all(op["security"] == [{"HTTPBearer": []}] for op in operations)  # every call needs a key
    example = spec["components"]["schemas"]["EligibilityRequest"]["properties"]["subject"]["examples"]
    assert example == ["91511702MA62X8Q157"]


def test_who_asks_is_judged_before_what_is_asked(client, keys, service):
    """The eligibility check looks the key up together with the question's reads; a bad question
    from someone who may not ask is still refused for who they are, and nothing is logged."""
    bad = {"subject": "not-a-code", "activity": "government_procurement", "as_of": AS_OF}
    for key, want in [(None, (401, "unauthorized")), ("jc_not-a-key", (401, "unauthorized")),
                      (keys["finance"], (403, "forbidden")), (keys["system"], (422, "invalid_subject_code"))]:
        response = client.post("/v1/eligibility", json=bad, headers=auth(key))
        assert (response.status_code, response.json()["code"]) == want, key
    assert client.post("/v1/eligibility", json=CHECK, headers=auth(keys["finance"])).status_code == 403
    # regression: with the key read inside the handler, a body FastAPI could not parse was a 422
    # to a caller without a key
    for body in ({}, {"subject": VIOLATOR}, "not json"):
        response = client.post("/v1/eligibility", json=body, headers=auth(None))
        assert (response.status_code, response.json()["code"]) == (401, "unauthorized"), body
    with service.engine.connect() as c:
        assert c.execute(text("select count(*) from decisions")).scalar_one() == 0
