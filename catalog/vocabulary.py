"""The shared vocabulary every rulebook refers to: departments (with their successors after
the 2018-2019 reorganisations), lists, rating schemes, penalty severities, record kinds,
relation types, activities, effects and legal bases.

Other systems send these codes, so they are data (catalog/data/*.yaml), loaded once and
checked for internal consistency; rulebooks are checked against them by the linter.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import yaml

from engine.dates import parse_date, parse_period
from engine.errors import CatalogError

__all__ = [
    "DATA_DIR",
    "Department",
    "ListDef",
    "Scheme",
    "Basis",
    "Vocabulary",
    "load_vocabulary",
    "suggest",
]

DATA_DIR = Path(__file__).resolve().parent / "data"

# 国办发〔2020〕49号: these may not be ordered to punish.
NON_PUNISHING_TYPES = frozenset({"financial_institution", "credit_agency", "association", "media"})
# A punishment needs a basis in law, regulation or central policy, not a local document alone.
BINDING_LEVELS = frozenset({"law", "administrative_regulation", "judicial_interpretation",
                            "departmental_rule", "central_policy"})


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    full_name: str
    type: str
    successor: str | None = None
    succeeded_on: date | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListDef:
    code: str
    name: str
    polarity: str  # black | red | watch
    listed_by: str
    memorandum: str | None
    publication_min: str
    publication_max: str
    default_term: str | None = None


@dataclass(frozen=True)
class Scheme:
    code: str
    name: str
    rated_by: str
    grades: tuple[str, ...]
    red: tuple[str, ...]
    black: tuple[str, ...]
    validity: str


@dataclass(frozen=True)
class Basis:
    id: str
    document: str
    title: str
    level: str
    article: str | None = None

    def to_dict(self) -> dict:
        data = {"id": self.id, "document": self.document, "title": self.title, "level": self.level}
        if self.article:
            data["article"] = self.article
        return data

    def __str__(self) -> str:
        return f"{self.document} {self.title}" + (f" {self.article}" if self.article else "")


def suggest(name: object, candidates) -> str | None:
    """The closest known name to an unknown one, for 'did you mean' messages."""
    if not isinstance(name, str):
        return None
    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


class Vocabulary:
    """Read-only lookups over the catalog data, with successor resolution."""

    def __init__(self, data: dict):
        try:
            self.departments = {
                code: Department(code=code, name=d["name"], full_name=d.get("full_name", d["name"]),
                                 type=d.get("type", "government"), successor=d.get("successor"),
                                 succeeded_on=parse_date(d["succeeded_on"]) if d.get("succeeded_on") else None,
                                 aliases=tuple(d.get("aliases", ())))
                for code, d in data["departments"].items()}
            self.lists = {
                code: ListDef(code=code, name=d["name"], polarity=d["polarity"], listed_by=d["listed_by"],
                              memorandum=d.get("memorandum"), publication_min=d["publication"]["min"],
                              publication_max=d["publication"]["max"], default_term=d.get("default_term"))
                for code, d in data["lists"].items()}
            self.schemes = {
                code: Scheme(code=code, name=d["name"], rated_by=d["rated_by"], grades=tuple(d["grades"]),
                             red=tuple(d.get("red", ())), black=tuple(d.get("black", ())),
                             validity=d["validity"])
                for code, d in data["schemes"].items()}
            self.severities = {code: d for code, d in data["severities"].items()}
            self.record_kinds = dict(data["record_kinds"])
            self.relation_types = dict(data["relation_types"])
            self.statuses = dict(data["statuses"])
            self.activities = dict(data["activities"])
            self.effects = dict(data["effects"])
            self.bases = {
                bid: Basis(id=bid, document=str(b["document"]), title=b["title"], level=b["level"],
                           article=b.get("article"))
                for bid, b in data["bases"].items()}
            self.seed_domains = {int(k): v for k, v in data["seed_domains"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise CatalogError(f"catalog data is malformed: {exc!r}") from exc
        self._check()

    def _check(self) -> None:
        problems = []
        for dept in self.departments.values():
            if dept.successor and dept.successor not in self.departments:
                problems.append(f"department {dept.code}: successor {dept.successor!r} is not a department")
            if dept.successor and not dept.succeeded_on:
                problems.append(f"department {dept.code}: successor without succeeded_on")
        for lst in self.lists.values():
            if lst.listed_by not in self.departments:
                problems.append(f"list {lst.code}: listed_by {lst.listed_by!r} is not a department")
            if lst.memorandum and lst.memorandum not in self.bases:
                problems.append(f"list {lst.code}: memorandum {lst.memorandum!r} is not a legal basis")
            for period in filter(None, (lst.publication_min, lst.publication_max, lst.default_term)):
                try:
                    parse_period(period)
                except ValueError as exc:
                    problems.append(f"list {lst.code}: {exc}")
        for scheme in self.schemes.values():
            if scheme.rated_by not in self.departments:
                problems.append(f"scheme {scheme.code}: rated_by {scheme.rated_by!r} is not a department")
        # A successor chain must end: a cycle would send measures round for ever.
        for code in self.departments:
            seen = {code}
            dept = self.departments[code]
            while dept.successor and dept.successor in self.departments:
                if dept.successor in seen:
                    problems.append(f"department {code}: successor chain loops")
                    break
                seen.add(dept.successor)
                dept = self.departments[dept.successor]
        if problems:
            raise CatalogError("; ".join(problems))

    # -- questions the engine asks -------------------------------------------------------
    def department_chain(self, code: str, as_of: date) -> list[Department]:
        """The department a measure names, then each successor in force on `as_of`.

        The last element is the department that carries the duty on that date.
        """
        chain = [self.departments[code]]
        while chain[-1].successor and chain[-1].succeeded_on and chain[-1].succeeded_on <= as_of:
            chain.append(self.departments[chain[-1].successor])
        return chain

    def may_punish(self, department_code: str) -> bool:
        dept = self.departments.get(department_code)
        return dept is None or dept.type not in NON_PUNISHING_TYPES

    def publication_max(self, kind: str, key: str | None) -> str | None:
        """How long a record of this kind and list/severity may count at most."""
        if kind == "list_entry" and key in self.lists:
            return self.lists[key].publication_max
        if kind == "penalty" and key in self.severities:
            return self.severities[key]["publication"]["max"]
        if kind == "rating" and key in self.schemes:
            return self.schemes[key].validity
        return None

    def publication_min(self, kind: str, key: str | None) -> str | None:
        if kind == "list_entry" and key in self.lists:
            return self.lists[key].publication_min
        if kind == "penalty" and key in self.severities:
            return self.severities[key]["publication"]["min"]
        return None


def _read_data(directory: Path) -> dict:
    data: dict = {}
    for path in sorted(directory.glob("*.yaml")):
        with path.open(encoding="utf-8") as handle:
            content = yaml.safe_load(handle) or {}
        for key, value in content.items():
            if key in data:
                raise CatalogError(f"{path.name}: section {key!r} is defined twice in catalog data")
            data[key] = value
    return data


@lru_cache(maxsize=8)
def load_vocabulary(directory: str | None = None) -> Vocabulary:
    """The vocabulary from catalog/data (or another directory with the same files)."""
    return Vocabulary(_read_data(Path(directory) if directory else DATA_DIR))
