"""Firings already matched, remembered by what the facts say rather than by who they are.

durable-rules' Python layer costs ~50 µs a firing and its C core ~36 µs a fact
(../shared/docs/durable-rules-notes.md): a third of materialising a subject, and most of a
large import's rule time. Yet a city's subjects repeat themselves: records come from a small
vocabulary (kinds, lists, grades, severities, statuses, window flags), and the facts that
reach a ruleset in one evaluation are, for most subjects, a sequence some earlier subject
has already sent.

What durable-rules answers to a fact depends only on the values of that fact and of the facts
asserted before it into the same ruleset in the same session: the conditions compare field
values (engine/compiler.py), and nothing of a session outlives it (engine/adapter.py retracts
every fact). So the firings of a fact can be kept under the sequence of values sent to its
ruleset so far, ending with its own (only the fields the ruleset's conditions name), with
each bound fact written as its position in that sequence; another session that sends the
same values gets the same firings, the positions read back as its own facts' ids, without a
round trip into durable-rules. The match itself stays durable-rules' work: every entry here
is something it answered, and a sequence it has not seen goes to it (engine/adapter.py
MatchSession replays the facts it skipped first).

A ruleset whose conditions read a fact's identity (`id`, `sid`) is never remembered: its
answer would depend on who the facts are. A value that cannot be hashed switches remembering
off for the rest of that ruleset's session. The memo holds at most `limit` sequences and
starts afresh when full: a catalog's value combinations are few, and forgetting costs only a
round trip.
"""
from __future__ import annotations

from typing import Any, Iterable

__all__ = ["MatchMemo", "IDENTITY_FIELDS", "content_of", "fields_read"]

IDENTITY_FIELDS = frozenset({"id", "sid"})

# (rule id, ((durable alias, position of the bound fact in the sequence), ...)) per firing
Remembered = tuple[tuple[str, tuple[tuple[str, int], ...]], ...]


def content_of(fact: dict, fields: frozenset[str]) -> tuple:
    """What `fact` says to a ruleset whose rules read `fields`: those of its (field, value)
    pairs, in order. A field no condition of the ruleset names cannot change what it matches
    (a document number, say, unless a rule joins on it), and leaving it out is what lets one
    subject's facts stand for another's. A value that cannot be hashed makes `recall` raise
    TypeError."""
    return tuple(item for item in fact.items() if item[0] in fields)


def _fields(expression: Any) -> Iterable[str]:
    """Every field name and join target a durable-rules expression mentions."""
    if isinstance(expression, dict):
        for key, value in expression.items():
            if not key.startswith("$"):
                yield key
            yield from _fields(value)
            if isinstance(value, str):  # a join: {field: {alias: other_field}}
                yield value
    elif isinstance(expression, list):
        for item in expression:
            yield from _fields(item)


def fields_read(rules: dict[str, dict]) -> frozenset[str] | None:
    """The fact fields the rules of a ruleset spec (rule id -> {"all": [...]}) may read (a
    superset: values of plain terms are counted too); None if they include `id` or `sid`,
    whose matches depend on who the facts are: such a ruleset is never remembered."""
    names = frozenset(name for spec in rules.values() for name in _fields(spec.get("all", [])))
    return None if names & IDENTITY_FIELDS else names


class MatchMemo:
    """Remembered firings by (ruleset, sequence of fact contents); see the module docstring."""

    def __init__(self, limit: int = 100_000):
        self.limit = limit
        self.hits = 0
        self.misses = 0
        self._entries: dict[tuple, Remembered] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def recall(self, key: tuple, ids: list[str]) -> list[tuple[str, dict[str, str]]] | None:
        """The firings remembered under `key`, bound to `ids` (the sequence's facts' ids, by
        position); None if `key` was never answered."""
        remembered = self._entries.get(key)
        if remembered is None:
            self.misses += 1
            return None
        self.hits += 1
        return [(rule_id, {alias: ids[at] for alias, at in bound}) for rule_id, bound in remembered]

    def keep(self, key: tuple, ids: list[str], fired: list[tuple[str, dict[str, str]]]) -> None:
        """Remember what durable-rules answered for `key`: `fired` as (rule id, {alias: fact id}),
        `ids` the sequence's facts' ids by position. Not kept if an id is not one of them or
        two facts share one (a position would be ambiguous)."""
        position = {fact_id: at for at, fact_id in enumerate(ids)}
        if len(position) != len(ids):
            return
        try:
            remembered = tuple((rule_id, tuple((alias, position[fact_id]) for alias, fact_id in bound.items()))
                               for rule_id, bound in fired)
        except KeyError:
            return
        if len(self._entries) >= self.limit:
            self._entries.clear()
        self._entries[key] = remembered

    def clear(self) -> None:
        self._entries.clear()
