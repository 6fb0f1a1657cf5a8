"""Dates and ISO 8601 periods (P3Y, P6M, P1Y6M, P10D).

Publication periods, time windows and measure durations are all written as ISO periods in
the catalog and the rulebooks; calendar arithmetic (a year from 29 February is 28 February)
comes from dateutil so that "within three years" means what a clerk means by it.
"""
from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

from dateutil.relativedelta import relativedelta

__all__ = ["parse_period", "add_period", "subtract_period", "parse_date", "date_problem", "PERIOD_PATTERN",
           "FIRST_DAY", "LAST_DAY"]

# Credit records and the dates asked about lie well inside this range; outside it the date
# arithmetic of windows and terms (P3Y) overflows the calendar.
FIRST_DAY, LAST_DAY = "1900-01-01", "2999-12-31"
_DAY_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_GOOD_DAYS: set[str] = set()  # date_problem's valid answers so far

PERIOD_PATTERN = re.compile(r"^P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")


@lru_cache(maxsize=256)
def parse_period(text: str) -> relativedelta:
    """The relativedelta of an ISO period such as 'P3Y'; ValueError for anything else."""
    match = PERIOD_PATTERN.match(text or "")
    if not match:
        raise ValueError(f"not an ISO 8601 period: {text!r}")
    years, months, weeks, days = (int(g) if g else 0 for g in match.groups())
    return relativedelta(years=years, months=months, days=days + 7 * weeks)


def add_period(day: date, period: str) -> date:
    return day + parse_period(period)


def subtract_period(day: date, period: str) -> date:
    return day - parse_period(period)


def parse_date(value: object) -> date:
    """A date from an ISO 'YYYY-MM-DD' string or a date; ValueError otherwise."""
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) == 10:
        return date.fromisoformat(value)
    raise ValueError(f"not a YYYY-MM-DD date: {value!r}")


def date_problem(value: object) -> str | None:
    """Why `value` is not a usable YYYY-MM-DD date, or None when it is.

    Strictly the calendar form: `date.fromisoformat` also reads week dates ("2025-W01-1"),
    which would be stored raw and compared as text against real dates. Dates found good are
    remembered (a million imported records carry a few thousand distinct days): checking one
    was ~3% of parsing a bundle.
    """
    if type(value) is str and value in _GOOD_DAYS:
        return None
    if not isinstance(value, str) or not _DAY_SHAPE.match(value):
        return f"{value!r} is not a date in YYYY-MM-DD form"
    try:
        date.fromisoformat(value)
    except ValueError:
        return f"{value!r} is not a date in YYYY-MM-DD form"
    if not FIRST_DAY <= value <= LAST_DAY:
        return f"{value!r} is outside {FIRST_DAY}..{LAST_DAY}"
    _GOOD_DAYS.add(value)  # bounded: at most the ~402,000 days of FIRST_DAY..LAST_DAY
    return None
