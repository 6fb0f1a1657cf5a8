"""Bundles from spreadsheets: CSV and XLSX files with one record per row.

Columns (header row, any order; unknown columns are an error so a typo is not silently
dropped): subject_code, subject_kind, subject_name, record_id, kind, list, scheme, grade,
severity, category, type, other, status, listed_on, decided_on, expires_on, status_on,
department, document. Rows of one subject are merged into one bundle. Every row is
validated on its own: a bad row is reported with its file and row number and does not
spoil the other rows of the same subject. Every row is imported or reported: a value in a
column without a header is an error, not dropped. A file that cannot be read, or is past a
bound (engine/sheetfiles.py), is one error and none of its rows is imported.
"""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Iterator

from catalog.vocabulary import Vocabulary, suggest

from .bundle import Bundle, parse_bundle
from .errors import BundleError, SourceError
from .sheetfiles import MAX_COLUMNS, csv_rows, xlsx_rows

__all__ = ["COLUMNS", "SheetRowError", "read_sheet"]

SUBJECT_COLUMNS = ("subject_code", "subject_kind", "subject_name")
RECORD_COLUMNS = ("record_id", "kind", "list", "scheme", "grade", "severity", "category", "type", "other", "status",
                  "listed_on", "decided_on", "expires_on", "status_on", "department", "document")
COLUMNS = SUBJECT_COLUMNS + RECORD_COLUMNS

SheetRowError = SourceError  # the name callers know: `file:row: code: message`


def _cell(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def _header_problems(name: str, header: list[str]) -> list[SourceError]:
    if len(header) > MAX_COLUMNS:  # one error, not one per column of a million-column header
        return [SourceError(name, 1, "too_many_columns", f"the header has {len(header):,} columns; "
                                                         f"at most {MAX_COLUMNS} are read")]
    problems = []
    for h in dict.fromkeys(h for h in header if h and h not in COLUMNS):
        hint = suggest(h, COLUMNS)
        problems.append(SourceError(name, 1, "unknown_column",
                                    f"unknown column {h!r}" + (f" (did you mean {hint!r}?)" if hint else "")))
    for h in dict.fromkeys(h for h in header if h and header.count(h) > 1):
        problems.append(SourceError(name, 1, "duplicate_column", f"column {h!r} appears more than once"))
    if "subject_code" not in header:
        problems.append(SourceError(name, 1, "missing_column", "the header needs a 'subject_code' column"))
    return problems


def _row_cells(name: str, number: int, header: list[str], values: list) -> dict | SourceError:
    """The row's cells by column; a value with no column to go to is the row's error."""
    cells = [_cell(v) for v in values]
    stray = [i + 1 for i, v in enumerate(cells) if v is not None and (i >= len(header) or not header[i])]
    if stray:
        return SourceError(name, number, "extra_cells",
                           f"a value in column {stray[0]}, which has no header: the row is not imported")
    return {h: v for h, v in zip(header, cells) if h}


def _rows(path: Path) -> Iterator[tuple[int, list] | SourceError]:
    return xlsx_rows(path) if path.suffix.lower() == ".xlsx" else csv_rows(path)


def read_sheet(path: str | Path, vocab: Vocabulary) -> Iterator[Bundle | SheetRowError]:
    """Row errors, then bundles (one per subject), from a CSV or XLSX file; a file that cannot
    be read is its one error, and yields no bundle."""
    path = Path(path)
    try:
        problems, subjects = _read(path, vocab)
    except SourceError as exc:
        yield exc
        return
    yield from problems
    for code, entry in subjects.items():
        yield parse_bundle({"subject": entry["subject"], "records": list(entry["records"].values())}, vocab=vocab,
                           source=f"{path} subject {code}")


def _read(path: Path, vocab: Vocabulary) -> tuple[list[SourceError], dict[str, dict]]:
    name = str(path)
    problems: list[SourceError] = []
    subjects: dict[str, dict] = {}  # in the order first seen
    header: list[str] | None = None
    for item in _rows(path):
        if isinstance(item, SourceError):
            problems.append(item)
            continue
        number, values = item
        if header is None:
            header = [str(h).strip() if h is not None else "" for h in values]
            while header and not header[-1]:
                header.pop()
            header_problems = _header_problems(name, header)
            if header_problems:
                return header_problems, {}
            continue
        if values.count(None) == len(values) or all(v is None or str(v).strip() == "" for v in values):
            continue  # the first test is C-speed: a sheet may claim a million empty rows
        cells = _row_cells(name, number, header, values)
        if isinstance(cells, SourceError):
            problems.append(cells)
            continue
        code = cells.get("subject_code")
        subject = {"code": code, "kind": cells.get("subject_kind"), "name": cells.get("subject_name") or ""}
        record = {k: cells[k] for k in RECORD_COLUMNS if cells.get(k) is not None}
        if "record_id" in record:
            record["id"] = record.pop("record_id")
        try:
            parse_bundle({"subject": subject, "records": [record] if record else []}, vocab=vocab,
                         source=f"row {number}")
        except BundleError as exc:
            problems.append(SourceError(name, number, exc.code, exc.message))
            continue
        entry = subjects.get(code)
        if entry is None:
            entry = subjects[code] = {"subject": subject, "records": {}}
        elif subject["name"] and not entry["subject"]["name"]:
            entry["subject"]["name"] = subject["name"]
        if record:
            entry["records"][record["id"]] = record  # the last row for a record id wins
    if header is None:
        problems.append(SourceError(name, None, "empty_file", "the file holds no header row"))
    return problems, subjects
