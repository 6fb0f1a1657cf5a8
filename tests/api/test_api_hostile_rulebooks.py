"""Hostile and careless rulebooks over HTTP (issue 15): the 518-byte alias bomb that took the
server to 4 GB and each bound on rulebook text, answered 422 quickly with the line and column;
a department's draft applying another department's measure, refused."""
from __future__ import annotations

import time

import pytest

from apitest import app, auth, client, keys, service  # noqa: F401

from test_rulebook_bounds import HOSTILE, too_deep


@pytest.mark.parametrize("text, code, line, column", HOSTILE)
def test_a_new_rulebook_past_a_bound_is_422_at_its_place(client, keys, text, code, line, column):
    started = time.perf_counter()
    r = client.put("/v1/rulebooks/zzbomb", json={"text": text, "comment": "hostile"}, headers=auth(keys["finance"]))
    assert time.perf_counter() - started < 30  # unbounded, the bomb took minutes and gigabytes; loaded CI took 11 s
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "rulebook_invalid"
    assert [(e["code"], e["line"], e["column"]) for e in body["errors"]] == [(code, line, column)]


def test_nesting_that_would_overflow_the_parser_is_422_not_500(client, keys):
    text = too_deep().replace("[" * 10, "[" * 5000).replace("]" * 10, "]" * 5000)
    r = client.put("/v1/rulebooks/zzbomb", json={"text": text, "comment": "deep"}, headers=auth(keys["finance"]))
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "yaml_too_deep"


def test_an_existing_rulebook_edited_into_a_bomb_is_422(client, keys):
    r = client.get("/v1/rulebooks/taxation", headers=auth(keys["tax"]))
    text = r.json()["text"] + "x: &x [1, 2]\ny: *x\n"
    r = client.put("/v1/rulebooks/taxation", json={"text": text, "comment": "bomb"},
                   headers={**auth(keys["tax"]), "If-Match": r.headers["ETag"]})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "yaml_alias"


def test_a_taxation_draft_applying_the_courts_bidding_restriction_is_422(client, keys):
    r = client.get("/v1/rulebooks/taxation", headers=auth(keys["tax"]))
    text = r.json()["text"].replace("    apply:\n", "    apply:\n      - courts.bidding_restricted\n", 1)
    r = client.put("/v1/rulebooks/taxation", json={"text": text, "comment": "bar bidding"},
                   headers={**auth(keys["tax"]), "If-Match": r.headers["ETag"]})
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["code"] == "foreign_measure" and "owned by court" in error["message"]
    assert text.splitlines()[error["line"] - 1].strip() == "- courts.bidding_restricted"
