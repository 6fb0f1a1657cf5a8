"""schemathesis against the app's own OpenAPI (issue 15): every operation, valid and invalid
requests generated from its declaration, each sent with a key of every role, against a store
holding subjects, linked natural persons and lifecycle cases. No answer may be a 5xx, and
none may break the status codes, content types and schemas the operation declares.

Bounded to finish in well under a minute on two cores: a few examples per operation and mode,
no shrinking, no example database, derandomised (the same cases every run); the cases are sent
through the suite's TestClient (the app started once, with its lifespan, on the `database_url`
fixture's database), which re-raises a server error: a 500 fails the test with its traceback.
Measured: ~20 s on SQLite and ~27 s on PostgreSQL. Before issue 15 it failed on both (a case id
past the database's integers).
"""
from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup

from apitest import auth, client, app, service  # noqa: F401
from test_api_personal_data import seeded_people  # noqa: F401

EXAMPLES = 6
ROLES = ("system", "tax", "auditor", "admin")  # a key of every role (tax: a department)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _send(client, case, key: str):
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=auth(key))
    request = {name: kwargs[name] for name in ("method", "url", "headers", "params", "cookies") if kwargs.get(name)}
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        request["content"] = kwargs["data"]
    return client.request(**request), kwargs


def _first_line(failure: BaseException) -> str:
    return f"{type(failure).__name__}: {str(failure).strip().splitlines()[0][:200]}"


def test_every_operation_with_every_role_keeps_its_declaration(client, seeded_people):
    keys = seeded_people["keys"]
    schema = schemathesis.openapi.from_dict(client.app.openapi())
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                for role in ROLES:
                    response, kwargs = _send(client, case, keys[role])
                    try:
                        case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)
                    except FailureGroup as group:  # the checks' failures, collected for one report
                        failures.extend((operation.label, role, response.status_code, _first_line(failure))
                                        for failure in group.exceptions)

            run()
    assert "\n".join(map(str, sorted(set(failures)))) == ""
