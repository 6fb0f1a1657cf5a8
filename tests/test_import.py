"""`jointcredit import` as a user runs it: JSONL, CSV and XLSX, bad rows reported, the rest kept."""
import csv
import json
import os
import subprocess
import sys

from openpyxl import Workbook
from sqlalchemy import create_engine, text

from engine.sheets import COLUMNS

from conftest import ROOT, bundle, entry, org_code, person_code


def run_import(database_url, *files, timeout=300):
    env = {**os.environ, "JOINTCREDIT_DATABASE_URL": database_url, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "engine.cli", "import", *map(str, files)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=timeout)


def counts(database_url):
    url = database_url.replace("postgresql://", "postgresql+psycopg://")
    engine = create_engine(url)
    with engine.connect() as c:
        result = tuple(c.execute(text(f"select count(*) from {t}")).scalar_one() for t in ("subjects", "records", "obligations"))
    engine.dispose()
    return result


def sheet_rows():
    person = person_code(300)
    rows = [
        {"subject_code": org_code(300), "subject_kind": "legal_person", "subject_name": "达州甲公司", "record_id": "T1",
         "kind": "list_entry", "list": "tax.major_violation", "status": "active", "listed_on": "2024-05-01",
         "department": "tax", "document": "达税〔2024〕1号"},
        {"subject_code": org_code(300), "record_id": "L1", "kind": "relation", "type": "legal_representative",
         "other": person, "listed_on": "2020-01-01"},
        {"subject_code": person, "subject_kind": "natural_person", "subject_name": "李某"},
        {"subject_code": org_code(301), "record_id": "X1", "kind": "list_entry", "list": "tax.major_violation",
         "listed_on": "2024-13-01"},  # bad date: row 5
        {"subject_code": org_code(301), "record_id": "X2", "kind": "rating", "scheme": "tax.credit", "grade": "A",
         "decided_on": "2025-04-01"},
        {"subject_code": "915117000000003010", "record_id": "Y1", "kind": "penalty", "severity": "general",
         "decided_on": "2024-01-01"},  # bad check character: row 7
    ]
    return rows


def test_csv_import_reports_bad_rows_and_keeps_the_rest(tmp_path, database_url):
    path = tmp_path / "records.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(sheet_rows())
    result = run_import(database_url, path)
    assert result.returncode == 1
    assert f"{path}:5: invalid_date" in result.stderr and f"{path}:7: invalid_subject_code" in result.stderr
    assert "imported 3 subjects, 3 records" in result.stdout
    assert "building the indexes ..." in result.stderr  # the first import says why it pauses at the end
    subjects, records, obligations = counts(database_url)
    assert (subjects, records) == (3, 3) and obligations > 0
    again = run_import(database_url, path)  # idempotent by record id
    assert counts(database_url) == (subjects, records, obligations)
    assert again.returncode == 1 and "building the indexes" not in again.stderr


def test_xlsx_import(tmp_path, database_url):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(list(COLUMNS))
    for row in sheet_rows()[:3]:
        sheet.append([row.get(c) for c in COLUMNS])
    path = tmp_path / "records.xlsx"
    workbook.save(path)
    result = run_import(database_url, path)
    assert result.returncode == 0, result.stderr
    assert counts(database_url)[:2] == (2, 2)


def test_unknown_column_is_refused_with_a_suggestion(tmp_path, database_url):
    path = tmp_path / "bad.csv"
    path.write_text("subject_code,recrd_id\n" + org_code(1) + ",x\n", encoding="utf-8")
    result = run_import(database_url, path)
    assert result.returncode == 1 and "unknown_column" in result.stderr and "did you mean 'record_id'" in result.stderr


def test_jsonl_import_with_a_bad_line(tmp_path, database_url):
    path = tmp_path / "b.jsonl"
    lines = [json.dumps(bundle(org_code(310), entry("safety.dishonest", "2025-01-01"))), "{oops",
             json.dumps(bundle(org_code(311)))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_import(database_url, path)
    assert result.returncode == 1 and "line 2" in result.stderr
    assert counts(database_url)[0] == 2
