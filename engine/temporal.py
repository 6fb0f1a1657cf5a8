"""What a record is on a given date.

A record's stored status is its status today; evaluation asks about `as_of`. A record
repaired on 2025-01-10 still counted on 2025-01-09. A list entry stops counting at its
expires_on (or its list's default term), and every record stops at the maximum publication
period of its list or severity (国家发展改革委令第58号): nobody has to do anything for that.
Only the latest rating in a scheme is the subject's grade. The date a record stops counting
becomes the `valid_until` of what it triggers. A disputed record with a status_on (the day
the objection was filed) was plain active before that day: filing an objection does not
rewrite what the record was before it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from catalog.vocabulary import Vocabulary

from .bundle import Record
from .dates import add_period, parse_period


@lru_cache(maxsize=65536)
def shift(day: str, period: str) -> str:
    """`day` plus an ISO period, as an ISO string (cached: a population repeats its dates)."""
    return add_period(date.fromisoformat(day), period).isoformat()


@lru_cache(maxsize=4096)
def window_start(as_of: str, period: str) -> str:
    """The first day inside a window of `period` ending on `as_of`."""
    return (date.fromisoformat(as_of) - parse_period(period)).isoformat()

__all__ = ["RecordState", "record_state", "record_states", "shift", "window_start", "ENDING_STATUSES"]

ENDING_STATUSES = ("repaired", "revoked", "expired")


@dataclass(slots=True)
class RecordState:
    status: str  # the status on as_of: active, disputed, repaired, revoked, expired, pending, superseded
    live: bool
    valid_from: str | None
    valid_until: str | None  # first day it no longer counts; None: open-ended
    ended_by: str | None = None  # why it stopped or will stop: status change, expiry, publication_max, ...
    current: bool = True  # ratings: the latest in its scheme


def _earliest(*candidates: tuple[str | None, str]) -> tuple[str | None, str | None]:
    best, reason = None, None
    for day, why in candidates:
        if day is not None and (best is None or day < best):
            best, reason = day, why
    return best, reason


def record_state(record: Record, as_of: str, vocab: Vocabulary) -> RecordState:
    start = record.start
    if start is None:
        return RecordState(record.status, record.status in ("active", "disputed"), None, None)
    term_end = record.expires_on
    term_reason = "expires_on"
    if term_end is None and record.kind == "list_entry":
        default_term = vocab.lists[record.list].default_term
        if default_term:
            term_end, term_reason = shift(start, default_term), "default_term"
    if term_end is None and record.kind == "rating":
        term_end, term_reason = shift(start, vocab.schemes[record.scheme].validity), "rating_validity"
    publication_max = vocab.publication_max(record.kind, record.key)
    publication_end = shift(start, publication_max) if publication_max and record.kind != "rating" else None
    status_end = record.status_on if record.status in ENDING_STATUSES else None
    if record.status in ENDING_STATUSES and status_end is None:
        # Ended, with no date given: it counts for nothing at any date.
        return RecordState(record.status, False, start, start, record.status)
    until, reason = _earliest((term_end, term_reason), (publication_end, "publication_max"),
                              (status_end, record.status))
    if start > as_of:
        return RecordState("pending", False, start, until, reason)
    if until is not None and until <= as_of:
        status = record.status if reason == record.status else "expired"
        return RecordState(status, False, start, until, reason)
    disputed = record.status == "disputed" and (record.status_on is None or record.status_on <= as_of)
    return RecordState("disputed" if disputed else "active", True, start, until, reason)


def record_states(records: list[Record], as_of: str, vocab: Vocabulary) -> dict[str, RecordState]:
    """States of all records on `as_of`, with older ratings of a scheme marked superseded."""
    states = {r.id: record_state(r, as_of, vocab) for r in records}
    latest: dict[str, Record] = {}
    for r in records:
        if r.kind != "rating" or not r.start or r.start > as_of or states[r.id].status in ENDING_STATUSES:
            continue
        best = latest.get(r.scheme)
        if best is None or (r.start, r.id) > (best.start, best.id):
            latest[r.scheme] = r
    for r in records:
        if r.kind == "rating":
            newest = latest.get(r.scheme)
            if newest is not None and newest is not r:
                state = states[r.id]
                state.current = False
                if state.live:
                    state.status, state.live = "superseded", False
            elif newest is r:
                # A rating is the grade until a later one is decided.
                later = [o.start for o in records if o.kind == "rating" and o.scheme == r.scheme and o.start and o.start > as_of]
                if later:
                    state = states[r.id]
                    first = min(later)
                    if state.valid_until is None or first < state.valid_until:
                        state.valid_until, state.ended_by = first, "superseded"
    return states
