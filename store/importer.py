"""`jointcredit import`: bundles from JSON, JSONL, CSV and XLSX files into the store.

Idempotent by record id (a record imported twice is stored once, the later version wins).
Every bundle or row is validated; bad ones are reported with file, line or row and reason
and do not stop or spoil the rest. Obligations of the imported subjects (and of subjects
linked to them) are brought up to date batch by batch, so an interrupted import leaves
consistent data behind.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from engine.bundle import Bundle, read_bundles
from engine.errors import BundleError
from engine.sheets import SheetRowError, read_sheet

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


def import_files(service: Service, paths: Iterable[str | Path], progress: Callable[[int], None] | None = None,
                 batch_size: int = BATCH) -> ImportReport:
    report = ImportReport()
    batch: list[Bundle] = []

    def flush() -> None:
        if not batch:
            return
        report.refreshed += service.save(list(batch))["refreshed"]
        report.subjects += len(batch)
        report.records += sum(len(b.records) for b in batch)
        if progress:
            progress(len(batch))
        batch.clear()

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
                flush()
        flush()
    return report
