"""Refuse pushed bundles the store cannot hold, before the engine's parser sees them.

engine.parse_bundle checks meaning (codes, lists, dates) but not everything the database
needs: a list where a string belongs, a value longer than its column, a NUL character, a
date it would store raw in a form that does not compare as text ("2025-W01-1") or at the
calendar's edge. Those reach the driver or the engine's date arithmetic and fail as a 500
(on PostgreSQL only, for lengths and NULs; SQLite stores them silently). Until parse_bundle
checks them itself, this guard answers them as 422 with a stable code, in the shape
bundles_from uses. Lengths are read off the store's tables, so a migration that widens a
column widens the check.
"""
from __future__ import annotations

from typing import Any

from store.models import RecordRow, Subject
from store.service import ServiceError

from .dates import date_problem

__all__ = ["check_storable"]

# Codes are left to parse_bundle, whose checks take any type and have better codes.
_RECORD_FIELDS = ("id", "kind", "status", "list", "scheme", "grade", "severity", "type", "category", "department",
                  "document")
_DATE_FIELDS = ("listed_on", "decided_on", "expires_on", "status_on")


def _limits(table, renames: dict[str, str]) -> dict[str, int]:
    limits = {c.name: getattr(c.type, "length", None) for c in table.columns}
    limits.update({field: limits[column] for field, column in renames.items()})
    return {k: v for k, v in limits.items() if v}


_SUBJECT_LIMITS = _limits(Subject.__table__, {})
_RECORD_LIMITS = _limits(RecordRow.__table__, {"id": "record_id"})


def _nul(value: Any, path: str) -> str | None:
    """The path of the first string (or key) holding a NUL character, which PostgreSQL cannot store."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            found = _nul(k, path) or _nul(v, f"{path}.{k}")
            if found:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _nul(v, f"{path}[{i}]")
            if found:
                return found
    return None


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _problem(code: str, message: str, field: str, value: Any = None) -> dict:
    return {"code": code, "message": message, "field": field, "value": value}


def _scalars(obj: dict, fields, limits: dict[str, int], path: str, ints: tuple = ()) -> dict | None:
    for name in fields:
        value = obj.get(name)
        if value is None:
            continue
        allowed_int = name in ints and isinstance(value, int) and not isinstance(value, bool)
        if not isinstance(value, str) and not allowed_int:
            return _problem("wrong_type", f"`{name}` must be a string", _join(path, name), value)
        if name in limits and len(str(value)) > limits[name]:
            return _problem("value_too_long", f"`{name}` is longer than {limits[name]} characters", _join(path, name),
                            str(value)[:40] + "...")
    return None


def _dates(record: dict, path: str) -> dict | None:
    for name in _DATE_FIELDS:
        value = record.get(name)
        problem = date_problem(value) if isinstance(value, str) else None  # other types: parse_bundle says
        if problem:
            return _problem("invalid_date", problem, _join(path, name), value)
    return None


def _bundle_problem(obj: Any, path: str) -> dict | None:
    if not isinstance(obj, dict):
        return None  # parse_bundle reports it (invalid_bundle)
    subject = obj.get("subject")
    if isinstance(subject, dict):
        found = _scalars(subject, ("name",), _SUBJECT_LIMITS, _join(path, "subject"))
        if found:
            return found
    records = obj.get("records")
    for i, record in enumerate(records if isinstance(records, list) else []):
        if isinstance(record, dict):
            found = (_scalars(record, _RECORD_FIELDS, _RECORD_LIMITS, _join(path, f"records[{i}]"), ints=("id",))
                     or _dates(record, _join(path, f"records[{i}]")))
            if found:
                return found
    related = obj.get("related")
    for i, other in enumerate(related if isinstance(related, list) else []):  # not a list: parse_bundle says
        found = _bundle_problem(other, _join(path, f"related[{i}]"))
        if found:
            return found
    return None


def check_storable(objs: list) -> None:
    """Raise ServiceError naming every pushed bundle the store could not hold."""
    errors = []
    for i, obj in enumerate(objs):
        where = _nul(obj, "")
        found = (_problem("invalid_character", "text must not contain NUL characters", where.lstrip(".")) if where
                 else _bundle_problem(obj, ""))
        if found:
            errors.append({"index": i, **found})
    if errors:
        raise ServiceError(errors[0]["code"], f"{len(errors)} invalid bundle(s)", errors=errors)
