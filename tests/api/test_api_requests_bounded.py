"""Requests are bounded (issue 15): the key before the body on every route, a body limit
enforced while the body streams in, and errors that echo only a short prefix of a bad value.

The key-first tests call the app as a server would, through raw ASGI on the TestClient's event
loop, with a `receive` that records whether the body was asked for: every route of the app
(iterated, so a route added later is walked too), without a key and with an unknown one.
"""
from __future__ import annotations

import json
import re

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from api.errors import ECHO_CHARS
from api.keyed_route import QUESTION_BYTES
from apitest import auth, client, keys, service, app  # noqa: F401

from conftest import bundle

UNKNOWN_KEY = "jc_" + "u" * 43


def every_route(app) -> list[tuple[str, str]]:
    """(method, path with its parameters filled in) of every API route of the app."""
    out = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            path = re.sub(r"\{[^}]+\}", "1", context.path)
            out.extend((method, path) for method in sorted(route.methods))
    return out


async def _raw(app, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, dict, bool]:
    """The status, the JSON answer and whether the app asked for the body."""
    asked = []
    sent: list[dict] = []

    async def receive() -> dict:
        asked.append(True)
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80), "state": {}}
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(content), bool(asked)


def call(client, method, path, key, body: bytes, declared: bool = True) -> tuple[int, dict, bool]:
    headers = [(b"content-type", b"application/json")]
    if declared:
        headers.append((b"content-length", str(len(body)).encode()))
    if key:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    return client.portal.call(_raw, client.app, method, path, headers, body)


def test_every_route_answers_a_caller_without_a_valid_key_before_reading_its_body(client):
    routes = every_route(client.app)
    assert len(routes) >= 25 and ("POST", "/v1/records") in routes
    big = b'{"bundles": [' + b" " * (QUESTION_BYTES * 4) + b"]}"
    wrong = []
    for method, path in routes:
        for key in (None, UNKNOWN_KEY):
            for declared in (True, False):  # with a Content-Length, and streamed without one
                status, answer, read = call(client, method, path, key, big, declared)
                if (status, answer.get("code"), read) != (401, "unauthorized", False):
                    wrong.append((method, path, key is not None, declared, status, answer.get("code"), read))
    assert wrong == []


def test_an_unknown_key_hears_401_before_anything_about_a_malformed_body(client):
    """The eligibility route may read a question (QUESTION_BYTES at most) before the key, to look
    the key up with the question's own reads; it still answers 401 first."""
    wrong = []
    for method, path in every_route(client.app):
        status, answer, _ = call(client, method, path, UNKNOWN_KEY, b'{"subject": "9151')
        if (status, answer.get("code")) != (401, "unauthorized"):
            wrong.append((method, path, status, answer.get("code")))
    assert wrong == []


def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(app, client, keys):
    limit = app.state.settings.max_body_bytes
    body = b'{"bundles": [' + b" " * limit + b"]}"
    for declared in (True, False):
        status, answer, _ = call(client, "POST", "/v1/records", keys["tax"], body, declared)
        assert (status, answer["code"]) == (413, "body_too_large"), answer
        assert set(answer) == {"code", "message", "errors"} and str(limit) in answer["message"]


def test_a_declared_length_over_the_limit_is_refused_before_the_key_or_the_body(app, client):
    limit = app.state.settings.max_body_bytes
    headers = [(b"content-type", b"application/json"), (b"content-length", str(limit + 1).encode())]
    status, answer, read = client.portal.call(_raw, client.app, "POST", "/v1/records", headers, b"")
    assert (status, answer["code"], read) == (413, "body_too_large", False)


def test_a_body_within_the_limit_is_served(client, keys):
    response = client.post("/v1/records", headers=auth(keys["tax"]),
                           json={"bundles": [bundle("91511702MA62X8Q157")], "pad": " " * 100_000})
    assert response.status_code == 422 and response.json()["code"] == "invalid_request"  # read and parsed: `pad`


@pytest.mark.parametrize("path, body", [
    ("/v1/eligibility", lambda v: {"subject": v, "activity": "honours"}),
    ("/v1/eligibility", lambda v: {"subject": "91511702MA62X8Q157", "activity": v}),
    ("/v1/eligibility/batch", lambda v: {"subjects": [v, v], "activity": "honours"}),
    ("/v1/records", lambda v: {"bundles": [bundle(v)]}),
    ("/v1/records", lambda v: {"bundles": [{**bundle("91511702MA62X8Q157"), "records": [{"id": "r", "kind": v}]}]}),
], ids=["eligibility-subject", "eligibility-activity", "batch", "records-code", "records-kind"])
def test_an_error_echoes_only_a_short_prefix_of_a_bad_value(client, keys, path, body):
    value = "9" * 50 + "Z" * 500_000
    key = keys["tax"] if path == "/v1/records" else keys["system"]
    response = client.post(path, json=body(value), headers=auth(key))
    assert response.status_code == 422
    assert len(response.content) < 5_000, response.content[:300]
    assert value[:40] in response.text  # enough to find it by
    assert value[:ECHO_CHARS + 1] not in response.text and "Z" * ECHO_CHARS not in response.text
