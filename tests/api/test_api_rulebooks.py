"""Rulebook editing over HTTP: ETags, 409 and 422, the owner-only matrix, dry run, publish
without a restart (answers change from effective_from on), rollback, diff, audit trail."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from apitest import PRINCIPALS, VIOLATOR, app, auth, client, keys, seeded, service  # noqa: F401

BAN = "      - {activity: government_procurement, effect: deny}\n"
LATER = (date.today() + timedelta(days=5)).isoformat()
AFTER = (date.today() + timedelta(days=6)).isoformat()


def edited(text: str) -> str:
    return text.replace(BAN, BAN + "      - {activity: public_bidding, effect: deny}\n", 1)


def head(client, keys):
    r = client.get("/v1/rulebooks/taxation", headers=auth(keys["tax"]))
    assert r.status_code == 200
    return r.json(), r.headers["ETag"]


def test_list_and_get_with_etag(client, keys):
    r = client.get("/v1/rulebooks", headers=auth(keys["system"]))
    books = {b["name"]: b for b in r.json()["rulebooks"]}
    assert books["taxation"]["owner"] == "tax" and books["taxation"]["revision"] == books["taxation"]["head"]
    body, etag = head(client, keys)
    assert etag == f'"{body["revision"]}"' and body["text"].startswith("#")


def test_edit_publish_and_answers_change_from_the_effective_date(client, keys, seeded):
    body, etag = head(client, keys)
    r = client.put("/v1/rulebooks/taxation", json={"text": edited(body["text"]), "comment": "bar bidding too"},
                   headers={**auth(keys["tax"]), "If-Match": etag})
    assert r.status_code == 201, r.text
    revision = r.json()["revision"]
    assert r.headers["ETag"] == f'"{revision}"'
    dry = client.post("/v1/rulebooks/taxation/dry-run", json={"revision": revision, "as_of": AFTER},
                      headers=auth(keys["tax"])).json()
    assert dry["tests"]["failed"] == 0 and dry["eligibility_flips"]["public_bidding"]["became_ineligible"] >= 1
    check = {"subject": VIOLATOR, "activity": "public_bidding", "as_of": AFTER}
    assert client.post("/v1/eligibility", json=check, headers=auth(keys["system"])).json()["eligible"] is True
    r = client.post("/v1/rulebooks/taxation/publish", json={"revision": revision, "effective_from": LATER},
                    headers=auth(keys["tax"]))
    assert r.status_code == 200, r.text
    # the running server answers with the new revision from LATER on, the old one before
    assert client.post("/v1/eligibility", json=check, headers=auth(keys["system"])).json()["eligible"] is False
    before = {**check, "as_of": date.today().isoformat()}
    assert client.post("/v1/eligibility", json=before, headers=auth(keys["system"])).json()["eligible"] is True
    diff = client.get(f"/v1/rulebooks/taxation/diff?from={body['revision']}&to={revision}", headers=auth(keys["auditor"])).json()
    assert diff["measures"]["changed"] == ["tax.procurement_ban"]
    r = client.post("/v1/rulebooks/taxation/rollback", json={"to": body["revision"], "effective_from": AFTER},
                    headers=auth(keys["admin"]))
    assert r.status_code == 200, r.text
    assert client.post("/v1/eligibility", json=check, headers=auth(keys["system"])).json()["eligible"] is True
    changes = client.get("/v1/rulebooks/taxation/changes", headers=auth(keys["auditor"])).json()["changes"]
    assert [c["action"] for c in changes[:3]] == ["rollback", "publish", "draft"]
    assert changes[2]["comment"] == "bar bidding too" and "+      - {activity: public_bidding" in changes[2]["diff"]
    assert changes[2]["actor"].startswith("department:")
    revisions = client.get("/v1/rulebooks/taxation/revisions", headers=auth(keys["system"])).json()["revisions"]
    assert revisions[0]["state"] == "published"


def test_a_stale_etag_gets_409_and_the_other_edit_survives(client, keys):
    body, etag = head(client, keys)
    first = client.put("/v1/rulebooks/taxation", json={"text": edited(body["text"]), "comment": "one"},
                       headers={**auth(keys["tax"]), "If-Match": etag})
    assert first.status_code == 201
    second = client.put("/v1/rulebooks/taxation", json={"text": body["text"] + "\n# note\n", "comment": "two"},
                        headers={**auth(keys["tax"]), "If-Match": etag})
    assert second.status_code == 409 and second.json()["code"] == "stale_revision"
    assert second.json()["errors"][0]["head"] == first.json()["revision"]
    assert head(client, keys)[0]["revision"] == first.json()["revision"]
    missing = client.put("/v1/rulebooks/taxation", json={"text": body["text"], "comment": "x"}, headers=auth(keys["tax"]))
    assert missing.status_code == 428


def test_errors_come_back_with_line_column_and_code(client, keys):
    body, etag = head(client, keys)
    bad = body["text"].replace("department: finance", "department: financ")
    r = client.put("/v1/rulebooks/taxation", json={"text": bad, "comment": "typo"}, headers={**auth(keys["tax"]), "If-Match": etag})
    assert r.status_code == 422 and r.json()["code"] == "rulebook_invalid"
    (error,) = r.json()["errors"]
    assert error["code"] == "unknown_department" and error["suggestion"] == "finance"
    assert bad.splitlines()[error["line"] - 1].strip().startswith("department: financ")
    r = client.put("/v1/rulebooks/taxation", json={"text": body["text"]}, headers={**auth(keys["tax"]), "If-Match": etag})
    assert r.status_code == 422  # the change comment is required


def test_publish_refused_when_tests_fail(client, keys):
    body, etag = head(client, keys)
    broken = body["text"].replace("{measure: tax.procurement_ban, status: disputed}", "{measure: tax.procurement_ban, status: active}")
    revision = client.put("/v1/rulebooks/taxation", json={"text": broken, "comment": "oops"},
                          headers={**auth(keys["tax"]), "If-Match": etag}).json()["revision"]
    r = client.post("/v1/rulebooks/taxation/publish", json={"revision": revision}, headers=auth(keys["tax"]))
    assert r.status_code == 409 and r.json()["code"] == "tests_failed"


WRITE = {"tax", "admin"}
HISTORY = {"tax", "auditor", "admin"}


@pytest.mark.parametrize("endpoint, allowed", [
    ("put", WRITE), ("dry-run", HISTORY), ("publish", WRITE), ("rollback", WRITE), ("changes", HISTORY),
    ("list", set(PRINCIPALS)), ("get", set(PRINCIPALS)), ("revisions", set(PRINCIPALS)), ("diff", set(PRINCIPALS)),
])
def test_only_the_owner_may_change_a_rulebook(client, keys, endpoint, allowed):
    body, etag = head(client, keys)
    rev = body["revision"]
    calls = {
        "put": lambda k: client.put("/v1/rulebooks/taxation", json={"text": body["text"] + "\n# n\n", "comment": "c"},
                                    headers={**auth(k), "If-Match": etag}),
        "dry-run": lambda k: client.post("/v1/rulebooks/taxation/dry-run", json={"revision": rev}, headers=auth(k)),
        "publish": lambda k: client.post("/v1/rulebooks/taxation/publish", json={"revision": rev}, headers=auth(k)),
        "rollback": lambda k: client.post("/v1/rulebooks/taxation/rollback", json={"to": rev}, headers=auth(k)),
        "changes": lambda k: client.get("/v1/rulebooks/taxation/changes", headers=auth(k)),
        "list": lambda k: client.get("/v1/rulebooks", headers=auth(k)),
        "get": lambda k: client.get("/v1/rulebooks/taxation", headers=auth(k)),
        "revisions": lambda k: client.get("/v1/rulebooks/taxation/revisions", headers=auth(k)),
        "diff": lambda k: client.get(f"/v1/rulebooks/taxation/diff?from={rev}&to={rev}", headers=auth(k)),
    }
    assert calls[endpoint](None).status_code == 401
    assert calls[endpoint]("jc_not-a-key").status_code == 401
    for name in PRINCIPALS:
        status = calls[endpoint](keys[name]).status_code
        if name in allowed:
            assert status < 400 or status == 409, (name, status)  # 409: a second write from the same base
        else:
            assert status == 403, (name, status)


def test_a_publish_for_days_already_past_is_refused_unless_an_admin_gives_a_reason(client, keys, seeded):
    body, etag = head(client, keys)
    r = client.put("/v1/rulebooks/taxation", json={"text": edited(body["text"]), "comment": "bar bidding too"},
                   headers={**auth(keys["tax"]), "If-Match": etag})
    revision = r.json()["revision"]
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    check = {"subject": VIOLATOR, "activity": "public_bidding", "as_of": yesterday}
    answered = client.post("/v1/eligibility", json=check, headers=auth(keys["system"])).json()
    assert answered["eligible"] is True
    publish = {"revision": revision, "effective_from": yesterday}
    for key, extra in (("tax", {}), ("tax", {"retroactive_reason": "the memorandum applied from then"}),
                       ("admin", {}), ("admin", {"retroactive_reason": "   "})):
        refused = client.post("/v1/rulebooks/taxation/publish", json={**publish, **extra}, headers=auth(keys[key]))
        assert refused.status_code == 409 and refused.json()["code"] == "retroactive_publish", (key, refused.text)
        assert refused.json()["errors"][0]["minimum"] == date.today().isoformat()
    assert client.post("/v1/eligibility", json=check, headers=auth(keys["system"])).json()["eligible"] is True
    reason = "the memorandum applied from then"
    done = client.post("/v1/rulebooks/taxation/publish", json={**publish, "retroactive_reason": reason},
                       headers=auth(keys["admin"]))
    assert done.status_code == 200, done.text
    assert client.post("/v1/eligibility", json=check, headers=auth(keys["system"])).json()["eligible"] is False
    latest = client.get("/v1/rulebooks/taxation/changes", headers=auth(keys["auditor"])).json()["changes"][0]
    assert latest["action"] == "publish" and reason in latest["comment"] and yesterday in latest["comment"]
    # the answer logged before keeps the revision it was given under
    logged = client.get(f"/v1/decisions/{answered['decision_id']}", headers=auth(keys["system"])).json()
    assert logged["revisions"]["taxation"] == body["revision"] != revision
