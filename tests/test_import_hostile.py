"""`jointcredit import` of careless and hostile files (issue 15): every row is imported or
reported as `file:row: code: message`; a file that cannot be read, or is past a bound, is one
error and a non-zero exit, never a traceback; repeated errors are summarised. The files are
written here: CSV text, XLSX workbooks from openpyxl, zips rebuilt member by member."""
import csv
import json
import re
import time
import zipfile

import pytest
from openpyxl import Workbook

from engine.sheetfiles import MAX_COLUMNS, MAX_MEMBERS, MAX_ROWS, MAX_SHARED_STRINGS_BYTES, MAX_UNPACKED_BYTES
from engine.sheets import COLUMNS

from conftest import bundle, entry, org_code
from test_import import counts, run_import

HEADER = ",".join(COLUMNS)
SHEET = "xl/worksheets/sheet1.xml"
STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def listed(n: int, **extra) -> dict:
    """A company on the major tax violation list: the row an import must never lose."""
    return {"subject_code": org_code(n), "subject_kind": "legal_person", "subject_name": f"达州{n}公司",
            "record_id": f"T{n}", "kind": "list_entry", "list": "tax.major_violation", "status": "active",
            "listed_on": "2024-05-01", "department": "tax", **extra}


def csv_line(row: dict) -> str:
    return ",".join(str(row.get(c, "")) for c in COLUMNS)


def write_csv(path, *lines: str):
    path.write_text(HEADER + "\n" + "".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if ": " in line and "..." not in line]


def workbook(path, rows):
    book = Workbook()
    sheet = book.active
    sheet.append(list(COLUMNS))
    for row in rows:
        sheet.append([row.get(c) for c in COLUMNS])
    book.save(path)
    return path


def rebuild(path, edit=None, extra=None):
    """The zip at `path` rewritten: `edit[name](bytes) -> bytes`, plus `extra[name]` = chunks streamed in."""
    with zipfile.ZipFile(path) as old:
        members = {info.filename: old.read(info) for info in old.infolist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for name, data in members.items():
            new.writestr(name, (edit or {}).get(name, lambda d: d)(data))
        for name, chunks in (extra or {}).items():
            with new.open(name, "w", force_zip64=True) as out:
                for chunk in chunks:
                    out.write(chunk)
    return path


def chunks(unit: bytes, total: int, head: bytes = b"", tail: bytes = b""):
    yield head
    block = unit * (1024 * 1024 // len(unit))
    for _ in range(total // len(block) + 1):
        yield block
    yield tail


def test_an_unterminated_quote_reports_every_row_it_swallows(tmp_path, database_url):
    path = write_csv(tmp_path / "quote.csv", csv_line(listed(901)),
                     csv_line(listed(902, subject_name='"达州902公司')), csv_line(listed(903)))
    result = run_import(database_url, path)
    assert result.returncode == 1, result.stdout
    assert f"{path}:3: unterminated_quote: a quote opened in this row is not closed" in result.stderr
    assert f"{path}:4: unterminated_quote: not imported: read into the unclosed quote of row 3" in result.stderr
    assert counts(database_url)[:2] == (1, 1) and "2 error(s)" in result.stdout


def test_an_xlsx_whose_dimension_understates_its_rows_imports_them_all(tmp_path, database_url):
    path = workbook(tmp_path / "stale.xlsx", [listed(911), listed(912), listed(913)])
    rebuild(path, edit={SHEET: lambda xml: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:J2"', xml)})
    result = run_import(database_url, path)
    assert result.returncode == 0, result.stderr
    assert counts(database_url)[:2] == (3, 3)


def test_an_xlsx_dimension_bomb_is_read_as_the_rows_it_holds(tmp_path, database_url):
    """5 KB: a sheet claiming A1:XFD1048576, with a formatted empty cell there (openpyxl padded
    every row to 16,384 columns up to it: minutes)."""
    path = workbook(tmp_path / "claims.xlsx", [listed(914)])
    far = b'<row r="1048576"><c r="XFD1048576" s="0"/></row></sheetData>'
    rebuild(path, edit={SHEET: lambda xml: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1048576"',
                                                  xml).replace(b"</sheetData>", far)})
    started = time.perf_counter()
    result = run_import(database_url, path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert time.perf_counter() - started < 30 and counts(database_url)[:2] == (1, 1)


def _not_a_zip(tmp_path):
    path = tmp_path / "fake.xlsx"
    path.write_text("subject_code\n" + org_code(920) + "\n", encoding="utf-8")
    return path


def _truncated(tmp_path):
    path = workbook(tmp_path / "cut.xlsx", [listed(921)])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _latin1(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "\n" + csv_line(listed(922)) + "\n").encode("utf-8")
                     + csv_line(listed(923, subject_name="caf\xe9")).encode("latin-1") + b"\n")
    return path


def _strings_bomb(tmp_path):
    path = workbook(tmp_path / "strings.xlsx", [listed(924)])
    size = MAX_SHARED_STRINGS_BYTES + 1024 * 1024
    return rebuild(path, edit={"[Content_Types].xml": lambda xml: xml.replace(
        b"</Types>", f'<Override PartName="/xl/sharedStrings.xml" ContentType="{STRINGS_TYPE}"/></Types>'.encode())},
        extra={"xl/sharedStrings.xml": chunks(b"<si><t>a</t></si>", size, b'<sst xmlns="http://schemas.'
                                              b'openxmlformats.org/spreadsheetml/2006/main">', b"</sst>")})


def _unpacked_bomb(tmp_path):
    path = workbook(tmp_path / "padded.xlsx", [listed(925)])
    return rebuild(path, extra={"xl/media/padding.bin": chunks(b"\0", MAX_UNPACKED_BYTES)})


def _many_members(tmp_path):
    path = workbook(tmp_path / "members.xlsx", [listed(929)])
    return rebuild(path, extra={f"xl/media/m{i}.bin": [] for i in range(MAX_MEMBERS)})


def _million_columns(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(HEADER + "," + ",".join(f"c{i}" for i in range(1_000_000)) + "\n" + csv_line(listed(926)) + "\n",
                    encoding="utf-8")
    return path


def _too_many_rows(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(HEADER + "\n" + csv_line(listed(927)) + "\n" + "\n" * MAX_ROWS, encoding="utf-8")
    return path


def _too_many_xlsx_rows(tmp_path):
    path = workbook(tmp_path / "far.xlsx", [listed(928)])
    far = MAX_ROWS + 5
    row = f'<row r="{far}"><c r="A{far}" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'.encode()
    return rebuild(path, edit={SHEET: lambda xml: xml.replace(b"</sheetData>", row)})


@pytest.mark.parametrize("make, code", [
    pytest.param(_not_a_zip, "unreadable_file", id="not-a-zip"),
    pytest.param(_truncated, "unreadable_file", id="truncated-xlsx"),
    pytest.param(_latin1, "invalid_encoding", id="not-utf8-csv"),
    pytest.param(_strings_bomb, "shared_strings_too_large", id="shared-strings-bomb"),
    pytest.param(_unpacked_bomb, "xlsx_too_large", id="unpacked-bomb"),
    pytest.param(_many_members, "xlsx_too_many_members", id="zip-members"),
    pytest.param(_million_columns, "too_many_columns", id="million-columns"),
    pytest.param(_too_many_rows, "too_many_rows", id="csv-rows"),
    pytest.param(_too_many_xlsx_rows, "too_many_rows", id="xlsx-rows"),
])
def test_a_file_that_cannot_be_read_is_one_error_and_nothing_imported(tmp_path, database_url, make, code):
    path = make(tmp_path)
    started = time.perf_counter()
    result = run_import(database_url, path, timeout=120)
    assert time.perf_counter() - started < 60
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    [line] = error_lines(result)
    assert line.split(": ")[0] in (str(path), f"{path}:1") and line.split(": ")[1] == code, result.stderr[-2000:]
    assert counts(database_url)[:2] == (0, 0) and "1 error(s)" in result.stdout


def test_a_cell_over_the_csv_limit_is_its_rows_error(tmp_path, database_url):
    path = write_csv(tmp_path / "big.csv", csv_line(listed(930, document="x" * 200_000)), csv_line(listed(931)))
    result = run_import(database_url, path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"{path}:2: cell_too_large: " in result.stderr
    assert counts(database_url)[:2] == (1, 1)


def test_a_value_beyond_the_header_is_its_rows_error(tmp_path, database_url):
    path = write_csv(tmp_path / "shifted.csv", csv_line(listed(932)) + ",stray", csv_line(listed(933)))
    result = run_import(database_url, path)
    assert result.returncode == 1 and f"{path}:2: extra_cells: a value in column {len(COLUMNS) + 1}" in result.stderr
    assert counts(database_url)[:2] == (1, 1)


def test_a_header_wider_than_the_bound_is_one_error(tmp_path, database_url):
    path = tmp_path / "wide.csv"
    path.write_text(HEADER + "".join(f",x{i}" for i in range(MAX_COLUMNS)) + "\n", encoding="utf-8")
    result = run_import(database_url, path)
    assert [line.split(": ")[1] for line in error_lines(result)] == ["too_many_columns"]


def test_repeated_errors_are_summarised_after_the_first_twenty(tmp_path, database_url):
    path = write_csv(tmp_path / "dates.csv", *(csv_line(listed(1000 + i, listed_on="2024-13-01")) for i in range(50)),
                     csv_line(listed(940, expires_on="2024-04-30")))
    result = run_import(database_url, path)
    assert result.returncode == 1
    assert len([line for line in result.stderr.splitlines() if ": invalid_date: " in line]) == 20
    assert "... and 30 more of code invalid_date" in result.stderr
    assert f"{path}:52: expires_before_start: " in result.stderr  # another code still shows
    assert "51 error(s)" in result.stdout


def test_bundle_files_that_cannot_be_read_are_reported_not_raised(tmp_path, database_url):
    good = json.dumps(bundle(org_code(950), entry("tax.major_violation", "2024-03-15"))).encode()
    jsonl = tmp_path / "mixed.jsonl"
    jsonl.write_bytes(good + b"\n" + b'{"subject": {"name": "caf\xe9"}}\n' + b"[" * 100_000 + b"\n")
    as_json = tmp_path / "latin1.json"
    as_json.write_bytes(b'{"subject": {"name": "caf\xe9"}}')
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &a [1, 2]\nb: [*a, *a]\n", encoding="utf-8")
    result = run_import(database_url, jsonl, as_json, bomb)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    codes = [line.split(": ")[1] for line in error_lines(result)]
    assert codes == ["invalid_encoding", "invalid_json", "invalid_encoding", "yaml_alias"], result.stderr
    assert counts(database_url)[:2] == (1, 1)
