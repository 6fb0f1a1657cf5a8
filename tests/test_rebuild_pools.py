"""A rebuild writes the same obligations wherever its rules run: in the process, in worker
processes (a publish on a large store), on a Dask cluster (a LocalCluster here)."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from bench.population import generate
from store.dask_pool import DaskPool
from store.editing import RulebookEditor
from store.models import ObligationRow
from store.pool import RulePool
from store.repository import Repository
from store.service import Service, bundles_from
from store.settings import Settings

SUBJECTS = 300


@pytest.fixture
def populated(database_url):
    """300 generated subjects (relations among them) under a catalog of two eras."""
    service = Service(Settings(database_url=database_url, load_demo=False, rebuild_workers=2))
    service.save(bundles_from(list(generate(SUBJECTS)), service.vocab))
    yield service
    service.close()


COLUMNS = ("target_code", "source_subject", "measure", "rule", "rulebook", "revision", "department", "status",
           "effects", "provenance", "valid_from", "valid_until", "obligation_key")


def _obligations(service) -> list[tuple]:
    """The rows answering checks now, whichever generation each was written in."""
    table = ObligationRow.__table__
    with service.engine.connect() as c:
        rows = c.execute(select(*(table.c[name] for name in COLUMNS)).where(Repository.answering_now())).all()
    return sorted(tuple(str(v) for v in row) for row in rows)


def _rebuild(service, pool=None) -> list[tuple]:
    with service.writing("a test rebuild"):
        done, _ = service.materialiser.rebuild(pool=pool)
    assert done == service.repository.count_subjects() > SUBJECTS  # related persons are stored too
    return _obligations(service)


def test_a_publish_on_worker_processes_writes_what_a_rebuild_in_process_writes(populated):
    editor = RulebookEditor(populated)
    head = editor.head("taxation")
    ban = "      - {activity: government_procurement, effect: deny}\n"
    draft = editor.save("taxation", head.text.replace(ban, ban + "      - {activity: public_bidding, effect: deny}\n", 1),
                        head.revision, "tax", "bar bidding too")
    later = (date.today() + timedelta(days=3)).isoformat()
    pools = []
    choose = populated._rebuild_pool
    populated._rebuild_pool = lambda history, subjects: pools.append(choose(history, subjects)) or pools[-1]
    result = editor.publish("taxation", draft.revision, later, "tax")
    assert [type(p) for p in pools] == [RulePool] and pools[0].workers == 2  # rebuild_workers=2
    # only the subjects the change can affect (store/affected.py), the same rows as everyone redone
    assert 0 < result["subjects_rematerialised"] < populated.repository.count_subjects()
    published = _obligations(populated)
    assert any(draft.revision in row for row in published)  # the new era's rows are there
    assert _rebuild(populated) == published  # the same, computed in this process


def test_a_rebuild_on_a_dask_cluster_writes_what_one_in_process_writes(populated):
    in_process = _rebuild(populated)
    pool = DaskPool(populated.history, "local")
    try:
        assert pool.workers >= 1
        assert _rebuild(populated, pool) == in_process
        # the rules ran on the cluster's workers: each that took a task compiled the catalog
        compiled = pool._client.run(lambda: len(__import__("store.dask_pool").dask_pool._compiled))
        assert sum(compiled.values()) >= 1
    finally:
        pool.close()
    local_pool = RulePool(populated.history, 2)
    try:
        assert _rebuild(populated, local_pool) == in_process
    finally:
        local_pool.close()
