"""Bundles from spreadsheets: CSV and XLSX files with one record per row.

Columns (header row, any order; unknown columns are an error so a typo is not silently
dropped): subject_code, subject_kind, subject_name, record_id, kind, list, scheme, grade,
severity, category, type, other, status, listed_on, decided_on, expires_on, status_on,
department, document. Rows of one subject are merged into one bundle. Every row is
validated on its own: a bad row is reported with its file and row number and does not
spoil the other rows of the same subject.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Iterator

from catalog.vocabulary import Vocabulary, suggest

from .bundle import Bundle, parse_bundle
from .errors import BundleError

__all__ = ["COLUMNS", "SheetRowError", "read_sheet"]

SUBJECT_COLUMNS = ("subject_code", "subject_kind", "subject_name")
RECORD_COLUMNS = ("record_id", "kind", "list", "scheme", "grade", "severity", "category", "type", "other", "status",
                  "listed_on", "decided_on", "expires_on", "status_on", "department", "document")
COLUMNS = SUBJECT_COLUMNS + RECORD_COLUMNS


@dataclass
class SheetRowError:
    file: str
    row: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row}: {self.code}: {self.message}"


def _rows(path: Path) -> Iterator[tuple[int, dict]]:
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True, data_only=True)
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(rows, [])]
        yield 1, {"__header__": header}
        for number, values in enumerate(rows, start=2):
            if values is None or all(v is None or str(v).strip() == "" for v in values):
                continue
            yield number, dict(zip(header, values))
        workbook.close()
        return
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        yield 1, {"__header__": list(reader.fieldnames or [])}
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            yield reader.line_num, row


def _cell(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def read_sheet(path: str | Path, vocab: Vocabulary) -> Iterator[Bundle | SheetRowError]:
    """Bundles (one per subject) and row errors from a CSV or XLSX file."""
    path = Path(path)
    name = str(path)
    subjects: dict[str, dict] = {}
    order: list[str] = []
    for number, row in _rows(path):
        if "__header__" in row:
            header = row["__header__"]
            unknown = [h for h in header if h and h not in COLUMNS]
            missing = [c for c in ("subject_code",) if c not in header]
            if unknown or missing:
                for h in unknown:
                    hint = suggest(h, COLUMNS)
                    yield SheetRowError(name, 1, "unknown_column", f"unknown column {h!r}" + (f" (did you mean {hint!r}?)" if hint else ""))
                for h in missing:
                    yield SheetRowError(name, 1, "missing_column", f"the header needs a {h!r} column")
                return
            continue
        cells = {k: _cell(v) for k, v in row.items() if k}
        code = cells.get("subject_code")
        subject = {"code": code, "kind": cells.get("subject_kind"), "name": cells.get("subject_name") or ""}
        record = {k: cells[k] for k in RECORD_COLUMNS if cells.get(k) is not None}
        if "record_id" in record:
            record["id"] = record.pop("record_id")
        try:
            parse_bundle({"subject": subject, "records": [record] if record else []}, vocab=vocab,
                         source=f"row {number}")
        except BundleError as exc:
            yield SheetRowError(name, number, exc.code, exc.message)
            continue
        entry = subjects.get(code)
        if entry is None:
            entry = subjects[code] = {"subject": subject, "records": {}}
            order.append(code)
        elif subject["name"] and not entry["subject"]["name"]:
            entry["subject"]["name"] = subject["name"]
        if record:
            entry["records"][record["id"]] = record  # the last row for a record id wins
    for code in order:
        entry = subjects[code]
        yield parse_bundle({"subject": entry["subject"], "records": list(entry["records"].values())}, vocab=vocab,
                           source=f"{name} subject {code}")
