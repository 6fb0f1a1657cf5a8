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

__all__ = ["parse_period", "add_period", "subtract_period", "parse_date", "PERIOD_PATTERN"]

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
