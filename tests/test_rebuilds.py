"""A rebuild's progress is visible to other processes while it runs, and a publish killed half
way (SIGKILL) leaves the generation before it in force; the next start marks it abandoned."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

from sqlalchemy import text

from bench.population import generate
from store.editing import RulebookEditor
from store.materialise import Materialiser
from store.service import Service, bundles_from
from store.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BAN = "      - {activity: government_procurement, effect: deny}\n"


def _store(database_url) -> Settings:
    settings = Settings(database_url=database_url, load_demo=False, rebuild_workers=0)
    service = Service(settings)
    service.save(bundles_from(list(generate(200)), service.vocab))
    service.close()
    return settings


def _draft(service) -> str:
    editor = RulebookEditor(service)
    head = editor.head("taxation")
    text_ = head.text.replace(BAN, BAN + "      - {activity: public_bidding, effect: deny}\n", 1)
    return editor.save("taxation", text_, head.revision, "tax", "bar bidding too").revision


def test_a_rebuilds_progress_is_seen_from_another_service_while_it_runs(database_url, monkeypatch):
    settings = _store(database_url)
    publisher, watcher = Service(settings), Service(settings)
    try:
        revision = _draft(publisher)
        monkeypatch.setattr(Materialiser, "BATCH", 20)  # many batches, each a progress report
        outcome = {}
        thread = threading.Thread(target=lambda: outcome.update(RulebookEditor(publisher).publish(
            "taxation", revision, date.today().isoformat(), "tax")))
        thread.start()
        seen = []
        while thread.is_alive():
            latest = watcher.rebuilds.recent(1)
            if latest and latest[0]["state"] == "running":
                seen.append(latest[0]["done"])
            time.sleep(0.01)
        thread.join()
        total = watcher.repository.count_subjects()
        assert any(0 < done < total for done in seen), seen  # part way, as the other service saw it
        assert seen == sorted(seen)
        entry = watcher.rebuilds.get(outcome["rebuild"])
        assert entry["state"] == "done" and entry["done"] == entry["total"] == total
        assert entry["generation"] == watcher.repository.generation() and entry["kind"] == "publish"
        assert entry["rulebooks"].startswith(f"taxation@{revision} from ")
    finally:
        publisher.close()
        watcher.close()


KILLED_PUBLISH = """
import sys, time
import engine  # first: catalog.vocabulary and engine import each other (issue 17)
from datetime import date
from store.editing import RulebookEditor
from store.materialise import Materialiser
from store.rebuilds import RebuildLog
from store.service import Service
from store.settings import Settings

Materialiser.BATCH = 10
progress = RebuildLog.progress
def slow(self, rebuild, done):
    progress(self, rebuild, done)
    print("progress", done, flush=True)
    time.sleep(0.3)
RebuildLog.progress = slow
service = Service(Settings(database_url=sys.argv[1], load_demo=False, rebuild_workers=0))
RulebookEditor(service).publish("taxation", sys.argv[2], date.today().isoformat(), "tax")
"""


def test_a_publish_killed_half_way_leaves_the_generation_before_in_force(database_url):
    settings = _store(database_url)
    service = Service(settings)
    revision = _draft(service)
    generation, in_force = service.repository.generation(), service.history.latest.revisions["taxation"]
    rows = _count(service)
    service.close()
    process = subprocess.Popen([sys.executable, "-c", KILLED_PUBLISH, database_url, revision], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    while True:  # let it write a few batches of the new generation
        line = process.stdout.readline()
        assert line, "the publishing process ended before it made progress"
        if line.startswith("progress") and int(line.split()[1]) >= 30:
            break
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    restarted = Service(settings)
    try:
        entry = restarted.rebuilds.recent(1)[0]
        assert entry["state"] == "abandoned" and 30 <= entry["done"] < entry["total"]
        assert restarted.repository.generation() == generation
        assert restarted.history.latest.revisions["taxation"] == in_force != revision
        assert _count(restarted, current=True) == rows  # what answers checks is untouched
        # publishing again works, and leaves nothing of the dead rebuild behind
        RulebookEditor(restarted).publish("taxation", revision, date.today().isoformat(), "tax")
        assert restarted.history.latest.revisions["taxation"] == revision
        assert _count(restarted) == _count(restarted, current=True)
    finally:
        restarted.close()


def _count(service, current: bool = False) -> int:
    where = " WHERE generation = (SELECT generation FROM catalog_state WHERE id = 1)" if current else ""
    with service.engine.connect() as c:
        return c.execute(text(f"SELECT COUNT(*) FROM obligations{where}")).scalar()
