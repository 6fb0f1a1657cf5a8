import json

import pytest

import engine
from engine.bundle import read_bundles

from conftest import bundle, entry, org_code, person_code


def test_a_valid_bundle_parses_with_its_relations():
    b = engine.parse_bundle(bundle(org_code(1), entry("tax.major_violation", "2024-01-01"),
                                   {"id": "rel", "kind": "relation", "type": "legal_representative",
                                    "other": person_code(1)}, related=[person_code(1)]))
    assert b.subject.kind == "legal_person"
    assert [r.kind for r in b.records] == ["list_entry", "relation"]
    assert b.related_subject(person_code(1)).kind == "natural_person"


@pytest.mark.parametrize("mutate, code, field", [
    pytest.param(lambda b: b["subject"].update(code=org_code(1)[:-1] + "0"), "invalid_subject_code", "subject.code", id="check-char"),
    pytest.param(lambda b: b["records"][0].update(listed_on="2024-13-01"), "invalid_date", "records[0].listed_on", id="date"),
    pytest.param(lambda b: b["records"][0].update(list="tax.major_violaton"), "unknown_list", "records[0].list", id="list"),
    pytest.param(lambda b: b["records"][0].update(status="gone"), "invalid_status", "records[0].status", id="status"),
    pytest.param(lambda b: b["records"].append(dict(b["records"][0])), "duplicate_record", "records[1].id", id="dup-id"),
    pytest.param(lambda b: b["subject"].update(kind="natural_person"), "subject_kind_mismatch", "subject.kind", id="kind"),
    pytest.param(lambda b: b["records"].append({"id": "x", "kind": "relation", "type": "legal_representative", "other": "123"}),
                 "invalid_subject_code", "records[1].other", id="relation-other"),
    pytest.param(lambda b: b["records"][0].update(expires_on="2023-12-31"), "expires_before_start",
                 "records[0].expires_on", id="expires-before-listed"),
    pytest.param(lambda b: b["records"][0].update(status="revoked", status_on="2023-12-31"), "status_before_start",
                 "records[0].status_on", id="status-before-listed"),
    pytest.param(lambda b: b["records"].append({"id": "p", "kind": "penalty", "decided_on": "2024-05-01",
                                                "expires_on": "2024-04-30"}),
                 "expires_before_start", "records[1].expires_on", id="expires-before-decided"),
])
def test_bad_bundles_name_bundle_field_and_value(mutate, code, field):
    obj = bundle(org_code(2), entry("tax.major_violation", "2024-01-01"))
    mutate(obj)
    with pytest.raises(engine.BundleError) as info:
        engine.parse_bundle(obj)
    assert info.value.code == code
    assert info.value.field == field
    assert info.value.bundle


def test_unknown_list_suggests_the_closest():
    obj = bundle(org_code(3), entry("tax.major_violaton", "2024-01-01"))
    with pytest.raises(engine.BundleError, match="did you mean 'tax.major_violation'"):
        engine.parse_bundle(obj)


def test_a_bad_jsonl_line_does_not_stop_the_others(tmp_path):
    path = tmp_path / "b.jsonl"
    good = [bundle(org_code(i), entry("tax.major_violation", "2024-01-01")) for i in range(3)]
    bad = bundle(org_code(9)[:-1] + "0")
    path.write_text("\n".join([json.dumps(good[0]), json.dumps(bad), "{not json", json.dumps(good[1]),
                               json.dumps(good[2])]) + "\n", encoding="utf-8")
    items = list(read_bundles(path))
    assert [type(i).__name__ for i in items] == ["Bundle", "BundleError", "BundleError", "Bundle", "Bundle"]
    assert items[1].line is None and "line 2" in items[1].message
    assert items[2].code == "invalid_json" and "line 3" in items[2].message


def test_jsonl_lines_read_as_the_standard_library_reads_them(tmp_path):
    """Lines are parsed by orjson for speed; what it refuses and the standard library accepts
    (NaN, integers beyond 64 bits) reads as before, and a syntax error keeps its wording."""
    path = tmp_path / "c.jsonl"
    odd = bundle(org_code(4), entry("tax.major_violation", "2024-01-01"))
    odd["subject"]["score"] = float("nan")  # an extra field nobody reads, as a sender might add
    odd["records"][0]["seq"] = 2**70
    path.write_text(json.dumps(odd) + "\n" + '{"subject": {"code": 1,}}\n', encoding="utf-8")
    items = list(read_bundles(path))
    assert type(items[0]).__name__ == "Bundle" and items[0].subject.code == org_code(4)
    try:
        json.loads('{"subject": {"code": 1,}}')
    except json.JSONDecodeError as exc:
        expected = f"not valid JSON: {exc.msg} at column {exc.colno}"
    assert items[1].code == "invalid_json" and expected in items[1].message
