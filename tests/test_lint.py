"""The linter: schema and reference errors with file, line, column, a stable code and, for
near misses, a suggestion; every error of every file at once."""
from pathlib import Path

import pytest

from engine.lint import load_and_lint

from conftest import TEST_RULEBOOKS

BASE = (TEST_RULEBOOKS / "rewards.yaml").read_text(encoding="utf-8")


def lint_text(tmp_path, text, vocab, name="rewards.yaml", extra=()):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    for other in extra:
        (tmp_path / Path(other).name).write_text(Path(other).read_text(encoding="utf-8"), encoding="utf-8")
    _, diags = load_and_lint([str(tmp_path)], vocab)
    return [d for d in diags if d.severity == "error"]


def line_of(text, needle):
    for i, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return i
    raise AssertionError(needle)


def test_the_base_rulebook_is_clean(tmp_path, vocab):
    assert lint_text(tmp_path, BASE, vocab) == []


@pytest.mark.parametrize("old, new, code, suggestion", [
    pytest.param("department: ndrc\n    action: 行政审批", "department: ndrcc\n    action: 行政审批", "unknown_department", "ndrc", id="department"),
    pytest.param("list: safety.dishonest", "list: safety.dishonset", "unknown_list", "safety.dishonest", id="list"),
    pytest.param("basis: [mou_2016_1001]", "basis: [mou_2016_1010]", "unknown_basis", "mou_2016_1001", id="basis"),
    pytest.param("grade: A}", "grade: AA}", "unknown_grade", "A", id="grade"),
    pytest.param("apply: [rewards.safety_inspections]\n  - id: rewards.joint", "apply: [rewards.safety_inspection]\n  - id: rewards.joint", "unknown_measure", "rewards.safety_inspections", id="measure"),
    pytest.param("targets: [subject, principal]", "targets: [subject, principle]", "unknown_target", "principal", id="target"),
    pytest.param("effect: fast_track", "effect: fast_trak", "unknown_effect", "fast_track", id="effect"),
    pytest.param("activity: admin_licensing", "activity: admin_licencing", "unknown_activity", "admin_licensing", id="activity"),
    pytest.param("kind: reward\n    department: ndrc", "kind: rewrd\n    department: ndrc", "invalid_value", "reward", id="schema-enum"),
    pytest.param("    lasts: P1Y", "    lastss: P1Y", "unknown_field", "lasts", id="schema-field"),
])
def test_unknown_codes_point_at_the_line_and_suggest(tmp_path, vocab, old, new, code, suggestion):
    assert old in BASE
    text = BASE.replace(old, new, 1)
    diags = lint_text(tmp_path, text, vocab)
    assert [d.code for d in diags] == [code], diags
    d = diags[0]
    assert d.line == line_of(text, new.split("\n")[0].strip())
    assert d.suggestion == suggestion
    assert str(d).startswith(f"{tmp_path / 'rewards.yaml'}:{d.line}:{d.column}: {code}: ")


def test_a_punishment_without_basis_fails(tmp_path, vocab):
    text = BASE.replace("    basis: [mou_2016_1001]\n", "")
    assert [d.code for d in lint_text(tmp_path, text, vocab)] == ["missing_basis"]


def test_a_punishment_cannot_be_ordered_of_banks(tmp_path, vocab):
    text = BASE.replace("department: safety", "department: banks")
    assert [d.code for d in lint_text(tmp_path, text, vocab)] == ["forbidden_punisher"]


def test_effect_polarity_must_fit_the_measure(tmp_path, vocab):
    text = BASE.replace("effect: more_inspections", "effect: priority")
    assert [d.code for d in lint_text(tmp_path, text, vocab)] == ["effect_polarity"]


def test_join_must_name_an_earlier_alias(tmp_path, vocab):
    text = BASE.replace("same: {document: court.document}", "same: {document: courtt.document}")
    diags = lint_text(tmp_path, text, vocab)
    assert [d.code for d in diags] == ["unknown_alias"] and diags[0].suggestion == "court"


def test_every_error_of_every_file_at_once(tmp_path, vocab):
    broken = BASE.replace("list: safety.dishonest", "list: nope").replace("department: ndrc\n    action: 行政审批",
                                                                          "department: nope\n    action: 行政审批")
    other = (TEST_RULEBOOKS / "taxation.yaml").read_text(encoding="utf-8").replace("list: tax.major_violation", "list: tax.x")
    (tmp_path / "taxation.yaml").write_text(other, encoding="utf-8")
    diags = lint_text(tmp_path, broken, vocab)
    files = {Path(d.file).name for d in diags}
    assert files == {"rewards.yaml", "taxation.yaml"}
    assert len(diags) == 4  # two in rewards, two list conditions in taxation
    assert diags == sorted(diags)


def test_duplicate_ids_across_files(tmp_path, vocab):
    copy = BASE.replace("rulebook: rewards", "rulebook: rewards2")
    (tmp_path / "rewards2.yaml").write_text(copy, encoding="utf-8")
    codes = [d.code for d in lint_text(tmp_path, BASE, vocab)]
    assert codes.count("duplicate_id") == 7  # three measures and four rules defined twice


def test_a_cycle_through_derived_records_is_an_error(tmp_path, vocab):
    text = BASE.replace(
        "    lasts: P1Y\n",
        "    lasts: P1Y\n    derives: {record: list_entry, list: safety.dishonest}\n").replace(
        "targets: [subject, principal]", "targets: [subject]")
    diags = lint_text(tmp_path, text, vocab)
    assert {d.code for d in diags} == {"rule_cycle"}
    assert "rewards.safety_listed -> rewards.safety_listed" in diags[0].message


def test_a_derived_measure_may_only_target_the_subject(tmp_path, vocab):
    text = BASE.replace("    lasts: P1Y\n", "    lasts: P1Y\n    derives: {record: list_entry, list: derived.untrustworthy}\n")
    assert "derived_needs_subject" in [d.code for d in lint_text(tmp_path, text, vocab)]


def test_yaml_syntax_and_duplicate_keys_are_located(tmp_path, vocab):
    diags = lint_text(tmp_path, BASE.replace("title: 测试用激励措施", "title: 测试用激励措施\ntitle: again"), vocab)
    assert [(d.code, d.line) for d in diags] == [("duplicate_key", 4)]
    diags = lint_text(tmp_path, BASE.replace("rules:\n", "rules:\n  - [\n"), vocab)
    assert diags[0].code == "yaml_syntax"


def test_file_name_must_match_the_rulebook_name(tmp_path, vocab):
    assert [d.code for d in lint_text(tmp_path, BASE, vocab, name="other.yaml")] == ["name_mismatch"]


def _shipped_copy(tmp_path, edits: dict[str, tuple[str, str]]):
    """The shipped rulebooks copied to tmp_path, with (old, new) replaced once in the named files."""
    from engine.resources import default_rulebook_dir

    for path in sorted(default_rulebook_dir().glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        if path.name in edits:
            old, new = edits[path.name]
            assert old in text
            text = text.replace(old, new, 1)
        (tmp_path / path.name).write_text(text, encoding="utf-8")


TAX_APPLY = "    apply:\n"
COURTS_BIDDING = "  - id: courts.bidding_restricted\n    kind: punishment\n"


def test_a_rulebook_applying_another_rulebooks_measure_is_refused_naming_the_owner(tmp_path, vocab):
    _shipped_copy(tmp_path, {"taxation.yaml": (TAX_APPLY, TAX_APPLY + "      - courts.bidding_restricted\n")})
    _, diags = load_and_lint([str(tmp_path)], vocab)
    errors = [d for d in diags if d.severity == "error"]
    assert [d.code for d in errors] == ["foreign_measure"], errors
    text = (tmp_path / "taxation.yaml").read_text(encoding="utf-8")
    assert errors[0].file.endswith("taxation.yaml")
    assert errors[0].line == line_of(text, "- courts.bidding_restricted")
    assert "rulebook 'courts', owned by court" in errors[0].message


def test_a_measure_its_owner_marks_shared_may_be_applied_by_others(tmp_path, vocab):
    _shipped_copy(tmp_path, {"taxation.yaml": (TAX_APPLY, TAX_APPLY + "      - courts.bidding_restricted\n"),
                             "courts.yaml": (COURTS_BIDDING, COURTS_BIDDING + "    shared: true\n")})
    _, diags = load_and_lint([str(tmp_path)], vocab)
    assert [d for d in diags if d.severity == "error"] == []
