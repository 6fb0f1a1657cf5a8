"""Keep materialised obligations current: re-run the timeline of the subjects whose records
changed (and of the subjects linked to them), or of everyone when the rulebooks change."""
from __future__ import annotations

from typing import Callable, Iterable

from engine.bundle import Bundle
from engine.evaluator import Evaluator
from engine.timeline import obligation_timeline

from .repository import Repository

__all__ = ["Materialiser"]


def _details(bundle: Bundle) -> dict[tuple[str, str], dict]:
    out = {}
    for r in bundle.records:
        item = {"id": r.id, "kind": r.kind}
        for name in ("list", "scheme", "grade", "severity", "document", "department", "status"):
            value = getattr(r, name)
            if value is not None:
                item[name] = value
        if r.start:
            item["listed_on" if r.kind in ("list_entry", "relation") else "decided_on"] = r.start
        out[(bundle.subject.code, r.id)] = item
    return out


class Materialiser:
    def __init__(self, repository: Repository, evaluator: Evaluator):
        self.repository = repository
        self.evaluator = evaluator

    def refresh(self, codes: Iterable[str], *, with_linked: bool = True) -> int:
        """Re-materialise `codes` (and subjects linked to them). Returns how many subjects were done."""
        codes = set(codes)
        if with_linked:
            codes |= self.repository.linked_codes(codes)
        done = 0
        ordered = sorted(codes)
        for start in range(0, len(ordered), 2000):
            done += self._refresh_batch(ordered[start:start + 2000])
        return done

    def _refresh_batch(self, codes: list[str]) -> int:
        bundles = self.repository.load_bundles(codes)
        intervals, details = [], {}
        for bundle in bundles.values():
            found = obligation_timeline(self.evaluator, bundle)
            if found:
                intervals.extend(found)
                details.update(_details(bundle))
        self.repository.replace_obligations(codes, intervals, self.evaluator.catalog.revisions, details)
        return len(bundles)

    def rebuild(self, progress: Callable[[int], None] | None = None) -> int:
        """Re-materialise every subject (after a rulebook change)."""
        total = 0
        for batch in self.repository.codes_with_records():
            total += self._refresh_batch(batch)
            if progress:
                progress(len(batch))
        return total
