"""No 500 for any input (issue 15): ids past what the database's integers hold, and unpaired
surrogates (`"\\ud800"`, valid JSON that UTF-8 cannot carry), are 4xx on SQLite and PostgreSQL.

The TestClient re-raises a server error, so a case that reached a 500 fails loudly here."""
from __future__ import annotations

import pytest

from apitest import VIOLATOR, app, auth, client, keys, seeded, service  # noqa: F401

from conftest import org_code

BIG_IDS = [2**31, 2**63, 2**64, 10**30]
ID_PATHS = ["/v1/objections/{}", "/v1/repairs/{}", "/v1/departments/tax/changes?after={}",
            "/v1/departments/tax/actions?offset={}"]
DECISION_PATHS = [("/v1/objections/{}/decision", {"decision": "reject", "reasons": "r"}),
                  ("/v1/repairs/{}/decision", {"decision": "refuse", "reasons": "r"})]


def test_ids_past_the_database_integers_are_refused(client, keys):
    headers = auth(keys["admin"])
    wrong = []
    for big in BIG_IDS:
        for path in ID_PATHS:
            response = client.get(path.format(big), headers=headers)
            if response.status_code != 422 or response.json()["code"] != "invalid_request":
                wrong.append((path, big, response.status_code))
        for path, body in DECISION_PATHS:
            response = client.post(path.format(big), json=body, headers=headers)
            if response.status_code != 422:
                wrong.append((path, big, response.status_code))
    assert wrong == []


def test_the_largest_id_the_database_holds_is_simply_not_found(client, keys):
    response = client.get(f"/v1/objections/{2**31 - 1}", headers=auth(keys["admin"]))
    assert (response.status_code, response.json()["code"]) == (404, "unknown_objection")


SURROGATE = "\\ud800"  # as JSON text: the escape of a lone high surrogate
NAMED = org_code(7401)
# (path, key name, JSON text with the surrogate in an echoed or stored field)
BODIES = [
    ("/v1/eligibility", "system", '{"subject": "%s", "activity": "honours"}'),
    ("/v1/eligibility", "system", '{"subject": "' + VIOLATOR + '", "activity": "hon%sours"}'),
    ("/v1/eligibility", "system", '{"subject": "' + VIOLATOR + '", "activity": "honours", "as_of": "%s"}'),
    ("/v1/eligibility/batch", "system", '{"subjects": ["' + VIOLATOR + '", "%s"], "activity": "honours"}'),
    ("/v1/eligibility/batch", "system", '{"subjects": ["' + VIOLATOR + '"], "activity": "%s"}'),
    ("/v1/records", "tax", '{"bundles": [{"subject": {"code": "' + NAMED + '", "kind": "legal_person", '
                           '"name": "达州%s"}, "records": []}]}'),
    ("/v1/records", "tax", '{"bundles": [{"subject": {"code": "' + NAMED + '", "kind": "legal_person", "name": "n"}, '
                           '"records": [{"id": "R%s", "kind": "rating", "scheme": "tax.credit", "grade": "A", '
                           '"decided_on": "2025-01-01"}]}]}'),
    ("/v1/records", "tax", '{"bundles": [{"subject": {"code": "%s"}, "records": []}]}'),
    ("/v1/records", "tax", '{"bundles": [{"subject": {"code": "' + NAMED + '", "kind": "legal_person", "name": "n"}, '
                           '"records": [{"id": "R1", "kind": "rating", "scheme": "tax.credit", "grade": "A", '
                           '"decided_on": "2025-01-01", "note%s": 1}]}]}'),
    ("/v1/objections", "tax", '{"subject": "' + VIOLATOR + '", "record": "R1", "grounds": "wrong%s"}'),
    ("/v1/rulebooks/taxation", "tax", '{"text": "rulebook: taxation%s", "comment": "c"}'),
]


@pytest.mark.parametrize("path, key, body", BODIES, ids=[f"{i}-{b[0].rsplit('/', 1)[-1]}" for i, b in
                                                         enumerate(BODIES)])
def test_an_unpaired_surrogate_is_refused_not_a_500(client, keys, seeded, path, key, body):
    method = "PUT" if path.startswith("/v1/rulebooks/") else "POST"
    response = client.request(method, path, content=(body % SURROGATE).encode(),
                              headers={**auth(keys[key]), "Content-Type": "application/json", "If-Match": '"x"'})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_request"
    if path == "/v1/records":
        assert client.get(f"/v1/subjects/{NAMED}", headers=auth(keys["tax"])).status_code == 404
