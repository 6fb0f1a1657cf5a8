"""Keep materialised obligations current: re-run the timeline of the subjects whose records
changed (and of the subjects linked to them), or of everyone when the rulebooks change."""
from __future__ import annotations

from typing import Callable, Iterable

from sqlalchemy import Connection

from engine.bundle import Bundle
from engine.timeline import ObligationInterval

from .history import CatalogHistory
from .pool import InlinePool, Pool
from .repository import Repository
from .rows import Materialised, intervals, materialise

__all__ = ["Materialiser"]


class Materialiser:
    BATCH = 2000  # subjects per read/write batch

    def __init__(self, repository: Repository, history: CatalogHistory):
        self.repository = repository
        self.history = history

    def intervals(self, bundle: Bundle) -> list[ObligationInterval]:
        """The bundle's obligations over all time, each era judged by the catalog in force then."""
        return intervals(self.history, bundle)

    def refresh(self, codes: Iterable[str], *, with_linked: bool = True, cause: dict | None = None) -> int:
        """Re-materialise `codes` (and subjects linked to them). Returns how many subjects were done.

        `cause` is stored with the change-feed entries this produces (e.g. an objection decided)."""
        codes = set(codes)
        if with_linked:
            codes |= self.repository.linked_codes(codes)
        done = 0
        ordered = sorted(codes)
        for start in range(0, len(ordered), self.BATCH):
            done += self._refresh_batch(ordered[start:start + self.BATCH], cause=cause)
        return done

    def affected(self, touched: Iterable[str]) -> list[str]:
        """`touched` and the subjects linked to them, in the order refresh does them."""
        touched = set(touched)
        return sorted(touched | self.repository.linked_codes(touched))

    def store(self, codes: list[str], computed: list[Materialised], cause: dict | None = None) -> None:
        """Write rows computed elsewhere (store/pool.py) for `codes`, in refresh's batches."""
        by_code = {m.code: m for m in computed}
        for start in range(0, len(codes), self.BATCH):
            chunk = codes[start:start + self.BATCH]
            self.repository.replace_obligations(chunk, [by_code[c] for c in chunk if c in by_code], None, cause)

    def _refresh_batch(self, codes: list[str], generation: int | None = None, cause: dict | None = None) -> int:
        bundles = self.repository.load_bundles(codes)
        computed = [materialise(self.history, bundle) for bundle in bundles.values()]
        self.repository.replace_obligations(codes, computed, generation, cause)
        return len(bundles)

    def rebuild(self, progress: Callable[[int], None] | None = None,
                with_switch: Callable[[Connection, int], None] | None = None,
                pool: "Pool | None" = None, codes: list[str] | None = None) -> tuple[int, int]:
        """Re-materialise every subject (or only `codes`: the subjects a change can affect,
        store/affected.py) into a new generation, then switch to it at once; (subjects
        re-materialised, the generation now answering checks).

        Checks running meanwhile keep reading the old generation: they never see a catalog
        half applied. With `codes`, the other subjects' rows are neither read nor written: the
        affected subjects' new rows are written beside their old ones, which are marked retired
        from the new generation, and both become true at the switch. The caller holds the
        cluster lock (store/cluster_lock.py), so no record push, import or other rebuild, in any
        process, writes obligations meanwhile; the generation number is handed out by the
        database all the same, and the switch refuses to replace any generation but the one the
        rebuild started from. What a rebuild that died left behind is undone first
        (Repository.discard_unswitched). `with_switch` writes, in the switch's transaction (with
        the new generation's number), what must become visible with it (the publications, the
        rebuild's log entry).

        `pool` runs the rules (store/pool.py, store/dask_pool.py; default: in this process):
        this process reads batch k+1 and writes batch k-1 while the pool evaluates batch k, so
        a server that publishes spends its own CPU on the database work only.
        """
        pool = pool or InlinePool(self.history)
        self.repository.discard_unswitched()
        current, new = self.repository.allocate_generation()
        replaced_through = self.repository.last_obligation_id()  # every row of the old generations
        cause = {"kind": "rebuild", "generation": new}
        full = codes is None
        batches = (self.repository.codes_with_records(self.BATCH) if full
                   else (codes[i:i + self.BATCH] for i in range(0, len(codes), self.BATCH)))
        total, pending = 0, None
        for batch in batches:
            rows = self.repository.load_rows(batch)
            computing = (batch, pool.submit(list(rows.values())))
            if pending is not None:
                total += self._write(*pending, new, cause, progress, full)
            pending = computing
        if pending is not None:
            total += self._write(*pending, new, cause, progress, full)
        switched = (lambda connection: with_switch(connection, new)) if with_switch else None
        self.repository.switch_generation(new, expected=current, with_switch=switched, through_id=replaced_through,
                                          full=full)
        return total, new

    def _write(self, codes: list[str], future, generation: int, cause: dict,
               progress: Callable[[int], None] | None, full: bool) -> int:
        computed = future.result()
        self.repository.replace_obligations(codes, computed, generation, cause, incremental=not full)
        if progress:
            progress(len(codes))
        return len(computed)
