"""The import pipeline (store/importer.py, store/pool.py) leaves the same store as saving the
same batches one by one through Service.save: obligations and change-feed entries alike,
with the rules in worker processes or in this process, for subjects new to the store and for
subjects already in it (an extra record, a changed one, relations to stored subjects)."""
import copy
import json
import multiprocessing
import random

import pytest
from sqlalchemy import text

import engine
from bench.population import generate
from store import importer
from store.importer import import_files
from store.service import Publication, Service
from store.settings import Settings

from conftest import fail_writes_at, fresh_pg_database


@pytest.fixture
def second_url(database_url, tmp_path):
    """Another empty database of the same kind as `database_url`."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'second.sqlite'}"
        return
    url, drop = fresh_pg_database("second")
    try:
        yield url
    finally:
        drop()


def _service(url):
    return Service(Settings(database_url=url, load_demo=False))


def population(n, start=0):
    return [b for i, b in enumerate(generate(start + n)) if i >= start]


def mixed_batch(first: list[dict], more: list[dict]) -> list[dict]:
    """New subjects (some related to stored persons) and stored ones again, changed or not."""
    rng = random.Random(5)
    out = copy.deepcopy(more)
    persons = [b["subject"]["code"] for b in first if b["subject"]["kind"] == "natural_person"]
    for n, b in enumerate(out[::4]):
        person = rng.choice(persons)
        b["records"].append({"id": f"MIX{n}", "kind": "relation", "type": "legal_representative", "other": person,
                             "listed_on": "2021-03-01", "status": "active"})
        b.setdefault("related", []).append({"subject": {"code": person, "kind": "natural_person", "name": "改名"},
                                            "records": [{"id": f"MIXP{n}", "kind": "penalty", "severity": "serious",
                                                         "status": "active", "decided_on": "2024-06-01",
                                                         "department": "tax"}]})
    for i, b in enumerate(copy.deepcopy(rng.sample(first, 60))):
        if i % 3 == 0:
            b["records"].append({"id": "EXTRA", "kind": "list_entry", "list": "tax.major_violation",
                                 "status": "active", "listed_on": "2024-05-01", "department": "tax"})
        elif i % 3 == 1 and b["records"]:
            first = b["records"][0]  # revoked on 2024-12-01, or the day it starts if that is later
            first.update(status="revoked", status_on=max(first.get("listed_on") or first.get("decided_on"), "2024-12-01"))
        else:
            b["records"] = b["records"][:1]
        out.append(b)
    out.append(copy.deepcopy(out[0]))  # the same subject twice in one batch: the later wins
    out[-1]["records"].append({"id": "TWICE", "kind": "list_entry", "list": "tax.major_violation",
                               "status": "active", "listed_on": "2023-05-01", "department": "tax"})
    rng.shuffle(out)
    return out


def write(path, objs):
    path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs), encoding="utf-8")
    return path


def snapshot(service) -> dict:
    """The store's content, ids and clock readings aside (obligations in no particular order)."""
    def norm(value):
        return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value

    out = {}
    with service.engine.connect() as c:
        for table, drop, order in (("subjects", {"updated_at"}, "code"), ("records", set(), "subject_code, record_id"),
                                   ("obligations", {"id"}, "id"), ("obligation_changes", {"id", "at"}, "id")):
            result = c.execute(text(f"SELECT * FROM {table} ORDER BY {order}"))
            names = list(result.keys())
            rows = [json.dumps({k: norm(v) for k, v in zip(names, row) if k not in drop}, sort_keys=True,
                               ensure_ascii=False) for row in result]
            out[table] = sorted(rows) if table == "obligations" else rows
    return out


def save_one_by_one(service, objs, batch):
    bundles = [engine.parse_bundle(o) for o in objs]
    for start in range(0, len(bundles), batch):
        service.save(bundles[start:start + batch])


def test_pipeline_matches_saving_batch_by_batch(tmp_path, database_url, second_url):
    first, more = population(300), population(60, start=300)
    mixed = mixed_batch(first, more)
    reference, piped = _service(database_url), _service(second_url)
    try:
        save_one_by_one(reference, first, 70)
        save_one_by_one(reference, mixed, 70)
        report = import_files(piped, [write(tmp_path / "first.jsonl", first)], batch_size=70, workers=2)
        assert report.subjects == 300 and not report.errors
        import_files(piped, [write(tmp_path / "mixed.jsonl", mixed)], batch_size=70, workers=2)
        want, got = snapshot(reference), snapshot(piped)
        assert len(want["obligation_changes"]) > len(population(300)) // 2  # the population raises plenty
        for table in want:
            assert got[table] == want[table], table
    finally:
        reference.close()
        piped.close()
    assert not multiprocessing.active_children()  # the workers are gone


def test_subjects_new_to_the_store_are_built_as_they_would_be_read_back(database_url):
    service = _service(database_url)
    try:
        first = population(120)
        service.save([engine.parse_bundle(o) for o in first])
        batch = [engine.parse_bundle(o) for o in mixed_batch(first, population(40, start=120))]
        saved = service.repository.save_batch(batch)
        assert 0 < len(saved.new) < len(saved.subjects)
        codes = service.materialiser.affected(saved.subjects)
        assert service.repository.load_rows(codes, saved) == service.repository.load_rows(codes)
    finally:
        service.close()


def test_a_small_import_runs_in_process(tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "RulePool", None)  # would fail if started
    service = _service(f"sqlite:///{tmp_path / 'small.sqlite'}")
    try:
        report = import_files(service, [write(tmp_path / "small.jsonl", population(50))], batch_size=100)
        assert report.subjects == 50 and report.refreshed >= 50
    finally:
        service.close()


def test_a_failed_import_stops_its_workers(tmp_path, monkeypatch):
    service = _service(f"sqlite:///{tmp_path / 'failed.sqlite'}")
    fail_writes_at(2, monkeypatch, service)
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            import_files(service, [write(tmp_path / "p.jsonl", population(200))], batch_size=40, workers=2)
    finally:
        service.close()
    assert not multiprocessing.active_children()


def _second_era(service, day="2022-01-01"):
    """A revision of one rulebook (a comment added) in force from `day`: two catalog eras."""
    name, text = sorted(service.history.latest.texts.items())[0]
    with service.writing("a second era"):
        service.put_in_force([Publication(name, text + "\n# revised\n", day, actor="test", comment="revised")])
    assert [era.start for era in service.history.eras][1:] == [day]


def test_workers_judge_each_era_by_its_own_catalog(tmp_path, database_url, second_url):
    objs = population(200)
    reference, piped = _service(database_url), _service(second_url)
    try:
        _second_era(reference)
        _second_era(piped)
        save_one_by_one(reference, objs, 50)
        import_files(piped, [write(tmp_path / "p.jsonl", objs)], batch_size=50, workers=2)
        want, got = snapshot(reference), snapshot(piped)
        assert any('"rulebook_revision"' in row for row in want["obligations"])  # clipped at the era's start
        assert got == want
    finally:
        reference.close()
        piped.close()
