"""Dates the engine can compute with, checked before they reach it.

The service and the bundle parser accept anything `date.fromisoformat` reads in ten
characters, which lets through ISO week dates ("2025-W01-1"), stored raw and then compared
as text against real dates, and years at the edges of the calendar, where the engine's date
arithmetic (windows of P3Y, default terms) overflows into a 500. Credit records and the
dates asked about all lie well inside 1900..2999, so anything outside is refused as
`invalid_date`, with the shape and code the service uses.
"""
from __future__ import annotations

import re
from datetime import date

from store.service import ServiceError

__all__ = ["FIRST", "LAST", "date_problem", "check_as_of"]

FIRST, LAST = "1900-01-01", "2999-12-31"
_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def date_problem(value: str) -> str | None:
    """Why `value` is not a usable YYYY-MM-DD date, or None when it is."""
    if not _SHAPE.match(value):
        return f"{value!r} is not a date in YYYY-MM-DD form"
    try:
        date.fromisoformat(value)
    except ValueError:
        return f"{value!r} is not a date in YYYY-MM-DD form"
    if not FIRST <= value <= LAST:
        return f"{value!r} is outside {FIRST}..{LAST}"
    return None


def check_as_of(value: str | None, field: str = "as_of") -> str | None:
    """`value` unchanged (None: the service takes today), or ServiceError `invalid_date`."""
    problem = None if value is None else date_problem(value)
    if problem:
        raise ServiceError("invalid_date", problem, errors=[{"field": field, "value": value}])
    return value
