"""The catalog over time: which rulebook revisions are in force on each date.

A publication takes effect from its effective_from; answers for earlier dates keep using the
revisions that were in force then. Each era (a date range with one set of revisions) has its
compiled catalog and evaluator; durable-rules cannot replace a ruleset in place, so a new
revision is a new ruleset name registered beside the old ones (engine/adapter.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from engine.compiler import CompiledCatalog, compile_texts
from engine.evaluator import Evaluator
from engine.reads import rulebooks_reached

__all__ = ["Era", "Span", "CatalogHistory", "BEGINNING"]

BEGINNING = "0001-01-01"
_DAYS_REMEMBERED = 4096


@dataclass
class Era:
    start: str  # first day in force
    end: str | None  # first day no longer in force
    texts: dict[str, str]
    catalog: CompiledCatalog
    evaluator: Evaluator

    @property
    def revisions(self) -> dict[str, str]:
        return self.catalog.revisions


# [start, end) and the era whose catalog judges a subject over it (store/rows.py)
Span = tuple[str, str | None, Era]


class CatalogHistory:
    """Eras in date order; `at(day)` is the one in force on `day`."""

    def __init__(self, eras: list[Era]):
        if not eras:
            raise ValueError("a catalog history needs at least one era")
        self.eras = sorted(eras, key=lambda e: e.start)
        self._by_day: dict[str, Era] = {}  # at()'s answers: every check asks for its as_of
        self._spans: dict[frozenset, list[Span]] = {}  # spans()'s answers, by the records' keys

    def spans(self, keys: frozenset) -> list[Span]:
        """The eras, as a subject whose records have these (kind, key, grade) needs them: adjacent
        eras in which every rulebook its records reach (engine/reads.py) has the same revision are
        one span, judged by the first of them. The other rulebooks give such a subject nothing, so
        a publication of a rulebook that does not read its records adds no date at which it is
        judged afresh: materialising it costs the same after any number of such publications."""
        found = self._spans.get(keys)
        if found is None:
            found = []
            last = None
            for era in self.eras:
                reached = rulebooks_reached(era.catalog, keys)
                signature = tuple(sorted((name, era.revisions.get(name)) for name in reached))
                if found and signature == last:
                    start, _, first = found[-1]
                    found[-1] = (start, era.end, first)
                else:
                    found.append((era.start, era.end, era))
                last = signature
            if len(self._spans) >= _DAYS_REMEMBERED:  # a population has few combinations; bound them all the same
                self._spans.clear()
            self._spans[keys] = found
        return found

    @classmethod
    def build(cls, publications: list, vocab, cache: dict | None = None) -> "CatalogHistory":
        """Eras from publications (objects with name, text, effective_from), oldest first.

        `cache` maps a frozenset of (name, revision) to an already compiled era, so
        rebuilding the history after a publish compiles only the new era.
        """
        from engine.loader import revision_of

        cache = cache if cache is not None else {}
        boundaries = sorted({p.effective_from or BEGINNING for p in publications})
        eras = []
        for i, start in enumerate(boundaries):
            texts: dict[str, str] = {}
            for p in publications:
                if (p.effective_from or BEGINNING) <= start:
                    texts[p.name] = p.text
            key = frozenset((name, revision_of(text)) for name, text in texts.items())
            if key not in cache:
                catalog = compile_texts(texts, vocab)
                cache[key] = (catalog, Evaluator(catalog))
            catalog, evaluator = cache[key]
            end = boundaries[i + 1] if i + 1 < len(boundaries) else None
            eras.append(Era(start if i else BEGINNING, end, texts, catalog, evaluator))
        return cls(eras)

    def at(self, day: date | str) -> Era:
        day = day.isoformat() if isinstance(day, date) else day
        chosen = self._by_day.get(day)
        if chosen is None:
            chosen = self.eras[0]
            for era in self.eras:
                if era.start <= day:
                    chosen = era
            if len(self._by_day) >= _DAYS_REMEMBERED:  # any number of distinct days may be asked
                self._by_day.clear()
            self._by_day[day] = chosen
        return chosen

    @property
    def latest(self) -> Era:
        return self.eras[-1]
