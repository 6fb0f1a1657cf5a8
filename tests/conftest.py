"""Shared fixtures: the vocabulary, compiled catalogs, valid subject codes, bundle builders."""
from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import pytest

import engine
from catalog.vocabulary import load_vocabulary
from engine.codes import citizen_id_check_char, uscc_check_char

ROOT = Path(__file__).resolve().parent.parent
TEST_RULEBOOKS = Path(__file__).resolve().parent / "data" / "rulebooks"
AS_OF = date(2025, 6, 30)


def org_code(n: int) -> str:
    """A valid enterprise USCC (authority 9, type 1, Dazhou area code) numbered n."""
    body = f"91511700{n:09d}"
    return body + uscc_check_char(body)


def person_code(n: int) -> str:
    """A valid citizen ID born 1980-01-01 + (n mod 28) days, sequence n."""
    body = f"51170219800{1 + n % 9:01d}{1 + n % 28:02d}{n % 1000:03d}"
    return body + citizen_id_check_char(body)


_ids = itertools.count()


def entry(list_code: str, listed_on: str, status: str = "active", **extra) -> dict:
    return {"id": f"R{next(_ids)}", "kind": "list_entry", "list": list_code, "listed_on": listed_on,
            "status": status, **extra}


def bundle(code: str, *records: dict, kind: str = "legal_person", related=()) -> dict:
    return {"subject": {"code": code, "kind": kind, "name": f"主体{code[-4:]}"}, "records": list(records),
            "related": [{"subject": {"code": c, "kind": "natural_person", "name": f"个人{c[-4:]}"}} for c in related]}


@pytest.fixture(scope="session")
def vocab():
    return load_vocabulary()


@pytest.fixture(scope="session")
def test_catalog():
    return engine.compile_rulebooks([str(TEST_RULEBOOKS)])


@pytest.fixture(scope="session")
def evaluator(test_catalog):
    return engine.Evaluator(test_catalog)


@pytest.fixture(scope="session")
def shipped():
    return engine.compile_rulebooks()


@pytest.fixture
def evaluate(evaluator):
    def run(obj: dict, as_of: date = AS_OF):
        return evaluator.evaluate(engine.parse_bundle(obj), as_of)
    return run


# -- databases: a real SQLite file always, a real PostgreSQL server when reachable ----------
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_server():
    import os

    if not _pg_available():
        if os.environ.get("JOINTCREDIT_REQUIRE_PG"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required (JOINTCREDIT_REQUIRE_PG) but not reachable")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    return PG_ADMIN_URL


def fresh_pg_database(name_hint: str = "t") -> tuple[str, callable]:
    """Create an empty database for one test; returns its URL and a function that drops it."""
    import uuid

    import psycopg

    name = f"jc_{name_hint}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return f"postgresql://postgres@127.0.0.1:5432/{name}", drop


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh, empty database URL: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jointcredit.sqlite'}"
        return
    request.getfixturevalue("pg_server")
    url, drop = fresh_pg_database()
    try:
        yield url
    finally:
        drop()


def fail_writes_at(call: int, monkeypatch, service) -> None:
    """Make the `call`-th write of obligations during an import fail (a disk full half way)."""
    calls = []

    def failing_store(codes, computed, cause=None):
        calls.append(len(codes))
        if len(calls) == call:
            raise RuntimeError("disk full")

    monkeypatch.setattr(service.materialiser, "store", failing_store)
