"""The rulebook language as Python values: measures, rules, conditions and test cases.

These are built by the loader from schema-valid YAML and are immutable afterwards; the
compiler, the reference matcher and the explainer all read the same objects, so "why" and
"why not" can never disagree with what was matched.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Effect", "Derivation", "Measure", "Join", "Condition", "Rule", "TestCase", "Rulebook",
           "SUBJECT"]

SUBJECT = "subject"
LIVE_STATUSES = ("active", "disputed")


@dataclass(frozen=True)
class Effect:
    activity: str
    effect: str

    def to_dict(self) -> dict:
        return {"activity": self.activity, "effect": self.effect}


@dataclass(frozen=True)
class Derivation:
    """A record a measure produces for its target, which other rules can match."""

    record: str
    list: str | None = None
    scheme: str | None = None
    grade: str | None = None

    @property
    def key(self) -> str | None:
        return self.list if self.record == "list_entry" else self.scheme


@dataclass(frozen=True)
class Measure:
    id: str
    kind: str  # punishment | reward
    department: str
    action: str
    basis: tuple[str, ...]
    effects: tuple[Effect, ...]
    lasts: str  # "while_listed" or an ISO period
    derives: Derivation | None
    rulebook: str
    shared: bool = False  # other rulebooks' rules may apply it (lint: foreign_measure otherwise)


@dataclass(frozen=True)
class Join:
    """This condition's `field` equals the `other_field` of the record bound to `alias`."""

    field: str
    alias: str
    other_field: str


@dataclass(frozen=True)
class Condition:
    alias: str
    record: str
    lists: tuple[str, ...] | None = None
    scheme: str | None = None
    grades: tuple[str, ...] | None = None
    severities: tuple[str, ...] | None = None
    categories: tuple[str, ...] | None = None
    types: tuple[str, ...] | None = None
    departments: tuple[str, ...] | None = None
    status: str | tuple[str, ...] = "live"
    within: str | None = None
    joins: tuple[Join, ...] = ()

    @property
    def keys(self) -> tuple[str | None, ...]:
        """The list or scheme codes that route a record to this condition (None: any)."""
        if self.record == "list_entry" and self.lists:
            return self.lists
        if self.record == "rating" and self.scheme:
            if self.grades:  # route only the grades some rule reads: most ratings are B or M
                return tuple(f"{self.scheme}:{g}" for g in self.grades)
            return (self.scheme,)
        if self.record == "penalty" and self.severities:
            return self.severities
        return (None,)

    @property
    def reads_inactive(self) -> bool:
        """True if this condition can match records that are not live on the evaluation date."""
        if self.status == "live":
            return False
        if self.status == "any":
            return True
        return any(s not in LIVE_STATUSES for s in self.status)


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    conditions: tuple[Condition, ...]
    targets: tuple[str, ...]
    apply: tuple[str, ...]
    rulebook: str


@dataclass(frozen=True)
class TestCase:
    name: str
    as_of: str
    bundle: dict
    expect: tuple[dict, ...]
    absent: tuple[str, ...]
    only: bool
    rulebook: str
    index: int


@dataclass
class Rulebook:
    name: str
    title: str
    owner: str
    covers: tuple[int, ...]
    measures: tuple[Measure, ...]
    rules: tuple[Rule, ...]
    tests: tuple[TestCase, ...]
    path: str
    revision: str
    text: str = field(repr=False, default="")
    located: Any = field(repr=False, default=None)
