"""Shared fixtures and data for the API tests (imported by each test module).

Not a conftest.py: a second module named `conftest` would shadow tests/conftest.py for the
other test modules, which import their helpers with `from conftest import ...`.

Every app is built with create_app(Settings(...)) on the `database_url` fixture, so each test
runs against a real SQLite file and a fresh real PostgreSQL database.
"""
from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from store.service import bundles_from
from store.settings import Settings

from conftest import bundle, entry, org_code, person_code

AS_OF = "2025-06-30"
TAX_DOCUMENT = "达税稽罚〔2024〕12号"

VIOLATOR = org_code(7001)  # on the major tax violation list since 2024-03-15
REP = person_code(7001)  # its legal representative
FINANCE_OFFICER = person_code(7002)
A_GRADE = org_code(7002)  # tax credit grade A: incentives
SUSPENDED = org_code(7003)  # grade A, but a judgment defaulter: its incentives are suspended
DISPUTED = org_code(7004)  # on the tax list, but the listing is disputed
PLAIN = org_code(7005)  # stored with a harmless rating
UNKNOWN = org_code(7006)  # a valid code the store has never heard of

SEED = [
    bundle(VIOLATOR,
           entry("tax.major_violation", "2024-03-15", department="tax", document=TAX_DOCUMENT),
           {"id": "REL-LR", "kind": "relation", "type": "legal_representative", "other": REP, "listed_on": "2019-01-01"},
           {"id": "REL-FO", "kind": "relation", "type": "financial_officer", "other": FINANCE_OFFICER,
            "listed_on": "2019-01-01"},
           related=[REP, FINANCE_OFFICER]),
    bundle(A_GRADE, {"id": "TCR-A", "kind": "rating", "scheme": "tax.credit", "grade": "A", "decided_on": "2025-04-01",
                     "department": "tax"}),
    bundle(SUSPENDED,
           {"id": "TCR-A", "kind": "rating", "scheme": "tax.credit", "grade": "A", "decided_on": "2025-04-01"},
           entry("court.judgment_defaulter", "2025-01-10", department="court", document="（2025）川17执9号")),
    bundle(DISPUTED, entry("tax.major_violation", "2024-06-01", status="disputed", department="tax")),
    bundle(PLAIN, {"id": "TCR-B", "kind": "rating", "scheme": "tax.credit", "grade": "B", "decided_on": "2025-04-01"}),
]

# name -> (role, key name, department)
PRINCIPALS = {
    "system": ("system", "procurement-platform", None),
    "other_system": ("system", "bidding-platform", None),
    "finance": ("department", "finance-bureau", "finance"),
    "tax": ("department", "tax-bureau", "tax"),
    "auditor": ("auditor", "audit-office", None),
    "admin": ("admin", "operations", None),
}


def auth(key: str | None) -> dict:
    return {"Authorization": f"Bearer {key}"} if key else {}


def today() -> str:
    return date.today().isoformat()


@pytest.fixture
def app(database_url):
    return create_app(Settings(database_url=database_url, load_demo=False))


@pytest.fixture
def client(app):
    with TestClient(app) as c:  # the context runs the lifespan: the service is built here
        yield c


@pytest.fixture
def service(client):
    return client.app.state.service


@pytest.fixture
def keys(service) -> dict[str, str]:
    return {name: service.keys.create(role, label, dept) for name, (role, label, dept) in PRINCIPALS.items()}


@pytest.fixture
def seeded(service):
    """The SEED subjects stored (through the service, as an import would)."""
    service.save(bundles_from(SEED, service.vocab))
    return service
