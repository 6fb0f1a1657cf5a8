"""Publish benchmark: put a rulebook change in force, and roll it back, while checks run.

    python -m bench.publish --subjects 100000 --backend sqlite|postgresql|both \
        [--rate 100] [--workers 1] [--seed 20250630]

Per backend, one after the other:

1. the population, the fresh database and its import are bench.service's: the JSONL population
   (bench.population, cached in $JC_BENCH_CACHE), a new SQLite file or a new PostgreSQL database
   on 127.0.0.1:5432, `jointcredit import FILE` in a child process (timed: the publish's
   targets are set against it);
2. a system key (the checks) and an admin key (the publishes: an admin may change any
   rulebook) are made with `jointcredit keys create`; ONE uvicorn process serves
   `api.app:create_app` with bench.service's options (`--workers` worker processes). Unlike
   bench.service, the server is not pinned by default (`--server-cpu N` pins it): a publish
   runs its rules in worker processes that the server starts, one per CPU it may use
   (store/service.py), and a server pinned to one CPU keeps them on that CPU too, beside the
   checks. The load generator is pinned to CPU 1, as in bench.service;
3. the database's size (SQLite: the file with its -wal and -shm; PostgreSQL:
   pg_database_size), the obligation rows that answer checks, and the bytes an obligation row
   and a change-feed entry take with their indexes (dbstat; pg_total_relation_size);
4. bench.loadgen, in its own process, sends eligibility checks open loop at `--rate` per
   second (64 connections; each check's latency counted from its due time) from before the
   first phase until after the last, and records every check's due time, latency and status
   (`--timeline`); it stops on SIGTERM (`--until-signal`). Checks are drawn as in
   bench.service (a pool of `--pool` subjects, a fifth of them listed, as of 2025-06-30, each
   answer compared with the engine's own evaluation of the bundle); `--baseline` seconds of
   them before the first phase are the reference (`idle`);
5. three phases, one after the other, each timed from its HTTP request until the rebuild it
   started reads `done` at GET /v1/rebuilds/{id} (polled every second; GET /v1/rebuilds shows
   the progress while the request is in flight):
   a. taxation: GET its text, add one effect to one measure (tax.procurement_ban also bars
      public_bidding), PUT it as a draft with If-Match, POST .../publish effective today;
   b. the same kind of change to procurement (procurement.listed_supplier_banned);
   c. POST .../rollback of taxation to the revision before (a), effective today.
   Per phase: wall time, the rebuild's subjects (total, done), the checks whose due time fell
   in the phase (p50, p99, max, non-200 answers), the database's size after, the obligation
   rows that answer checks before and after (which appeared, which went, hashed on every
   column but id, generation, retired_in and revision), and the changed obligations: rows of
   the edited measure in force on or after the effective date;
6. in-process, with nothing else of ours running: materialising a sample of `--sample`
   bundles (store.rows.materialise) under the shipped rulebooks (one era), and under them
   followed by five publications of taxation (alternately with and without the extra
   effect, effective 30, 60, ... 150 days from today: six eras); µs per subject, best of
   `--repeats` runs interleaved. Then the same sample imported with `jointcredit import` into
   a fresh database holding the shipped rulebooks only, and into one with the five
   publications put in force first (on an empty store: cheap);
7. a table with the targets beside the figures (shown, not asserted: one-rulebook publish
   <= 60 s at 1M subjects, extrapolated linearly from `--subjects`, and <= 0.25 of the import;
   checks during a publish p99 <= 10 ms, max <= 100 ms, no non-200; the database grows by no
   more than the changed obligations' rows and change-feed entries, plus 1 MB, the checks'
   own decision-log growth aside; materialising after five publishes within 10% of before),
   and bench/results/publish-<backend>.json. Exit status 1 if a phase failed or a check was
   answered wrongly, not for a missed target.
"""
from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from bench import service as bs
from bench.loadgen import summarise
from bench.service import ROOT, RESULTS, CpuWatch, Database, Server, say

TARGET_PUBLISH_S_AT_1M = 60.0
TARGET_PUBLISH_IMPORT_SHARE = 0.25
TARGET_P99_MS, TARGET_MAX_MS = 10.0, 100.0
TARGET_MATERIALISE_RATIO = 1.10
GROWTH_SLACK_MB = 1.0
POLL_S = 1.0
PUBLISHES_AFTER = 5  # step 6: publications of taxation on top of the shipped rulebooks

# (rulebook, measure, the effect added to it)
CHANGES = {
    "taxation": ("tax.procurement_ban", "public_bidding", "deny"),
    "procurement": ("procurement.listed_supplier_banned", "public_bidding", "deny"),
}
# obligations columns that say what an obligation is (not where or when it was stored)
_CONTENT_SKIPPED = ("id", "generation", "retired_in", "revision", "obligation_key")
_DECISION_TABLES = ("decisions", "chain_head")


# -- the change --------------------------------------------------------------------------------
def add_effect(text: str, measure: str, activity: str, effect: str) -> str:
    """`text` with one more effect on `measure`: a line after its last effect, indented alike."""
    lines = text.splitlines(keepends=True)
    at = next((i for i, line in enumerate(lines) if line.strip() == f"- id: {measure}"), None)
    if at is None:
        raise ValueError(f"no measure {measure} in the rulebook")
    indent = len(lines[at]) - len(lines[at].lstrip())
    effects = next((i for i in range(at + 1, len(lines)) if lines[i].strip() == "effects:"), None)
    if effects is None or any(lines[i].lstrip().startswith("- id:") for i in range(at + 1, effects)):
        raise ValueError(f"measure {measure} lists no effects")
    last = effects
    while last + 1 < len(lines) and lines[last + 1].lstrip().startswith("- {activity:") \
            and len(lines[last + 1]) - len(lines[last + 1].lstrip()) > indent:
        last += 1
    if last == effects:
        raise ValueError(f"measure {measure}'s effects are not one `- {{activity: ...}}` line each")
    if any(f"activity: {activity}," in lines[i] for i in range(effects + 1, last + 1)):
        raise ValueError(f"measure {measure} already has an effect on {activity}")
    item = lines[last][:len(lines[last]) - len(lines[last].lstrip())] + f"- {{activity: {activity}, effect: {effect}}}\n"
    return "".join(lines[:last + 1] + [item] + lines[last + 1:])


# -- the database --------------------------------------------------------------------------------
class Store:
    """What the benchmark reads from the database besides its size: obligation rows and table bytes."""

    def __init__(self, db: Database):
        self.db = db

    def _engine(self):
        from store.db import make_engine

        return make_engine(self.db.url)

    @staticmethod
    def _answering_now():
        """The WHERE clause of the obligation rows that answer checks: Repository.answering_now()
        where the store has it (a store whose publishes keep unchanged rows across generations),
        else the rows of the generation that answers checks."""
        from sqlalchemy import select

        from store.models import CatalogState, ObligationRow
        from store.repository import Repository

        if hasattr(Repository, "answering_now"):
            return Repository.answering_now()
        return ObligationRow.generation == select(CatalogState.generation).where(CatalogState.id == 1).scalar_subquery()

    def answering(self) -> tuple[list[int], int]:
        """Hashes of the obligation rows that answer checks now (sorted) and the rows stored in all."""
        from sqlalchemy import Text, cast, func, select

        from store.models import ObligationRow

        table = ObligationRow.__table__
        columns = [cast(c, Text) if c.name in ("effects", "provenance") else c
                   for c in table.columns if c.name not in _CONTENT_SKIPPED]
        engine = self._engine()
        hashes: list[int] = []
        try:
            with engine.connect() as c:
                stored = c.execute(select(func.count()).select_from(table)).scalar_one()
                result = c.execution_options(stream_results=True, yield_per=20_000).execute(
                    select(*columns).where(self._answering_now()))
                for part in result.partitions():
                    hashes.extend(hash(tuple(row)) for row in part)
        finally:
            engine.dispose()
        hashes.sort()
        return hashes, stored

    def measure_rows(self, measure: str, effective_from: str) -> int:
        """Rows of `measure` that answer checks on or after `effective_from`: what a change to it changes."""
        from sqlalchemy import func, or_, select

        from store.models import ObligationRow as O

        engine = self._engine()
        try:
            with engine.connect() as c:
                return c.execute(select(func.count()).select_from(O).where(
                    self._answering_now(), O.measure == measure,
                    or_(O.valid_until.is_(None), O.valid_until > effective_from))).scalar_one()
        finally:
            engine.dispose()

    def table_bytes(self, tables: tuple[str, ...]) -> dict[str, int | None]:
        """Bytes of each table with its indexes (SQLite: dbstat; PostgreSQL: pg_total_relation_size)."""
        out: dict[str, int | None] = {}
        try:
            if self.db.backend == "sqlite":
                with sqlite3.connect(f"file:{self.db.path}?mode=ro", uri=True) as conn:
                    for table in tables:
                        names = [r[0] for r in conn.execute(
                            "SELECT name FROM sqlite_master WHERE tbl_name = ? AND type IN ('table', 'index')", (table,))]
                        out[table] = sum(conn.execute("SELECT coalesce(sum(pgsize), 0) FROM dbstat "
                                                      "WHERE name = ? AND aggregate = TRUE", (name,)).fetchone()[0]
                                         for name in names)
            else:
                import psycopg

                with psycopg.connect(self.db.url, autocommit=True) as conn:
                    for table in tables:
                        out[table] = conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()[0]
        except Exception as exc:  # noqa: BLE001 - a figure we can live without
            say(f"table sizes: {exc!r}")
            return {t: None for t in tables}
        return out

    def row_bytes(self) -> dict:
        """Mean bytes of an obligation row and of a change-feed entry, indexes included."""
        from sqlalchemy import func, select

        from store.models import ObligationChange, ObligationRow

        engine = self._engine()
        try:
            with engine.connect() as c:
                rows = c.execute(select(func.count()).select_from(ObligationRow)).scalar_one()
                changes = c.execute(select(func.count()).select_from(ObligationChange)).scalar_one()
        finally:
            engine.dispose()
        sizes = self.table_bytes(("obligations", "obligation_changes"))
        per = lambda b, n: round(b / n, 1) if b and n else None  # noqa: E731
        return {"obligation_rows": rows, "obligations_bytes": sizes["obligations"],
                "per_obligation_row": per(sizes["obligations"], rows),
                "change_entries": changes, "obligation_changes_bytes": sizes["obligation_changes"],
                "per_change_entry": per(sizes["obligation_changes"], changes)}


def _multiset_diff(before: list[int], after: list[int]) -> tuple[int, int]:
    """(in `after` but not `before`, in `before` but not `after`), counting repeats; both sorted."""
    i = j = appeared = went = 0
    while i < len(before) and j < len(after):
        if before[i] == after[j]:
            i += 1
            j += 1
        elif before[i] < after[j]:
            went += 1
            i += 1
        else:
            appeared += 1
            j += 1
    return appeared + len(after) - j, went + len(before) - i


# -- the API ---------------------------------------------------------------------------------------
class Api:
    def __init__(self, base: str, key: str):
        import httpx

        self.http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=None)

    def call(self, method: str, path: str, expect: tuple[int, ...] = (200,), **kw):
        response = self.http.request(method, path, **kw)
        if response.status_code not in expect:
            raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:1000]}")
        return response

    def latest_rebuild(self) -> dict | None:
        found = self.call("GET", "/v1/rebuilds", params={"limit": 1}).json()["rebuilds"]
        return found[0] if found else None


def timed_rebuild(api: Api, label: str, method: str, path: str, body: dict, max_seconds: float) -> dict:
    """The request, and the rebuild it started polled until done: (start, end) on the monotonic clock."""
    before = api.latest_rebuild()
    last_id = before["id"] if before else 0
    answer: dict = {}

    def send() -> None:
        try:
            response = api.call(method, path, json=body)
            answer.update(response=response.json(), at=time.monotonic())
        except Exception as exc:  # noqa: BLE001 - reported by the caller
            answer.update(error=repr(exc), at=time.monotonic())

    start = time.monotonic()
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    shown = None
    seen: dict | None = None
    while True:
        sender.join(timeout=POLL_S)
        elapsed = time.monotonic() - start
        if sender.is_alive():  # the request is in flight: its rebuild is the newest one
            latest = api.latest_rebuild()
            if latest and latest["id"] > last_id:
                seen = latest
                if (latest["done"], latest["state"]) != shown:
                    shown = (latest["done"], latest["state"])
                    say(f"  {label}: rebuild {latest['id']} {latest['state']}, {latest['done']:,} of "
                        f"{latest['total']:,} subjects ({elapsed:.0f}s)")
            if elapsed > max_seconds:
                raise RuntimeError(f"{label}: no answer after {max_seconds:.0f}s")
            continue
        if "error" in answer:
            raise RuntimeError(f"{label}: {answer['error']}")
        rebuild_id = answer["response"]["rebuild"]
        seen = api.call("GET", f"/v1/rebuilds/{rebuild_id}").json()
        if seen["state"] != "running":
            break
        if elapsed > max_seconds:
            raise RuntimeError(f"{label}: rebuild {rebuild_id} still running after {max_seconds:.0f}s")
        say(f"  {label}: rebuild {rebuild_id} running, {seen['done']:,} of {seen['total']:,} subjects ({elapsed:.0f}s)")
        time.sleep(POLL_S)
    end = time.monotonic()
    say(f"  {label}: rebuild {seen['id']} {seen['state']}: {seen['done']:,} of {seen['total']:,} subjects; "
        f"answered in {answer['at'] - start:.1f}s, done seen at {end - start:.1f}s")
    return {"start": start, "end": end, "wall_s": round(end - start, 2), "response_s": round(answer["at"] - start, 2),
            "response": answer["response"], "rebuild": seen}


# -- the checks ---------------------------------------------------------------------------------
class Checks:
    """bench.loadgen in its own process, open loop, until told to stop; every check's timing kept."""

    def __init__(self, server: Server, key: str, requests_file: Path, out_dir: Path, rate: float, max_seconds: float,
                 client: str):
        self.out = out_dir / "loadgen-publish.json"
        self.cmd, self.env = bs.loadgen_command(
            server, "/v1/eligibility", key, requests_file, self.out, checks=int(rate * max_seconds) + 1,
            concurrency=bs.OPEN_LOOP_CONNECTIONS, offset=0, sanity=True, client=client, max_seconds=max_seconds,
            rate=rate, extra=("--until-signal", "--timeline"))
        self.proc: subprocess.Popen | None = None
        self.result: dict | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env)

    def stop(self) -> dict:
        if self.proc is None:
            return {}
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("the load generator did not stop within 120 s of SIGTERM")
        self.proc = None
        if code != 0:
            raise RuntimeError(f"the load generator exited with {code}")
        self.result = json.loads(self.out.read_text())
        return self.result


def checks_in(run: dict, start: float, end: float) -> dict:
    """The checks of a finished bench.loadgen --timeline run due in [start, end) (monotonic clock)."""
    timeline = run["timeline"]
    shift = timeline["monotonic_minus_perf_counter"]
    picked = [(lat, status) for t0, lat, status in timeline["requests"] if start <= t0 + shift < end]
    out = summarise([lat for lat, _ in picked], end - start)
    statuses: dict[str, int] = {}
    for _, status in picked:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    out.update({"status": statuses, "non_200": sum(v for k, v in statuses.items() if k != "200"),
                "status_503": statuses.get("503", 0),
                "expected_count": int(round((end - start) * (run.get("rate") or 0)))})
    return out


# -- one backend ----------------------------------------------------------------------------------
def snapshot(store: Store, db: Database, with_rows: bool) -> dict:
    out = {"db_size_mb": db.size_mb(), "decision_log_bytes": sum(v or 0 for v in store.table_bytes(_DECISION_TABLES).values())}
    if db.backend == "sqlite" and db.path is not None:  # the write-ahead log, counted in the size
        wal = db.path.with_name(db.path.name + "-wal")
        out["wal_mb"] = round(wal.stat().st_size / 2**20, 1) if wal.exists() else 0.0
    if with_rows:
        out["hashes"], out["stored_rows"] = store.answering()
        out["answering_rows"] = len(out["hashes"])
    return out


def _compare(before: dict, after: dict, changed: int, row_bytes: dict) -> dict:
    growth = None if before["db_size_mb"] is None or after["db_size_mb"] is None \
        else round(after["db_size_mb"] - before["db_size_mb"], 1)
    log_growth = round((after["decision_log_bytes"] - before["decision_log_bytes"]) / 2**20, 2)
    per = (row_bytes.get("per_obligation_row") or 0) + (row_bytes.get("per_change_entry") or 0)
    allowed = round(changed * per / 2**20 + GROWTH_SLACK_MB, 2)
    out = {"db_size_mb_before": before["db_size_mb"], "db_size_mb_after": after["db_size_mb"], "db_growth_mb": growth,
           "decision_log_growth_mb": log_growth, "wal_mb_after": after.get("wal_mb"),
           "db_growth_less_decision_log_mb": None if growth is None else round(growth - log_growth, 2),
           "changed_obligations": changed, "growth_allowed_mb": allowed}
    if "hashes" in before and "hashes" in after:
        appeared, went = _multiset_diff(before["hashes"], after["hashes"])
        out.update({"answering_rows_before": before["answering_rows"], "answering_rows_after": after["answering_rows"],
                    "rows_appeared": appeared, "rows_went": went,
                    "stored_rows_before": before["stored_rows"], "stored_rows_after": after["stored_rows"]})
    return out


def run_phases(api: Api, store: Store, db: Database, server: Server, args, row_bytes: dict, phases: dict) -> None:
    """The three phases, each put in `phases` as it ends (with its time window, for the checks)."""
    today = date.today().isoformat()
    originals: dict[str, dict] = {}
    state = snapshot(store, db, args.row_diff)
    plan = [("a_publish_taxation", "taxation", "publish"), ("b_publish_procurement", "procurement", "publish"),
            ("c_rollback_taxation", "taxation", "rollback")]
    for label, name, action in plan:
        measure, activity, effect = CHANGES[name]
        phase: dict = {"rulebook": name, "action": action, "measure": measure, "effective_from": today}
        say(f"phase {label}: {action} {name} ({measure} +{activity}:{effect}) effective {today} ...")
        if action == "publish":
            got = api.call("GET", f"/v1/rulebooks/{name}")
            head = got.json()
            originals[name] = head
            t0 = time.monotonic()
            draft = api.call("PUT", f"/v1/rulebooks/{name}", expect=(201,),
                             json={"text": add_effect(head["text"], measure, activity, effect),
                                   "comment": f"bench.publish: {measure} also {effect}s {activity}"},
                             headers={"If-Match": got.headers["ETag"]}).json()
            phase["draft_s"] = round(time.monotonic() - t0, 3)
            phase.update(revision_before=head["revision"], revision=draft["revision"])
            method, path = "POST", f"/v1/rulebooks/{name}/publish"
            body = {"revision": draft["revision"], "effective_from": today,
                    "comment": f"bench.publish: {measure} also {effect}s {activity}"}
        else:
            phase.update(revision_before=api.call("GET", f"/v1/rulebooks/{name}").json()["revision"],
                         revision=originals[name]["revision"])
            method, path = "POST", f"/v1/rulebooks/{name}/rollback"
            body = {"to": originals[name]["revision"], "effective_from": today, "comment": "bench.publish: rollback"}
        watch, cpu0 = CpuWatch(), server.cpu_s()
        timed = timed_rebuild(api, label, method, path, body, args.max_seconds)
        cpu1 = server.cpu_s()
        phase["cpu_watch"] = watch.done((cpu1 or 0) - (cpu0 or 0))
        phase["server_cpu_s"] = None if cpu0 is None or cpu1 is None else round(cpu1 - cpu0, 2)
        phase["window"] = (timed.pop("start"), timed.pop("end"))
        rebuild = timed["rebuild"]
        phase.update(timed)
        phase.update(subjects_total=rebuild.get("total"), subjects_done=rebuild.get("done"),
                     rebuild_state=rebuild.get("state"))
        after = snapshot(store, db, args.row_diff)
        changed = store.measure_rows(measure, today)
        phase["store"] = _compare(state, after, changed, row_bytes)
        state = after
        say(f"phase {label}: {phase['wall_s']}s, {phase['subjects_done']:,} subjects re-evaluated; database "
            f"{phase['store']['db_size_mb_before']} -> {phase['store']['db_size_mb_after']} MB; "
            f"{changed:,} changed obligations"
            + (f", {phase['store']['rows_appeared']:,} answering rows appeared and {phase['store']['rows_went']:,} went"
               if "rows_appeared" in phase["store"] else ""))
        phases[label] = phase
        time.sleep(args.gap)


def run_backend(backend: str, args, population: Path, generate_s: float | None, run_id: str) -> dict:
    out_dir = bs.CACHE / f"run-{run_id}-{backend}-publish"
    out_dir.mkdir(parents=True, exist_ok=True)
    db = Database(backend, run_id, args.pg_admin_url)
    report: dict = {"meta": _meta(args, backend), "problems": [],
                    "population": {"file": str(population), "subjects": args.subjects, "seed": args.seed,
                                   "generate_s": generate_s}}
    server: Server | None = None
    checks: Checks | None = None
    try:
        url = db.create()
        report["meta"]["database"] = url
        say(f"[{backend}] database {url}")
        report["import"] = bs.run_import(url, population)
        system_key = bs.create_key(url)
        admin_key = bs.create_key(url, role="admin", name="bench-publish")
        entries, report["requests"] = bs.build_requests(population, args.subjects, min(args.subjects * 4, 20_000),
                                                        min(args.pool, args.subjects), 0.2, args.seed)
        requests_file = out_dir / "requests.json"
        requests_file.write_text(json.dumps(entries))

        server = Server("publish", "api.app:create_app", bs._env(url), args.server_cpu, out_dir, workers=args.workers)
        say(f"[{backend}] starting the service (uvicorn api.app:create_app, {args.workers} worker(s), "
            + ("not pinned" if args.server_cpu is None else f"CPU {args.server_cpu}") + ") ...")
        report["server"] = {"command": " ".join(server.command[1:]), "ready_s": round(server.start(), 1),
                            "cpu": "all" if args.server_cpu is None else args.server_cpu}
        bs.smoke(server.base + "/v1/eligibility", system_key, entries[0])
        store = Store(db)
        report["before"] = {"db_size_mb": db.size_mb(), **store.row_bytes()}
        say(f"[{backend}] service ready in {report['server']['ready_s']}s; database {report['before']['db_size_mb']} MB, "
            f"{report['before']['obligation_rows']:,} obligation rows of ~{report['before']['per_obligation_row']} bytes")

        checks = Checks(server, system_key, requests_file, out_dir, args.rate, args.max_seconds, args.client)
        checks.start()
        time.sleep(1.5)  # the generator's start-up
        idle = (time.monotonic(), None)
        say(f"[{backend}] checks at {args.rate:g}/s; {args.baseline:g}s of them before the first publish ...")
        time.sleep(args.baseline)
        idle = (idle[0], time.monotonic())
        api = Api(server.base, admin_key)
        phases = report["phases"] = {}
        try:
            run_phases(api, store, db, server, args, report["before"], phases)
        finally:  # the checks of the phases that ended, even if one failed
            run = checks.stop()
            checks = None
            report["checks"] = {k: v for k, v in run.items() if k != "timeline"}
            report["idle"] = {"seconds": round(idle[1] - idle[0], 1), "checks": checks_in(run, *idle)}
            for phase in phases.values():
                phase["checks"] = checks_in(run, *phase.pop("window"))
        status = server.status()
        report["server"].update(rss_mb_after=bs._mb(status.get("VmRSS")), peak_rss_mb=bs._mb(status.get("VmHWM")))
        server.stop()
        server = None
        report["materialise"] = materialise_cost(population, args)
        report["import_after_publishes"] = import_cost(backend, population, args, run_id)
    except Exception as exc:  # noqa: BLE001 - reported, and the next backend still runs
        say(f"[{backend}] FAILED: {exc!r}")
        report["problems"].append(f"{type(exc).__name__}: {exc}")
    finally:
        if checks is not None:
            try:
                checks.stop()
            except Exception:  # noqa: BLE001
                pass
        if server is not None:
            server.stop()
        if args.keep_db:
            say(f"[{backend}] keeping the database: {db.url}")
        else:
            db.drop()
    report["summary"] = summary(report)
    report["problems"] += _problems(report)
    return report


# -- step 6: materialising and importing after five publishes -------------------------------------
def _shipped_and_after(today: date) -> tuple[list, list]:
    """The shipped rulebooks as publications from the beginning, and those followed by five of taxation."""
    import engine  # noqa: F401 - the package first: catalog.vocabulary imports from it
    from engine.compiler import compile_rulebooks
    from engine.resources import default_rulebook_dir
    from store.history import BEGINNING
    from store.service import Publication

    shipped = compile_rulebooks([default_rulebook_dir()]).rulebooks
    first = [Publication(name, rb.text, BEGINNING, "bench", "shipped") for name, rb in sorted(shipped.items())]
    measure, activity, effect = CHANGES["taxation"]
    plain = shipped["taxation"].text
    changed = add_effect(plain, measure, activity, effect)
    later = [Publication("taxation", changed if k % 2 else plain, (today + timedelta(days=30 * k)).isoformat(),
                         "bench", f"bench.publish: publication {k}") for k in range(1, PUBLISHES_AFTER + 1)]
    return first, later


def _sample(population: Path, n: int) -> list[dict]:
    out = []
    with open(population, encoding="utf-8") as handle:
        for line in handle:
            out.append(json.loads(line))
            if len(out) >= n:
                break
    return out


def materialise_cost(population: Path, args) -> dict:
    """µs per subject of store.rows.materialise over a sample: one era, then six."""
    import engine
    from catalog.vocabulary import load_vocabulary
    from store.history import CatalogHistory
    from store.rows import materialise

    first, later = _shipped_and_after(date.today())
    vocab = load_vocabulary()
    bundles = [engine.parse_bundle(obj, vocab=vocab) for obj in _sample(population, args.sample)]
    cache: dict = {}
    histories = {"before": CatalogHistory.build(first, vocab, cache),
                 "after": CatalogHistory.build(first + later, vocab, cache)}
    say(f"materialise: {len(bundles):,} bundles, {len(histories['before'].eras)} era(s) against "
        f"{len(histories['after'].eras)}, best of {args.repeats} interleaved runs ...")
    rows = {name: sum(len(materialise(h, b).rows) for b in bundles) for name, h in histories.items()}  # warm-up
    runs: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(args.repeats):
        for name, history in histories.items():
            t0 = time.perf_counter()
            for bundle in bundles:
                materialise(history, bundle)
            runs[name].append((time.perf_counter() - t0) / len(bundles) * 1e6)
    out = {"sample": len(bundles), "repeats": args.repeats,
           "eras": {k: len(h.eras) for k, h in histories.items()},
           "effective_from": [p.effective_from for p in later], "rows": rows}
    for name, samples in runs.items():
        out[f"{name}_us_per_subject"] = round(min(samples), 1)
        out[f"{name}_runs_us"] = [round(s, 1) for s in samples]
    out["ratio"] = round(out["after_us_per_subject"] / out["before_us_per_subject"], 3)
    say(f"materialise: {out['before_us_per_subject']} µs/subject with one era, {out['after_us_per_subject']} "
        f"after five publishes (x{out['ratio']}); rows {rows['before']:,} -> {rows['after']:,}")
    return out


def import_cost(backend: str, population: Path, args, run_id: str) -> dict:
    """`jointcredit import` of the sample into a fresh store, and into one with five publications in force."""
    import engine  # noqa: F401 - the package first
    from store.service import Service
    from store.settings import Settings

    sample = bs.CACHE / f"run-{run_id}-sample-{args.sample}.jsonl"
    sample.write_text("".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in _sample(population, args.sample)),
                      encoding="utf-8")
    _, later = _shipped_and_after(date.today())
    out: dict = {"sample": args.sample}
    try:
        for name, publications in (("before", []), ("after", later)):
            db = Database(backend, f"{run_id}_{name}", args.pg_admin_url)
            try:
                url = db.create()
                service = Service(Settings(database_url=url, load_demo=False))  # the shipped rulebooks, loaded
                try:
                    for p in publications:  # on an empty store: no subject to rebuild
                        with service.writing("bench.publish: five publications"):
                            service.put_in_force([p])
                finally:
                    service.close()
                say(f"import ({name} the {len(later)} publications): {args.sample:,} subjects ...")
                imported = bs.run_import(url, sample)
                out[name] = {k: imported[k] for k in ("seconds", "cpu_user_s", "cpu_sys_s", "peak_rss_mb", "summary")}
                out[name]["publications"] = len(publications)
            finally:
                db.drop()
    finally:
        sample.unlink(missing_ok=True)
    out["ratio"] = round(out["after"]["seconds"] / out["before"]["seconds"], 3)
    out["cpu_ratio"] = round((out["after"]["cpu_user_s"] + out["after"]["cpu_sys_s"])
                             / max(out["before"]["cpu_user_s"] + out["before"]["cpu_sys_s"], 1e-9), 3)
    return out


# -- the verdicts ----------------------------------------------------------------------------------
def _le(value, limit):
    return None if value is None else value <= limit


def summary(report: dict) -> dict:
    n = report["population"]["subjects"]
    import_s = report.get("import", {}).get("seconds")
    s: dict = {"backend": report["meta"]["backend"], "subjects": n, "import_s": import_s, "phases": {}}
    for name, p in report.get("phases", {}).items():
        c, st = p.get("checks", {}), p.get("store", {})
        at_1m = round(p["wall_s"] * 1_000_000 / n, 1) if n else None
        share = round(p["wall_s"] / import_s, 3) if import_s else None
        growth = st.get("db_growth_less_decision_log_mb")
        s["phases"][name] = {
            "wall_s": p["wall_s"], "subjects_done": p.get("subjects_done"), "p50_ms": c.get("p50_ms"),
            "p99_ms": c.get("p99_ms"), "max_ms": c.get("max_ms"), "non_200": c.get("non_200"),
            "db_size_mb_after": st.get("db_size_mb_after"), "wall_s_at_1m_linear": at_1m, "share_of_import": share,
            "growth_mb": growth, "growth_allowed_mb": st.get("growth_allowed_mb"),
            "targets": {
                f"publish_le_{TARGET_PUBLISH_S_AT_1M:g}s_at_1m": _le(at_1m, TARGET_PUBLISH_S_AT_1M),
                f"publish_le_{TARGET_PUBLISH_IMPORT_SHARE:g}_of_import": _le(share, TARGET_PUBLISH_IMPORT_SHARE),
                f"p99_le_{TARGET_P99_MS:g}ms": _le(c.get("p99_ms"), TARGET_P99_MS),
                f"max_le_{TARGET_MAX_MS:g}ms": _le(c.get("max_ms"), TARGET_MAX_MS),
                "no_503": None if c.get("status_503") is None else c["status_503"] == 0,
                "growth_le_changed_obligations": _le(growth, st.get("growth_allowed_mb")),
            }}
    m = report.get("materialise") or {}
    s["materialise_ratio"] = m.get("ratio")
    s["import_ratio"] = (report.get("import_after_publishes") or {}).get("ratio")
    s["targets"] = {f"materialise_after_5_publishes_le_{TARGET_MATERIALISE_RATIO:g}x":
                    _le(m.get("ratio"), TARGET_MATERIALISE_RATIO)}
    return s


def _problems(report: dict) -> list[str]:
    problems = []
    run = report.get("checks") or {}
    if run.get("mismatches"):
        problems.append(f"{run['mismatches']} answers differ from the engine's own evaluation: "
                        f"{run.get('mismatch_samples', [])[:3]}")
    if run.get("transport_errors"):
        problems.append(f"{run['transport_errors']} unreadable responses: {run.get('error_samples')}")
    if run.get("truncated"):
        problems.append("the load generator stopped at its time bound (--max-seconds) before the phases ended")
    for name, p in report.get("phases", {}).items():
        if p.get("rebuild_state") != "done":
            problems.append(f"{name}: rebuild {p.get('rebuild_state')}")
    return problems


def _meta(args, backend: str) -> dict:
    return {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "backend": backend,
            "subjects": args.subjects, "seed": args.seed, "as_of": bs.AS_OF, "rate": args.rate,
            "workers": args.workers, "pool": args.pool, "baseline_s": args.baseline, "sample": args.sample,
            "client": args.client, "max_seconds": args.max_seconds,
            "pinning": {"server": "not pinned" if args.server_cpu is None else args.server_cpu,
                        "load_generator": bs.CLIENT_CPU},
            **bs.machine_meta()}


# -- report --------------------------------------------------------------------------------------
def print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 120))
    s, meta = report["summary"], report["meta"]
    imp = report.get("import", {})
    console.print(f"[bold]{meta['backend']}[/]: {s['subjects']:,} subjects imported in {imp.get('seconds', '-')} s; "
                  f"checks open loop at {meta['rate']:g}/s; server "
                  + ("not pinned" if meta["pinning"]["server"] == "not pinned" else f"on CPU {meta['pinning']['server']}")
                  + f", {meta['workers']} worker(s)")
    columns = {"idle": report.get("idle", {}), **report.get("phases", {})}
    heads = {"idle": "before (idle)", "a_publish_taxation": "a: publish taxation",
             "b_publish_procurement": "b: publish procurement", "c_rollback_taxation": "c: roll back taxation"}

    def table_of(title: str) -> Table:
        table = Table(title=title)
        table.add_column("")
        for name in columns:
            table.add_column(heads.get(name, name), justify="right")
        return table

    def row(table, label, get, fmt="{:,}"):
        cells = []
        for name, p in columns.items():
            try:
                value = get(name, p)
            except (KeyError, TypeError):
                value = None
            cells.append("-" if value is None else fmt.format(value))
        table.add_row(label, *cells)

    table = table_of(f"publishing while checks run, {meta['backend']}, {s['subjects']:,} subjects")
    row(table, "seconds (request to rebuild done)", lambda n, p: p.get("wall_s", p.get("seconds")), "{:,.1f}")
    row(table, "  of which the HTTP answer", lambda n, p: p.get("response_s"), "{:,.1f}")
    row(table, "subjects re-evaluated (done/total)",
        lambda n, p: None if "subjects_done" not in p else f"{p['subjects_done']:,}/{p['subjects_total']:,}", "{}")
    row(table, "checks due in the phase", lambda n, p: p["checks"]["count"])
    row(table, "  p50 ms", lambda n, p: p["checks"]["p50_ms"], "{:.2f}")
    row(table, "  p99 ms", lambda n, p: p["checks"]["p99_ms"], "{:.2f}")
    row(table, "  max ms", lambda n, p: p["checks"]["max_ms"], "{:.1f}")
    row(table, "  non-200 (of which 503)", lambda n, p: f"{p['checks']['non_200']} ({p['checks']['status_503']})", "{}")
    row(table, "machine CPUs busy", lambda n, p: p["cpu_watch"]["machine_busy_cpus"], "{:.2f}")
    row(table, "database MB after", lambda n, p: p["store"]["db_size_mb_after"], "{:,.1f}")
    if meta["backend"] == "sqlite":
        row(table, "  of which the -wal file, MB", lambda n, p: p["store"]["wal_mb_after"], "{:,.1f}")
    row(table, "  growth, decision log aside, MB", lambda n, p: p["store"]["db_growth_less_decision_log_mb"], "{:,.2f}")
    row(table, "  allowed for the changed obligations, MB", lambda n, p: p["store"]["growth_allowed_mb"], "{:,.2f}")
    row(table, "changed obligations (edited measure)", lambda n, p: p["store"]["changed_obligations"])
    row(table, "answering rows appeared / went",
        lambda n, p: f"{p['store']['rows_appeared']:,} / {p['store']['rows_went']:,}", "{}")
    row(table, "obligation rows stored after", lambda n, p: p["store"]["stored_rows_after"])
    console.print(table)

    def mark(ok):
        return "-" if ok is None else ("[green]pass[/]" if ok else "[bold red]FAIL[/]")

    verdicts = table_of("targets (shown, not asserted)")
    phases = s["phases"]
    idle = (report.get("idle") or {}).get("checks") or {}
    ms = lambda v: None if v is None else f"{v:,.1f} ms"  # noqa: E731
    targets = [  # label, the verdict's key, the figure (of a phase's summary; of the idle checks)
        (f"publish <= {TARGET_PUBLISH_S_AT_1M:g} s at 1M subjects (linear from {s['subjects']:,})",
         f"publish_le_{TARGET_PUBLISH_S_AT_1M:g}s_at_1m", lambda p: f"{p['wall_s_at_1m_linear']:,.0f} s", None),
        (f"publish <= {TARGET_PUBLISH_IMPORT_SHARE:g} of the import ({s['import_s']} s)",
         f"publish_le_{TARGET_PUBLISH_IMPORT_SHARE:g}_of_import", lambda p: f"{p['share_of_import']:.2f}", None),
        (f"checks p99 <= {TARGET_P99_MS:g} ms", f"p99_le_{TARGET_P99_MS:g}ms", lambda p: ms(p["p99_ms"]),
         ms(idle.get("p99_ms"))),
        (f"checks max <= {TARGET_MAX_MS:g} ms", f"max_le_{TARGET_MAX_MS:g}ms", lambda p: ms(p["max_ms"]),
         ms(idle.get("max_ms"))),
        ("no 503", "no_503", lambda p: f"{p['non_200']} non-200", None),
        ("database growth within the changed obligations", "growth_le_changed_obligations",
         lambda p: f"{p['growth_mb']} of {p['growth_allowed_mb']} MB", None),
    ]
    for label, key, figure, at_idle in targets:
        def cell(name, p, key=key, figure=figure, at_idle=at_idle):
            if name == "idle":
                return at_idle
            try:
                shown = figure(phases[name]) + " "
            except (KeyError, TypeError, ValueError):
                shown = ""
            return shown + mark(phases[name]["targets"][key])

        row(verdicts, label, cell, "{}")
    console.print(verdicts)
    m = report.get("materialise") or {}
    if m:
        console.print(f"materialise ({m['sample']:,} bundles, best of {m['repeats']}): {m['before_us_per_subject']:,} "
                      f"µs/subject with {m['eras']['before']} era, {m['after_us_per_subject']:,} with "
                      f"{m['eras']['after']} (five publishes): x{m['ratio']} (target <= {TARGET_MATERIALISE_RATIO:g}): "
                      f"{mark(s['targets'][f'materialise_after_5_publishes_le_{TARGET_MATERIALISE_RATIO:g}x'])}; "
                      f"rows {m['rows']['before']:,} -> {m['rows']['after']:,}")
    i = report.get("import_after_publishes") or {}
    if i:
        console.print(f"import ({i['sample']:,} subjects, `jointcredit import`): {i['before']['seconds']} s before, "
                      f"{i['after']['seconds']} s after five publishes: x{i['ratio']} wall, x{i['cpu_ratio']} CPU")
    for p in report["problems"]:
        console.print(f"[bold red]PROBLEM[/] {p}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.publish", description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--seed", type=int, default=None, help="population seed (default: bench.population's)")
    parser.add_argument("--rate", type=float, default=100.0, help="checks per second, open loop")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--server-cpu", type=int, default=None,
                        help="pin the server (and the rule workers it starts) to this CPU, as bench.service does "
                             "(default: not pinned)")
    parser.add_argument("--pool", type=int, default=2000, help="distinct subjects the checks are drawn from")
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds of checks before the first publish")
    parser.add_argument("--gap", type=float, default=2.0, help="seconds between phases")
    parser.add_argument("--sample", type=int, default=2000, help="bundles for the materialise and import cost")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the materialise timing, best kept")
    parser.add_argument("--no-row-diff", dest="row_diff", action="store_false",
                        help="skip hashing the answering obligation rows before and after each phase")
    parser.add_argument("--client", choices=("raw",), default="raw")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="time bound of the whole check run")
    parser.add_argument("--quiet-wait", type=float, default=120.0,
                        help="before each import, wait at most this long for other processes to leave the CPUs alone")
    parser.add_argument("--pg-admin-url", default=bs.PG_ADMIN_URL)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--out-dir", default=str(RESULTS))
    args = parser.parse_args(argv)

    from bench.population import DEFAULT_SEED

    args.seed = DEFAULT_SEED if args.seed is None else args.seed
    args.sample = min(args.sample, args.subjects)
    bs.QUIET_WAIT_S = args.quiet_wait
    host = args.pg_admin_url.rsplit("@", 1)[-1].split("/")[0].split(":")[0]
    if host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--pg-admin-url must point at a loopback address")
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    run_id = f"{datetime.now():%Y%m%d%H%M%S}_{uuid.uuid4().hex[:6]}"
    population, generate_s = bs.population_file(args.subjects, args.seed)
    status = 0
    for backend in backends:
        say(f"=== {backend}: publishing with {args.subjects:,} subjects ===")
        report = run_backend(backend, args, population, generate_s, run_id)
        bs.write_report(Path(args.out_dir) / f"publish-{backend}.json", report, print_table)
        status |= 1 if report["problems"] else 0
    return status


if __name__ == "__main__":
    sys.exit(main())
