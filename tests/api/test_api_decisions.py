"""Every answer is logged with its caller; the chain verifies, and tampering with a row shows."""
from __future__ import annotations

from sqlalchemy import JSON, bindparam, text

from apitest import A_GRADE, AS_OF, PRINCIPALS, VIOLATOR, app, auth, client, keys, seeded, service  # noqa: F401


def ask(client, key, subject, activity="government_procurement"):
    body = {"subject": subject, "activity": activity, "as_of": AS_OF}
    response = client.post("/v1/eligibility", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()


def label(name: str) -> str:
    role, key_name, department = PRINCIPALS[name]
    return f"{role}:{key_name}" + (f"@{department}" if department else "")


def test_a_decision_is_logged_with_its_caller_request_and_answer(client, keys, seeded, service):
    answer = ask(client, keys["system"], VIOLATOR)
    response = client.get(f"/v1/decisions/{answer['decision_id']}", headers=auth(keys["auditor"]))
    assert response.status_code == 200, response.text
    logged = response.json()
    assert logged["id"] == answer["decision_id"] and logged["caller"] == "system:procurement-platform"
    assert logged["request"] == {"subject": VIOLATOR, "activity": "government_procurement", "as_of": AS_OF}
    assert logged["answer"]["eligible"] is False
    assert logged["answer"]["restrictions"] == answer["restrictions"]
    assert logged["revisions"] and all(logged["revisions"].values())
    assert len(logged["hash"]) == 64 and len(logged["prev_hash"]) == 64
    # the system key that asked may read it back; another system may not
    assert client.get(f"/v1/decisions/{answer['decision_id']}", headers=auth(keys["system"])).status_code == 200
    other = client.get(f"/v1/decisions/{answer['decision_id']}", headers=auth(keys["other_system"]))
    assert other.status_code == 403 and other.json()["code"] == "forbidden"


def test_a_batch_is_one_decision(client, keys, seeded):
    body = {"subjects": [VIOLATOR, A_GRADE], "activity": "honours", "as_of": AS_OF, "consortium": True}
    result = client.post("/v1/eligibility/batch", json=body, headers=auth(keys["auditor"])).json()
    logged = client.get(f"/v1/decisions/{result['decision_id']}", headers=auth(keys["admin"])).json()
    assert logged["caller"] == label("auditor") and logged["request"]["subjects"] == [VIOLATOR, A_GRADE]
    assert logged["answer"]["eligible"] is result["eligible"] is False


def test_verify_then_tampering_names_the_first_broken_link(client, keys, seeded, service):
    made = [ask(client, keys[name], VIOLATOR)["decision_id"] for name in ("system", "other_system", "auditor", "system")]
    verify = client.get("/v1/decisions/verify", headers=auth(keys["auditor"]))
    assert verify.status_code == 200
    assert verify.json() == {"ok": True, "checked": 4, "broken_at": None}
    # someone with database access turns the refusal in the second answer into an approval
    forged = client.get(f"/v1/decisions/{made[1]}", headers=auth(keys["admin"])).json()["answer"]
    forged.update(eligible=True, restrictions=[])
    with service.engine.begin() as c:
        c.execute(text("update decisions set answer = :answer where id = :id")
                  .bindparams(bindparam("answer", type_=JSON)), {"answer": forged, "id": made[1]})
    assert client.get(f"/v1/decisions/{made[1]}", headers=auth(keys["admin"])).json()["answer"]["eligible"] is True
    result = client.get("/v1/decisions/verify", headers=auth(keys["admin"])).json()
    assert result["ok"] is False and result["checked"] == 1
    assert result["broken_at"]["id"] == made[1] and result["broken_at"]["seq"] == 2
    assert "content" in result["broken_at"]["problem"]


def test_rewriting_the_caller_is_detected_too(client, keys, seeded, service):
    made = [ask(client, keys["system"], code)["decision_id"] for code in (VIOLATOR, A_GRADE, VIOLATOR)]
    with service.engine.begin() as c:
        c.execute(text("update decisions set caller = 'system:someone-else' where id = :id"), {"id": made[2]})
    result = client.get("/v1/decisions/verify", headers=auth(keys["auditor"])).json()
    assert (result["ok"], result["checked"], result["broken_at"]["id"]) == (False, 2, made[2])
