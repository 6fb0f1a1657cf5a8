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

from sqlalchemy import create_engine, text

from bench.population import generate
from store.editing import RulebookEditor
from store.materialise import Materialiser
from store.rebuilds import RebuildLog
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
        monkeypatch.setattr(Materialiser, "BATCH", 1)  # many batches, each a progress report
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
        entry = watcher.rebuilds.get(outcome["rebuild"])
        total = entry["total"]  # the subjects the change can affect (store/affected.py)
        assert 3 < total < watcher.repository.count_subjects()
        assert any(0 < done < total for done in seen), seen  # part way, as the other service saw it
        assert seen == sorted(seen)
        assert entry["state"] == "done" and entry["done"] == total
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

Materialiser.BATCH = 1
progress = RebuildLog.progress
def slow(self, rebuild, done):
    progress(self, rebuild, done)
    print("progress", done, self.get(rebuild)["total"], flush=True)
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
    while True:  # let it write all but the last batch of the new generation
        line = process.stdout.readline()
        assert line, "the publishing process ended before it made progress"
        if line.startswith("progress") and int(line.split()[1]) >= int(line.split()[2]) - 1:  # all but the last
            break
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    left = create_engine(database_url)
    try:  # before any start cleans up: the dead rebuild's rows are there, and answer nothing
        assert _count(left, True) == rows  # what answers checks is untouched
        assert _count(left, "retired_in IS NOT NULL") > 0 and _count(left) > rows
    finally:
        left.dispose()
    restarted = Service(settings)
    try:
        entry = restarted.rebuilds.recent(1)[0]
        assert entry["state"] == "abandoned" and 3 <= entry["done"] == entry["total"] - 1
        assert restarted.repository.generation() == generation
        assert restarted.history.latest.revisions["taxation"] == in_force != revision
        # the start undid what the dead rebuild wrote: its rows gone, the rows it retired restored
        assert _count(restarted) == rows
        assert _count(restarted, "retired_in IS NOT NULL") == 0
        # publishing again works, and leaves nothing of the dead rebuild behind
        RulebookEditor(restarted).publish("taxation", revision, date.today().isoformat(), "tax")
        assert restarted.history.latest.revisions["taxation"] == revision
        assert _count(restarted) == _count(restarted, True)
    finally:
        restarted.close()


def _count(service_or_engine, where: str | bool = False) -> int:
    """Obligation rows: all, those answering checks now (`where` True), or those matching `where`."""
    if where is True:
        where = ("generation >= (SELECT base FROM catalog_state) AND generation <= (SELECT generation FROM "
                 "catalog_state) AND (retired_in IS NULL OR retired_in > (SELECT generation FROM catalog_state))")
    engine = getattr(service_or_engine, "engine", service_or_engine)
    with engine.connect() as c:
        return c.execute(text(f"SELECT COUNT(*) FROM obligations{' WHERE ' + where if where else ''}")).scalar()


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JOINTCREDIT_DATABASE_URL": database_url, "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "engine.cli", "rebuilds", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)


def test_the_cli_follows_a_running_publish_from_another_process_until_it_is_done(database_url, monkeypatch):
    """`jointcredit rebuilds --follow` shows a publish's progress while the publishing process holds
    the cluster lock (it reads the log only), then the entry: done, incremental, exit 0."""
    settings = _store(database_url)
    publisher = Service(settings)
    try:
        revision = _draft(publisher)
        monkeypatch.setattr(Materialiser, "BATCH", 1)
        progress = RebuildLog.progress
        monkeypatch.setattr(RebuildLog, "progress", lambda self, rebuild, done: (progress(self, rebuild, done),
                                                                                  time.sleep(1)))
        thread = threading.Thread(target=lambda: RulebookEditor(publisher).publish(
            "taxation", revision, date.today().isoformat(), "tax"))
        thread.start()
        while not publisher.rebuilds.recent(1) or publisher.rebuilds.recent(1)[0]["state"] != "running":
            time.sleep(0.05)
        followed = _cli(database_url, "--follow")  # returns once the publish has switched
        assert followed.returncode == 0, followed.stderr
        assert "rebuild" in followed.stderr  # the progress bar, on the error stream
        row = next(line for line in followed.stdout.splitlines() if f"taxation@{revision}" in line)
        assert "publish" in row and "incremental" in row and "done" in row
        listed = _cli(database_url)
        assert listed.returncode == 0 and f"taxation@{revision}" in listed.stdout
        assert _cli(database_url, "99999").returncode == 2
    finally:
        thread.join()
        publisher.close()
