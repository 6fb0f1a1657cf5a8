"""The service benchmark's verdicts: the import's 5-minute target is the issue's target for
SQLite only (a PostgreSQL import was reported MISSED against a target it does not have)."""
from __future__ import annotations

import pytest

from bench.service import _summary


def _report(backend: str, import_seconds: float) -> dict:
    return {"meta": {"backend": backend, "concurrency": 8}, "population": {"subjects": 1000},
            "import": {"seconds": import_seconds}, "runs": {}}


@pytest.mark.parametrize(("backend", "seconds", "verdict"), [
    ("sqlite", 299.0, True),
    ("sqlite", 301.0, False),
    ("postgresql", 440.0, None),  # no target: neither met nor missed
    ("postgresql", 200.0, None),
])
def test_the_import_target_is_judged_on_sqlite_only(backend, seconds, verdict):
    assert _summary(_report(backend, seconds))["targets"]["import_under_5_min"] is verdict
