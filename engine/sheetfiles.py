"""Rows of CSV and XLSX files, read within bounds, each row accounted for.

A department's spreadsheet is read by a clerk's tools and an attacker's alike, so nothing in
it is trusted: not the XLSX `<dimension>` element (openpyxl's read-only mode stops at the last
row it names, and pads up to it: a sheet claiming A1:XFD1048576 ran for minutes), not the
sizes of the zip's members (a 1.7 MB sharedStrings inflated to 1.44 GB), not the CSV's
quoting (an unterminated quote swallowed the next row into a cell, silently). The bounds
below are checked before the work they guard: the zip's central directory before anything
is unpacked, the header's width before any row, a line's length before it is parsed.

Both readers yield `(row number, [cell values])`, the header as row 1, and a SourceError for
a row that cannot be read (the lines an unterminated quote ran over, a cell past the csv
module's limit); they raise a SourceError for a file that cannot be read at all or is past a
bound, which the caller reports as the file's one error.
"""
from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Iterator

from .errors import SourceError

__all__ = ["MAX_ROWS", "MAX_COLUMNS", "MAX_LINE_CHARS", "MAX_UNPACKED_BYTES", "MAX_SHARED_STRINGS_BYTES",
           "MAX_MEMBERS", "csv_rows", "xlsx_rows"]

MAX_ROWS = 1_048_576  # Excel's own limit, header included
MAX_COLUMNS = 100  # the format has 19
MAX_LINE_CHARS = 16 * 1024 * 1024  # a CSV line: the header and every row are far shorter
MAX_UNPACKED_BYTES = 512 * 1024 * 1024  # all members of an XLSX zip, as its central directory declares
MAX_SHARED_STRINGS_BYTES = 64 * 1024 * 1024  # openpyxl holds every shared string in memory
MAX_MEMBERS = 10_000

Row = tuple[int, list]


def _refuse(path: Path, code: str, message: str) -> SourceError:
    return SourceError(str(path), None, code, message)


def csv_rows(path: Path) -> Iterator[Row | SourceError]:
    """Rows of a UTF-8 CSV file (a BOM is allowed). A row running over several lines (an
    unterminated quote) is reported on each of them, and so is a row the csv module refuses."""
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.reader(_lines(text, path), strict=True)
        first = 1  # the line the next row starts on
        while True:
            try:
                values = next(reader)
                problem = None
            except StopIteration:
                return
            except csv.Error as exc:
                values, problem = None, str(exc)
            last = reader.line_num
            if last > MAX_ROWS:
                raise _refuse(path, "too_many_rows", f"more than {MAX_ROWS:,} rows: split the file")
            if last > first:
                yield from _run_over(path, first, last, problem)
            elif problem is not None:
                code = ("cell_too_large" if "field larger" in problem else
                        "unterminated_quote" if "unexpected end" in problem else "csv_syntax")
                yield SourceError(str(path), first, code, f"the row cannot be read: {problem}")
            elif values:
                yield first, values
            first = last + 1


def _run_over(path: Path, first: int, last: int, problem: str | None) -> Iterator[SourceError]:
    """Lines first..last were read as one row: a quote opened on `first` was not closed."""
    why = f" ({problem})" if problem else ""
    yield SourceError(str(path), first, "unterminated_quote",
                      f"a quote opened in this row is not closed where the row ends{why}: lines {first}-{last} "
                      "read as one row, none of them imported (a cell may not hold a line break)")
    for line in range(first + 1, last + 1):
        yield SourceError(str(path), line, "unterminated_quote",
                          f"not imported: read into the unclosed quote of row {first}")


def _lines(text: io.TextIOWrapper, path: Path) -> Iterator[str]:
    number = 0
    while True:
        try:
            line = text.readline(MAX_LINE_CHARS + 1)
        except UnicodeDecodeError as exc:
            raise _refuse(path, "invalid_encoding", f"the file is not UTF-8 text (near line {number + 1}: "
                                                    f"{exc.reason}); save it as CSV UTF-8") from None
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_CHARS:
            raise _refuse(path, "line_too_long", f"line {number} is longer than {MAX_LINE_CHARS:,} characters")
        yield line


def xlsx_rows(path: Path) -> Iterator[Row]:
    """Rows of the first sheet of an XLSX workbook, as many as the sheet holds (its declared
    dimension is ignored), each at most MAX_COLUMNS + 1 wide so that a value beyond the header
    is seen."""
    _check_package(path)
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises what zipfile, the XML parser or its own checks raise
        raise _refuse(path, "unreadable_file", f"not a readable XLSX workbook: {exc}") from None
    try:
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # read the rows that are there, not the ones <dimension> claims
        # openpyxl yields an empty row for each row number the sheet skips: numbers stay true
        rows = sheet.iter_rows(max_col=MAX_COLUMNS + 1, values_only=True)
        for number, values in enumerate(rows, start=1):
            if number > MAX_ROWS:
                raise _refuse(path, "too_many_rows", f"more than {MAX_ROWS:,} rows: split the workbook")
            yield number, list(values)
    except SourceError:
        raise
    except Exception as exc:  # a damaged member found while reading (bad XML, a truncated stream)
        raise _refuse(path, "unreadable_file", f"the workbook cannot be read: {exc}") from None
    finally:
        workbook.close()


def _check_package(path: Path) -> None:
    """The zip's members as its central directory declares them, before anything is unpacked
    (zipfile never delivers more than a member's declared size)."""
    try:
        _check_member_count(path)
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:  # the end record understated them
                raise _too_many_members(path, len(members))
            unpacked = sum(m.file_size for m in members)
            if unpacked > MAX_UNPACKED_BYTES:
                raise _refuse(path, "xlsx_too_large", f"the workbook unpacks to {unpacked:,} bytes; "
                                                      f"at most {MAX_UNPACKED_BYTES:,} are read")
            strings = _shared_strings(archive)
            if strings is not None and strings.file_size > MAX_SHARED_STRINGS_BYTES:
                raise _refuse(path, "shared_strings_too_large",
                              f"the workbook's shared strings unpack to {strings.file_size:,} bytes; "
                              f"at most {MAX_SHARED_STRINGS_BYTES:,} are read")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise _refuse(path, "unreadable_file", f"not a readable XLSX workbook: {exc}") from None


def _check_member_count(path: Path) -> None:
    """The member count from the zip's end record, before zipfile reads the central directory
    into one object per member (a few hundred bytes each: a zip of a million empty members
    would cost gigabytes). zipfile's own reader of that record, private but there since 2.x."""
    read_end = getattr(zipfile, "_EndRecData", None)
    if read_end is None:
        return
    with path.open("rb") as handle:
        end = read_end(handle)
    count = end[zipfile._ECD_ENTRIES_TOTAL] if end is not None else 0
    if count > MAX_MEMBERS:
        raise _too_many_members(path, count)


def _too_many_members(path: Path, count: int) -> SourceError:
    return _refuse(path, "xlsx_too_many_members", f"{count:,} members in the workbook's zip; "
                                                  f"at most {MAX_MEMBERS:,} are read")


def _shared_strings(archive: zipfile.ZipFile) -> zipfile.ZipInfo | None:
    """The member openpyxl will read the shared strings from: the one [Content_Types].xml names."""
    from openpyxl.packaging.manifest import Manifest
    from openpyxl.xml.constants import ARC_CONTENT_TYPES, SHARED_STRINGS
    from openpyxl.xml.functions import fromstring

    try:
        found = Manifest.from_tree(fromstring(archive.read(ARC_CONTENT_TYPES))).find(SHARED_STRINGS)
        return archive.getinfo(found.PartName[1:]) if found is not None else None
    except KeyError:  # no manifest or no such member: openpyxl will say the workbook is unreadable
        return None
    except Exception as exc:  # a manifest that is not XML
        raise SourceError(archive.filename or "?", None, "unreadable_file",
                          f"not a readable XLSX workbook: {exc}") from None
