"""A publish re-materialises only the subjects it can affect (store/affected.py), and leaves the
store answering exactly what re-materialising every subject would: a property test over random
populations and random sequences of rulebook changes (effects, terms, measures dropped,
rollbacks, at random effective dates, retroactive ones included), and the costs that must not
grow: unaffected subjects' rows untouched, no split intervals, no era a subject's records do
not reach."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select, text

from bench.population import generate
from engine.reads import rulebooks_reached
from engine.resources import default_rulebook_dir
from store.models import ObligationRow
from store.repository import Repository
from store.rows import OBLIGATION_COLUMNS, as_dicts, materialise
from store.service import Publication, Service, bundles_from
from store.settings import Settings

SHIPPED = {name: (Path(default_rulebook_dir()) / f"{name}.yaml").read_text(encoding="utf-8")
           for name in ("taxation", "incentives", "procurement", "courts")}
BAN = "      - {activity: government_procurement, effect: deny}\n"


def _once(text_: str, old: str, new: str) -> str:
    assert old in text_, old
    return text_.replace(old, new, 1)


# each change: (rulebook, its text after the change); "shipped" puts the file's own text back
CHANGES = {
    "taxation_more_effects": ("taxation", _once(SHIPPED["taxation"], BAN,
                                                BAN + "      - {activity: public_bidding, effect: deny}\n")),
    "taxation_d_grade_effects": ("taxation", _once(SHIPPED["taxation"], "      - {activity: supervision, effect: more_inspections}\n",
                                                   "")),
    "incentives_fewer_measures": ("incentives", _once(SHIPPED["incentives"],
                                                      "      - incentives.a_grade_tax_credit_loans\n", "")),
    "procurement_shorter_term": ("procurement", _once(SHIPPED["procurement"], "    lasts: P3Y\n", "    lasts: P1Y\n")),
    "courts_more_effects": ("courts", _once(SHIPPED["courts"], "effect: deny}\n",
                                            "effect: deny}\n      - {activity: honours, effect: deny}\n")),
    "taxation_shipped": ("taxation", SHIPPED["taxation"]),
    "incentives_shipped": ("incentives", SHIPPED["incentives"]),
}
DAYS = ["2016-01-01", "2020-03-01", "2023-06-15", "2025-01-01", date.today().isoformat()]


def _service(url: str, subjects: int, seed: int) -> Service:
    service = Service(Settings(database_url=url, load_demo=False, rebuild_workers=0))
    service.save(bundles_from(list(generate(subjects, seed)), service.vocab))
    return service


def _canonical(rows: list[dict]) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str) for row in rows)


def _answering(service: Service) -> list[str]:
    """The rows answering checks now, as the store holds them."""
    table = ObligationRow.__table__
    with service.engine.connect() as c:
        found = c.execute(select(*(table.c[name] for name in OBLIGATION_COLUMNS))
                          .where(Repository.answering_now())).all()
    rows = []
    for values in found:
        row = dict(zip(OBLIGATION_COLUMNS, values))
        for name in ("effects", "provenance"):
            if isinstance(row[name], str):
                row[name] = json.loads(row[name])
        rows.append(row)
    return _canonical(rows)


def _from_scratch(service: Service) -> list[str]:
    """What re-materialising every stored subject under the catalog in force gives, judging
    each era apart (not through the spans shortcut the store uses)."""
    repository = service.repository
    rows = []
    for batch in repository.codes_with_records():
        for bundle in repository.load_bundles(batch).values():
            rows.extend(as_dicts(materialise(service.history, bundle, every_era=True)))
    return _canonical(rows)


def _publish(service: Service, change: str, day: str) -> dict:
    name, text_ = CHANGES[change]
    with service.writing("a test publish"):
        return service.put_in_force([Publication(name, text_, day, "test", change)])


def _count(service: Service, where: str) -> int:
    with service.engine.connect() as c:
        return c.execute(text(f"SELECT COUNT(*) FROM obligations WHERE {where}")).scalar()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subjects=st.integers(20, 70), seed=st.integers(0, 10_000),
       steps=st.lists(st.tuples(st.sampled_from(sorted(CHANGES)), st.sampled_from(DAYS)), min_size=1, max_size=3))
def test_an_incremental_publish_leaves_what_a_full_rematerialisation_would(tmp_path_factory, subjects, seed, steps):
    url = f"sqlite:///{tmp_path_factory.mktemp('incremental')}/store.sqlite"
    service = _service(url, subjects, seed)
    try:
        everyone = service.repository.count_subjects()
        for change, day in steps:
            entry = _publish(service, change, day)
            assert entry["state"] == "done" and entry["total"] <= everyone
            assert _answering(service) == _from_scratch(service), (change, day)
            # nothing superseded is left behind: no retired row, no row of an older full rebuild
            assert _count(service, "retired_in IS NOT NULL") == 0
            assert _count(service, "generation < (SELECT base FROM catalog_state)") == 0
    finally:
        service.close()


def _rows_by_id(service: Service) -> dict[int, tuple]:
    with service.engine.connect() as c:
        return {row[0]: tuple(row[1:]) for row in c.execute(text("SELECT id, source_subject, measure, valid_from, "
                                                                 "valid_until, revision FROM obligations"))}


def test_a_publish_rewrites_only_the_subjects_it_changes(database_url):
    """Taxation gets one more effect on one measure: the rows of subjects without a record taxation
    reads keep their ids (never rewritten); the rows that change are the only new ones; the store
    does not grow by more than they do; and an unaffected subject is not split at the new era."""
    service = _service(database_url, 150, 7)
    try:
        before = _rows_by_id(service)
        affected_by_tax = {row[0] for row in before.values() if row[1].startswith("tax.")}
        entry = _publish(service, "taxation_more_effects", "2024-01-01")
        after = _rows_by_id(service)
        assert 0 < entry["total"] < service.repository.count_subjects()
        kept = {i for i in before if i in after}
        new = {i for i in after if i not in before}
        assert {after[i][0] for i in new} <= affected_by_tax  # only subjects taxation gives something to
        untouched = {code for code in {row[0] for row in before.values()} if code not in affected_by_tax}
        assert untouched and all(i in kept for i, row in before.items() if row[0] in untouched)
        # the new era split only the intervals whose measure changed: rows grew by at most those
        changed = {i for i in new if after[i][1] == "tax.procurement_ban"}
        assert len(after) - len(before) <= len(changed)
        assert _answering(service) == _from_scratch(service)
    finally:
        service.close()


def test_a_subject_is_judged_again_only_where_a_rulebook_its_records_reach_changes(database_url):
    """Five taxation publications: a subject whose records taxation does not read is judged over
    one span (as before any), and its rows are the same rows."""
    service = _service(database_url, 120, 3)
    try:
        history = service.history
        bundles = [b for batch in service.repository.codes_with_records()
                   for b in service.repository.load_bundles(batch).values()]
        keys = {b.subject.code: frozenset((r.kind, r.key, r.grade) for r in b.records) for b in bundles}
        spans_before = {code: len(history.spans(k)) for code, k in keys.items()}
        rows_before = _rows_by_id(service)
        for day, change in zip(("2020-01-01", "2021-01-01", "2022-01-01", "2023-01-01", "2024-01-01"),
                               ("taxation_more_effects", "taxation_shipped") * 2 + ("taxation_more_effects",)):
            _publish(service, change, day)
        history = service.history
        assert len(history.eras) >= 6
        reads_tax = {code for code, k in keys.items()
                     if any("taxation" in rulebooks_reached(era.catalog, k) for era in history.eras)}
        others = set(keys) - reads_tax
        assert others and reads_tax
        assert all(len(history.spans(keys[code])) == spans_before[code] == 1 for code in others)
        assert max(len(history.spans(keys[code])) for code in reads_tax) >= 6
        rows_after = _rows_by_id(service)
        assert {i: r for i, r in rows_before.items() if r[0] in others} == \
               {i: r for i, r in rows_after.items() if r[0] in others}
        assert _answering(service) == _from_scratch(service)
    finally:
        service.close()


@pytest.mark.parametrize("change", ["taxation_more_effects", "incentives_fewer_measures", "courts_more_effects"])
def test_a_dry_run_evaluates_only_the_subjects_the_change_can_affect_and_finds_the_same(tmp_path, monkeypatch, change):
    """The dry run's impact over the affected subjects equals its impact over everyone."""
    import store.editing as editing

    service = _service(f"sqlite:///{tmp_path}/store.sqlite", 150, 11)
    try:
        editor = editing.RulebookEditor(service)
        name, text_ = CHANGES[change]
        draft = editor.save(name, text_, editor.head(name).revision, "test", change)
        found = editor.dry_run(name, draft.revision, "2025-06-30")
        everyone = service.repository.count_subjects()
        assert 0 < found["subjects_evaluated"] < everyone
        monkeypatch.setattr(editing, "subjects_reading", lambda repository, catalogs, changed: sorted(
            code for batch in repository.codes_with_records() for code in batch))
        all_of_them = editor.dry_run(name, draft.revision, "2025-06-30")
        assert all_of_them["subjects_evaluated"] == everyone
        for key in ("departments", "measures", "eligibility_flips"):
            assert found[key] == all_of_them[key]
        assert any(v for d in found["departments"].values() for v in d.values())  # the change does show
    finally:
        service.close()
