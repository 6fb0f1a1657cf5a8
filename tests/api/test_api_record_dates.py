"""Records pushed with their dates out of order (issue 15): `expires_on` or `status_on` before
the record's start is refused with its own code and field, and nothing is stored."""
from __future__ import annotations

import pytest

from apitest import app, auth, client, keys, service  # noqa: F401

from conftest import bundle, entry, org_code

CODE = org_code(7401)


@pytest.mark.parametrize("dates, code, field", [
    pytest.param({"expires_on": "2024-03-14"}, "expires_before_start", "records[0].expires_on", id="expires"),
    pytest.param({"status": "repaired", "status_on": "2023-01-01"}, "status_before_start", "records[0].status_on",
                 id="status"),
])
def test_a_record_ending_before_it_starts_is_refused(client, keys, dates, code, field):
    pushed = bundle(CODE, entry("tax.major_violation", "2024-03-15", department="tax", **dates))
    r = client.post("/v1/records", json={"bundles": [pushed]}, headers=auth(keys["tax"]))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code and r.json()["errors"][0]["field"] == field
    assert client.get(f"/v1/subjects/{CODE}", headers=auth(keys["tax"])).status_code == 404
