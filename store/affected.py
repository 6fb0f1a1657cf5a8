"""Which subjects a change of the catalog can affect, so that a publish re-materialises those
and leaves every other subject's obligations as they are.

A rulebook whose revision in force differs on some date between the old and the new catalog
history has changed (a publish, a rollback, a new rulebook). Its rules, and the rules applying
its measures, can only fire on records matching what they read (engine/reads.py), in either
revision; the subjects holding such records are found through the records' index
(ix_records_route), and the subjects linked to them are added, as a record push does (their
obligations are written with the linked subject's). Everyone else gets exactly the rows they
have, which a property test checks against re-materialising everyone
(tests/test_incremental_publish.py).
"""
from __future__ import annotations

from typing import Iterable

from engine.compiler import CompiledCatalog

from .history import CatalogHistory
from .repository import Repository

from engine.reads import Pattern, patterns_read, touching

__all__ = ["changed_rulebooks", "affected_patterns", "affected_subjects", "subjects_reading"]


def _boundaries(*histories: CatalogHistory) -> list[str]:
    return sorted({era.start for history in histories for era in history.eras})


def changed_rulebooks(old: CatalogHistory, new: CatalogHistory) -> dict[str, str]:
    """Each rulebook whose revision in force differs on some date, with the first such date."""
    changed: dict[str, str] = {}
    for day in _boundaries(old, new):
        before, after = old.at(day).revisions, new.at(day).revisions
        for name in set(before) | set(after):
            if before.get(name) != after.get(name) and name not in changed:
                changed[name] = day
    return changed


def affected_patterns(old: CatalogHistory, new: CatalogHistory) -> set[Pattern]:
    """What the records of a subject the change can affect match: what the changed rulebooks, and
    the rulebooks applying their measures, read in any era of either history."""
    catalogs = {id(era.catalog): era.catalog for history in (old, new) for era in history.eras}
    return _read_by(catalogs.values(), set(changed_rulebooks(old, new)))


def _read_by(catalogs: Iterable[CompiledCatalog], changed: set[str]) -> set[Pattern]:
    patterns: set[Pattern] = set()
    if changed:
        for catalog in catalogs:
            patterns |= patterns_read(catalog, touching(catalog, changed))
    return patterns


def subjects_reading(repository: Repository, catalogs: Iterable[CompiledCatalog], changed: set[str]) -> list[str]:
    """The codes of the subjects the rulebooks `changed` (as compiled in any of `catalogs`) can
    give obligations to, in code order: holders of records their rules read, and the subjects
    linked to them. A dry run evaluates these, old catalog against new."""
    holders = repository.subjects_holding(_read_by(catalogs, changed))
    return sorted(holders | repository.linked_codes(holders))


def affected_subjects(repository: Repository, old: CatalogHistory, new: CatalogHistory) -> list[str]:
    """The codes of the subjects whose obligations the change from `old` to `new` can alter, in
    code order: holders of records the changed rules read, and the subjects linked to them."""
    holders = repository.subjects_holding(affected_patterns(old, new))
    return sorted(holders | repository.linked_codes(holders))
