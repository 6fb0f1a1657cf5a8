"""`jointcredit import`: bundles from JSON, JSONL, CSV and XLSX files into the store.

Idempotent by record id (a record imported twice is stored once, the later version wins).
Every bundle or row is validated; bad ones are reported with file, line or row and reason
and do not stop or spoil the rest. Obligations of the imported subjects (and of subjects
linked to them) are brought up to date batch by batch, the rules running in worker processes
(store/pool.py) while this process parses and writes; see _Pipeline for what an interrupted
import leaves behind.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from engine.bundle import Bundle, read_bundles
from engine.errors import BundleError
from engine.sheets import SheetRowError, read_sheet

from .db import deferred_indexes, import_pragmas
from .pool import InlinePool, RulePool, cpus
from .service import Service

__all__ = ["ImportReport", "import_files", "iter_file"]

BATCH = 5000


@dataclass
class ImportReport:
    files: int = 0
    subjects: int = 0
    records: int = 0
    refreshed: int = 0
    errors: list[str] = field(default_factory=list)


def iter_file(path: Path, service: Service) -> Iterator[Bundle | str]:
    """Bundles from one file, and error lines (file:line: code: message) for the bad ones."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".xlsx"):
        for item in read_sheet(path, service.vocab):
            yield str(item) if isinstance(item, SheetRowError) else item
        return
    if suffix not in (".json", ".jsonl", ".ndjson", ".yaml", ".yml"):
        yield f"{path}: unsupported_file: use .json, .jsonl, .yaml, .csv or .xlsx"
        return
    for item in read_bundles(path, vocab=service.vocab):
        if isinstance(item, BundleError):
            yield f"{path}: {item.code}: {item.message}"
        else:
            yield item


def _batches(paths: Iterable[str | Path], service: Service, report: ImportReport,
             batch_size: int) -> Iterator[list[Bundle]]:
    batch: list[Bundle] = []
    for raw in paths:
        path = Path(raw)
        report.files += 1
        if not path.exists():
            report.errors.append(f"{path}: no_such_file: the file does not exist")
            continue
        for item in iter_file(path, service):
            if isinstance(item, str):
                report.errors.append(item)
                continue
            batch.append(item)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:  # a file's last bundles are stored before the next file is read, as before
            yield batch
            batch = []


class _Pipeline:
    """Batches through save -> read back -> rules -> write, the rules of batch k running in the
    pool while the parent writes batch k-1 and reads batch k+1.

    Batch k's records are saved before batch k-1's obligations are written, so an import
    stopped half way can leave the records of its last two batches without their obligations;
    importing the same files again completes them (saving is idempotent). The first batch runs
    in this process, and a small import (one batch) never starts a pool. import_files holds the
    service's cluster lock throughout, so nothing else re-materialises in between, in any process.
    """

    def __init__(self, service: Service, report: ImportReport, progress: Callable[[int], None] | None,
                 workers: int):
        self.service, self.report, self.progress, self.workers = service, report, progress, workers
        self.inline = InlinePool(service.history)
        self.pool: RulePool | None = None
        self.pending: tuple | None = None
        self.started = False  # a batch has been pushed

    def push(self, batch: list[Bundle]) -> None:
        if self.pool is None and self.started and self.workers > 0:
            # a second batch: the import is worth the workers' start-up (~1 s) from here on
            self.pool = RulePool(self.service.history, self.workers)
        self.started = True
        pool = self.pool or self.inline
        saved = self.service.repository.save_batch(batch)
        codes = self.service.materialiser.affected(saved.subjects)
        rows = list(self.service.repository.load_rows(codes, saved).values())
        future = pool.submit(rows)
        self.finish()
        self.pending = (codes, future, len(rows), len(batch), sum(len(b.records) for b in batch))
        if pool is self.inline:
            self.finish()

    def finish(self) -> None:
        if self.pending is None:
            return
        codes, future, refreshed, subjects, records = self.pending
        self.pending = None
        self.service.materialiser.store(codes, future.result())
        self.report.refreshed += refreshed
        self.report.subjects += subjects
        self.report.records += records
        if self.progress:
            self.progress(subjects)

    def close(self, *, failed: bool) -> None:
        if self.pool is not None:
            self.pool.close(cancel=failed)


def import_files(service: Service, paths: Iterable[str | Path], progress: Callable[[int], None] | None = None,
                 batch_size: int = BATCH, workers: int | None = None,
                 stage: Callable[[str], None] | None = None) -> ImportReport:
    """Import `paths`; `workers`: processes that run the rules (None: one per CPU; 0: none, all
    in this process); `stage`: told of a step that is not per subject (building the indexes
    after a first import, the planner's statistics)."""
    report = ImportReport()
    failed = True
    announce = (lambda: stage("building the indexes")) if stage else None
    with service.writing("importing"):  # the pipeline materialises under the catalog in force now
        pipeline = _Pipeline(service, report, progress, cpus() if workers is None else workers)
        initial = not service.repository.has_obligations()
        # import_pragmas ends before the deferred indexes are built: with its 1 GB page cache SQLite
        # sorts an index's keys in one huge run (20.7 s for a million subjects' obligations, 8.6 s
        # with the default cache, on which its helper threads also work; store/db.py SORT_THREADS)
        with deferred_indexes(service.engine, when=initial, on_build=announce), import_pragmas(service.engine):
            try:
                for batch in _batches(paths, service, report, batch_size):
                    pipeline.push(batch)
                pipeline.finish()
                failed = False
            finally:
                pipeline.close(failed=failed)
    if report.subjects >= batch_size:  # a bulk load: the planner's picture of the tables is stale
        on_server = service.engine.dialect.name == "postgresql"
        if stage and on_server:
            stage("updating the planner's statistics")
        service.repository.refresh_statistics()
        if stage and on_server:  # and the data it wrote is still only in memory (repository.write_out)
            stage("writing the imported data out to disk")
        service.repository.write_out()
    return report
