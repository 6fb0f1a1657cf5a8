"""The eligibility route's own request handling (api/keyed_route.py) against FastAPI's.

Route-level: one endpoint mounted twice on a small app, once as a KeyFirstJsonRoute and once as
a plain APIRoute, and every request, good or bad, sent to both: the answers must be the same,
byte for byte where FastAPI's handler words them (the endpoint is a stand-in; these tests are
about the route, not the check). Then the real check, through both paths of the real route.
"""
from __future__ import annotations

import json

import pytest
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.testclient import TestClient
from sqlalchemy import text

from api import errors
from api.deps import SentKey, ServiceDep
from api.keyed_route import KeyFirstJsonRoute
from api.schemas import EligibilityAnswer, EligibilityRequest
from store.keys import Principal

from apitest import AS_OF, VIOLATOR, app, auth, client, keys, seeded, service  # noqa: F401

KEY = {"Authorization": "Bearer jc_some-key"}
GOOD = b'{"subject": "S1", "activity": "honours", "as_of": "2025-06-30"}'


async def answer_back(body: EligibilityRequest, request: Request, key: SentKey):
    """Echoes the question as an answer, with a field the response model does not have."""
    if body.subject == "break-the-answer":
        return {"subject": body.subject}  # not an EligibilityAnswer: a 500 either way
    return {"subject": body.subject, "activity": body.activity, "as_of": body.as_of or "today", "eligible": True,
            "known": key == "jc_some-key", "restrictions": [], "incentives": [], "decision_id": request.url.path,
            "not_in_the_model": 1}


class OneKey:
    """The service's key lookup for KEY alone (the route looks the key up before it hands a
    request to FastAPI's handler): these tests are about the route, not the key store."""

    async def principal(self, key: str) -> Principal | None:
        return Principal(1, "route-test", "system", None) if key == "jc_some-key" else None


@pytest.fixture(scope="module")
def both():
    """A client of an app serving answer_back at /fast (KeyFirstJsonRoute) and /plain (APIRoute)."""
    served = FastAPI()
    served.state.service = OneKey()
    errors.install(served)
    router = APIRouter()
    router.add_api_route("/fast", answer_back, methods=["POST"], response_model=EligibilityAnswer,
                         route_class_override=KeyFirstJsonRoute)
    router.add_api_route("/plain", answer_back, methods=["POST"], response_model=EligibilityAnswer)
    served.include_router(router)
    with TestClient(served, raise_server_exceptions=False) as c:
        yield c


def _same(both, content: bytes | None, headers: dict) -> tuple[int, dict]:
    fast = both.post("/fast", content=content, headers=headers)
    plain = both.post("/plain", content=content, headers=headers)
    assert fast.status_code == plain.status_code, (fast.text, plain.text)
    assert fast.headers["content-type"] == plain.headers["content-type"]
    fast_json, plain_json = fast.json(), plain.json()
    if fast.status_code == 200:  # the only difference: where each was asked
        assert (fast_json.pop("decision_id"), plain_json.pop("decision_id")) == ("/fast", "/plain")
    assert fast_json == plain_json
    return fast.status_code, fast_json


JSON = {"Content-Type": "application/json"}
CASES = [
    ("good", GOOD, JSON, 200),
    ("as_of left out", b'{"subject": "S1", "activity": "honours"}', JSON, 200),
    ("as_of null", b'{"subject": "S1", "activity": "honours", "as_of": null}', JSON, 200),
    ("unicode", '{"subject": "达州", "activity": "honours"}'.encode(), JSON, 200),
    ("charset", GOOD, {"Content-Type": "application/json; charset=utf-8"}, 200),
    ("vendor json", GOOD, {"Content-Type": "application/vnd.api+json"}, 200),
    ("utf-16", GOOD.decode().encode("utf-16"), JSON, 200),  # json.loads reads it; pydantic's parser does not
    ("missing field", b'{"subject": "S1"}', JSON, 422),
    ("extra field", b'{"subject": "S1", "activity": "honours", "colour": "red"}', JSON, 422),
    ("number for a string", b'{"subject": 7, "activity": "honours"}', JSON, 422),
    ("not an object", b'["S1", "honours"]', JSON, 422),
    ("invalid json", b'{"subject": "S1",', JSON, 422),
    ("trailing garbage", GOOD + b" x", JSON, 422),
    ("empty body", b"", JSON, 422),
    ("no content type", GOOD, {}, 422),
    ("text/plain", GOOD, {"Content-Type": "text/plain"}, 422),
    ("broken answer", b'{"subject": "break-the-answer", "activity": "honours"}', JSON, 500),
]


@pytest.mark.parametrize("content, headers, status", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_every_request_is_answered_as_fastapi_answers_it(both, content, headers, status):
    got, body = _same(both, content, {**headers, **KEY})
    assert got == status, body
    if status == 200:
        assert "not_in_the_model" not in body and body["known"] is True  # filtered; the key reached the endpoint


def test_the_key_is_asked_for_before_the_body_is_read(both):
    """FastAPI's order answers a body that is not JSON with 422 before any dependency; this route
    says 401 first, whatever the body."""
    for content in (GOOD, b'{"subject": "S1",', b""):
        fast = both.post("/fast", content=content, headers=JSON)
        assert (fast.status_code, fast.json()["code"]) == (401, "unauthorized"), content
        assert fast.headers["www-authenticate"] == "Bearer"
    assert both.post("/plain", content=b'{"subject": "S1",', headers=JSON).status_code == 422


def test_the_docs_are_fastapis_own(both):
    paths = both.app.openapi()["paths"]
    assert paths["/fast"]["post"]["requestBody"] == paths["/plain"]["post"]["requestBody"]
    fast = dict(paths["/fast"]["post"]["responses"])
    assert (fast.pop("400"), fast.pop("413")) and fast == paths["/plain"]["post"]["responses"]  # reading a body


def test_an_endpoint_of_another_shape_is_refused_when_the_route_is_built():
    async def wrong(body: EligibilityRequest, service: ServiceDep):
        return {}

    router = APIRouter()
    with pytest.raises(TypeError, match="exactly one dependency, the key"):
        router.add_api_route("/x", wrong, methods=["POST"], response_model=EligibilityAnswer,
                             route_class_override=KeyFirstJsonRoute)

    async def no_body(request: Request, key: SentKey):
        return {}

    with pytest.raises(TypeError, match="one body parameter typed with a pydantic model"):
        router.add_api_route("/y", no_body, methods=["POST"], response_model=EligibilityAnswer,
                             route_class_override=KeyFirstJsonRoute)

    async def more(body: EligibilityRequest, request: Request, key: SentKey, response: Response):
        return {}

    with pytest.raises(TypeError, match="no other parameters"):
        router.add_api_route("/z", more, methods=["POST"], response_model=EligibilityAnswer,
                             route_class_override=KeyFirstJsonRoute)
    router.add_api_route("/fine", answer_back, methods=["POST"], response_model=EligibilityAnswer,
                         route_class_override=KeyFirstJsonRoute)  # the shape it takes


def test_the_real_check_is_the_same_on_both_paths(client, keys, seeded, service):
    """The real route: a plain JSON question takes the direct path, the same question with a
    charset FastAPI's; the answers are the same, and both are logged."""
    question = {"subject": VIOLATOR, "activity": "government_procurement", "as_of": AS_OF}
    direct = client.post("/v1/eligibility", json=question, headers=auth(keys["system"]))
    via_fastapi = client.post("/v1/eligibility", content=json.dumps(question),
                              headers={**auth(keys["system"]), "Content-Type": "application/json; charset=utf-8"})
    assert direct.status_code == via_fastapi.status_code == 200
    first, second = direct.json(), via_fastapi.json()
    assert first.pop("decision_id") != second.pop("decision_id")
    assert first == second and first["eligible"] is False and first["restrictions"]
    with service.engine.connect() as c:
        assert c.execute(text("select count(*) from decisions")).scalar_one() == 2
