"""The jointcredit command as a user runs it (a real subprocess)."""
import json
import os
import subprocess
import sys

import pytest
from openpyxl import load_workbook

from conftest import ROOT, TEST_RULEBOOKS, bundle, entry, org_code, person_code


def run(*args, cwd=ROOT):
    env = {**os.environ, "COLUMNS": "250"}  # rich wraps tables to the terminal width
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env=env)


@pytest.fixture
def bundles(tmp_path):
    person = person_code(50)
    good = bundle(org_code(50), entry("tax.major_violation", "2024-03-15", document="达税稽罚〔2024〕9号"),
                  {"id": "rel", "kind": "relation", "type": "legal_representative", "other": person}, related=[person])
    quiet = bundle(org_code(51), {"id": "p", "kind": "penalty", "severity": "general", "decided_on": "2021-01-01"})
    bad = bundle(org_code(52), entry("tax.major_violation", "2024-02-30"))
    path = tmp_path / "bundles.jsonl"
    path.write_text("\n".join(json.dumps(b, ensure_ascii=False) for b in (good, bad, quiet)) + "\n", encoding="utf-8")
    return path


def test_lint_reports_file_line_column_code_and_fails(tmp_path):
    text = (TEST_RULEBOOKS / "rewards.yaml").read_text(encoding="utf-8").replace("list: safety.dishonest", "list: safety.dishonst")
    (tmp_path / "rewards.yaml").write_text(text, encoding="utf-8")
    result = run("lint", str(tmp_path))
    assert result.returncode == 1
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "safety.dishonst" in l)
    column = text.splitlines()[line - 1].index("safety.dishonst") + 1
    assert f"{tmp_path / 'rewards.yaml'}:{line}:{column}: unknown_list: unknown list 'safety.dishonst' (did you mean 'safety.dishonest'?)" in result.stdout


def test_lint_passes_on_a_clean_tree():
    result = run("lint", str(TEST_RULEBOOKS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_evaluate_jsonl_keeps_going_past_a_bad_line(bundles):
    result = run("evaluate", str(bundles), "--as-of", "2025-06-30", "--format", "jsonl", "-r", str(TEST_RULEBOOKS))
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["subject"]["code"] for e in lines] == [org_code(50), org_code(51)]
    assert lines[1]["actions"] == []
    assert "invalid_date" in result.stderr and "records[0].listed_on" in result.stderr and "2024-02-30" in result.stderr
    assert org_code(52) in result.stderr


def test_evaluate_text_shows_each_department(bundles):
    result = run("evaluate", str(bundles), "--as-of", "2025-06-30", "-r", str(TEST_RULEBOOKS))
    assert "市财政局" in result.stdout and "Obligations per department" in result.stdout
    assert "市税务局 (as 市国税局)" in result.stdout


def test_why_and_why_not(bundles):
    result = run("why", str(bundles), "--measure", "tax.director_restriction", "--as-of", "2025-06-30",
                 "--subject", org_code(50), "-r", str(TEST_RULEBOOKS))
    assert result.returncode == 0, result.stderr
    assert "APPLIES" in result.stdout and "达税稽罚〔2024〕9号" in result.stdout and "公司法" in result.stdout
    assert "legal_representative" in result.stdout
    result = run("why", str(bundles), "--measure", "tax.procurement_ban", "--as-of", "2028-01-01",
                 "--subject", org_code(50), "-r", str(TEST_RULEBOOKS))
    assert "does NOT apply" in result.stdout and "FAILS" in result.stdout and "publication_max" in result.stdout
    result = run("why", str(bundles), "--measure", "tax.procurment_ban", "--subject", org_code(50), "-r", str(TEST_RULEBOOKS))
    assert result.returncode == 2 and "did you mean 'tax.procurement_ban'" in result.stderr


def test_explain_exports_json_dot_and_a_picture(bundles, tmp_path):
    for suffix in (".json", ".dot", ".svg", ".png"):
        target = tmp_path / f"graph{suffix}"
        result = run("explain", str(bundles), "--subject", org_code(50), "--as-of", "2025-06-30", "-o", str(target),
                     "-r", str(TEST_RULEBOOKS))
        assert result.returncode == 0, result.stderr
        assert target.stat().st_size > 500
    graph = json.loads((tmp_path / "graph.json").read_text(encoding="utf-8"))
    types = {n["type"] for n in graph["nodes"]}
    assert {"record", "condition", "rule", "measure", "action", "department", "basis", "derived_record",
            "linked_subject"} <= types
    relations = {e["relation"] for e in graph["edges"]}
    assert {"succeeded_by", "legal_representative", "derives", "grounds"} <= relations
    assert (tmp_path / "graph.dot").read_text(encoding="utf-8").startswith("digraph")


def test_catalog_exports_csv_and_xlsx(tmp_path):
    result = run("catalog", "--csv", str(tmp_path / "c.csv"), "--xlsx", str(tmp_path / "c.xlsx"), "-r", str(TEST_RULEBOOKS))
    assert result.returncode == 0, result.stderr
    workbook = load_workbook(tmp_path / "c.xlsx")
    assert workbook.sheetnames == ["by department", "by list", "by basis"]
    measures = {row[1] for row in workbook["by department"].iter_rows(min_row=2, values_only=True)}
    assert "tax.procurement_ban" in measures and "rewards.green_channel" in measures
    csv_text = (tmp_path / "c.csv").read_text(encoding="utf-8-sig")
    assert csv_text.splitlines()[0].startswith("department_group,measure")
    result = run("catalog", "--by", "list", "-r", str(TEST_RULEBOOKS))
    assert "tax.major_violation" in result.stdout and "measures in 2 rulebooks" in result.stdout


def test_rulebook_tests_say_which_failed_and_why(tmp_path):
    text = (TEST_RULEBOOKS / "taxation.yaml").read_text(encoding="utf-8").replace(
        "{measure: tax.procurement_ban, status: disputed}", "{measure: tax.procurement_ban, status: active}")
    (tmp_path / "taxation.yaml").write_text(text, encoding="utf-8")
    result = run("test", str(tmp_path))
    assert result.returncode == 1
    assert "FAIL taxation: a disputed listing still triggers" in result.stdout
    assert "expected measure=tax.procurement_ban, status=active, got tax.procurement_ban" in result.stdout
    assert "3 passed, 1 failed" in result.stdout


def test_bad_rulebooks_stop_evaluation_with_their_errors(tmp_path, bundles):
    (tmp_path / "rewards.yaml").write_text("rulebook: rewards\n", encoding="utf-8")
    result = run("evaluate", str(bundles), "-r", str(tmp_path), "--as-of", "2025-06-30")
    assert result.returncode == 2 and "missing_field" in result.stderr
