"""Service benchmark: import N subjects, then eligibility checks over loopback HTTP against one
server process, beside a bare FastAPI endpoint on the same server settings.

    python -m bench.service --subjects 1000000 --backend sqlite|postgresql|both \
        [--checks 20000] [--concurrency 8] [--seed 20250630]
    python -m bench.service --profile-import 50000 --backend sqlite     # cProfile of an import

Per backend, one after the other:

1. the population (bench.population, JSONL) is generated once per (n, seed) and cached in
   $JC_BENCH_CACHE (default /tmp/jointcredit-bench); not timed;
2. a fresh database (SQLite: a new file; PostgreSQL: a new database jc_bench_<id> on
   127.0.0.1:5432, dropped afterwards) gets the population through the real CLI,
   `jointcredit import FILE`, in a child process: wall time, and the child's peak RSS and CPU
   time from os.wait4 (its own rusage, no other child mixed in); the CLI's progress lines are
   echoed with the elapsed time, and kept, so a rate that falls as the store grows shows;
3. a system key is made with `jointcredit keys create --role system`;
4. ONE uvicorn process (`--workers 1`, uvloop/httptools as uvicorn picks them, warning log,
   no access log) serves `api.app:create_app`, pinned to CPU 0; the load generator
   (bench.loadgen, its own process) is pinned to CPU 1. Then the same uvicorn options serve
   bench.bare_app, after the first server has stopped, so the two never share the CPU. On
   PostgreSQL the database server's own processes are not pinned: they share both cores;
5. per server: a warm-up of 10,000 checks (the page caches), then `--checks` checks with `--concurrency` in
   flight (throughput, and latency under that load), then `--latency-checks` at concurrency
   1 (latency alone), then `--rate-checks` sent open loop at half the service's own
   throughput (latency at a load it sustains, counted from each request's due time; the bare
   apps get the same rate). Subjects are drawn from the population (a share `--listed-share` of
   them with a live black-list entry, the rest not), activities at random among
   government_procurement, public_bidding, senior_management and honours, as of 2025-06-30.
   Every response must be 200; every answer's `eligible` is compared with the engine's own
   evaluation of the same bundle (in memory, not through the store);
6. the service's per-check cost is then taken apart in-process (key lookup, obligations
   read, decision-log append, response model), pinned to CPU 0, with a cProfile of the check;
7. a table, and bench/results/service-<backend>.json.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import platform
import pstats
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CACHE = Path(os.environ.get("JC_BENCH_CACHE", "/tmp/jointcredit-bench"))
PYTHON = sys.executable
JOINTCREDIT = str(Path(sys.executable).parent / "jointcredit")
AS_OF = "2025-06-30"
ACTIVITIES = ("government_procurement", "public_bidding", "senior_management", "honours")
SERVER_CPU, CLIENT_CPU = 0, 1
UVICORN_OPTIONS = ["--factory", "--host", "127.0.0.1", "--workers", "1", "--log-level", "warning", "--no-access-log"]
IMPORT_TARGET_S = 300
IMPORT_TARGET_BACKEND = "sqlite"  # the issue sets the import's target on SQLite only
QUIET_WAIT_S = 900.0  # --quiet-wait
TARGET_P50_MS, TARGET_P99_MS, TARGET_RATIO = 2.0, 10.0, 0.5
OPEN_LOOP_CONNECTIONS = 64  # enough that the client never holds back a due request
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

_T0 = time.perf_counter()


def say(message: str) -> None:
    elapsed = time.perf_counter() - _T0
    print(f"[{datetime.now():%H:%M:%S} +{elapsed:7.1f}s] {message}", file=sys.stderr, flush=True)


def _mb(kb: float | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


# -- population ----------------------------------------------------------------------------
def population_file(n: int, seed: int) -> tuple[Path, float | None]:
    """The cached JSONL population for (n, seed); generated on first use (seconds, or None if cached)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"population-{n}-seed{seed}.jsonl"
    if path.exists():
        say(f"population: cached {path}")
        return path, None
    say(f"population: generating {n:,} subjects (seed {seed}) into {path} ...")
    part = path.with_suffix(".jsonl.part")
    t0 = time.perf_counter()
    subprocess.run([PYTHON, "-m", "bench.population", str(n), str(part), "--seed", str(seed)], cwd=ROOT, check=True)
    part.rename(path)
    seconds = time.perf_counter() - t0
    say(f"population: generated in {seconds:.1f}s ({path.stat().st_size / 2**20:,.0f} MB)")
    return path, seconds


def _is_listed(bundle: dict) -> bool:
    """A live black-list entry listed within the year before AS_OF (the population's 8%)."""
    from bench.population import BLACK_LISTS

    floor = (date.fromisoformat(AS_OF) - timedelta(days=366)).isoformat()
    return any(r.get("kind") == "list_entry" and r.get("list") in BLACK_LISTS
               and r.get("status") in ("active", "disputed") and (r.get("listed_on") or "") >= floor
               for r in bundle.get("records", ()))


def sample_pool(path: Path, n: int, pool: int, listed_share: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Bundles of `pool` subjects from the file: about listed_share of them listed, the rest not."""
    rng = random.Random(seed ^ 0x5EED)
    want_listed = int(round(pool * listed_share))
    want_clean = pool - want_listed
    p_clean = min(1.0, 3.0 * want_clean / max(n, 1))
    listed, clean = [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            # one draw per line: a line is a clean candidate with probability p_clean, whatever it holds
            drawn = rng.random() < p_clean
            maybe_listed = '"listed_on":"2024-' in line or '"listed_on":"2025-' in line
            if not maybe_listed and not drawn:
                continue
            bundle = json.loads(line)
            if _is_listed(bundle):
                listed.append(bundle)
            elif drawn:
                clean.append(bundle)
    rng.shuffle(listed)
    rng.shuffle(clean)
    return listed[:want_listed], clean[:want_clean]


def expected_barred(bundles: list[dict]) -> dict[str, set[str]]:
    """Per subject, the activities the engine itself (evaluating the bundle in memory) bars on AS_OF."""
    import engine
    from engine.eligibility import BARRING_EFFECTS
    from engine.resources import default_rulebook_dir

    evaluator = engine.Evaluator(engine.compile_rulebooks([default_rulebook_dir()]))
    as_of = date.fromisoformat(AS_OF)
    out: dict[str, set[str]] = {}
    for obj in bundles:
        code = obj["subject"]["code"]
        evaluation = evaluator.evaluate(engine.parse_bundle(obj), as_of=as_of)
        out[code] = {e.activity for a in evaluation.actions
                     if a.target_code == code and a.measure.kind == "punishment"
                     for e in a.measure.effects if e.effect in BARRING_EFFECTS}
    return out


def build_requests(path: Path, n: int, total: int, pool: int, listed_share: float, seed: int) -> tuple[list[dict], dict]:
    say(f"requests: drawing a pool of {pool:,} subjects ({listed_share:.0%} listed) and {total:,} checks ...")
    t0 = time.perf_counter()
    listed, clean = sample_pool(path, n, pool, listed_share, seed)
    barred = expected_barred(listed + clean)
    rng = random.Random(seed ^ 0xC0FFEE)
    listed_codes = {b["subject"]["code"] for b in listed}
    entries = []
    for _ in range(total):
        bundle = rng.choice(listed) if listed and rng.random() < len(listed) / (len(listed) + len(clean)) else rng.choice(clean)
        code = bundle["subject"]["code"]
        activity = rng.choice(ACTIVITIES)
        entries.append({"subject": code, "activity": activity, "as_of": AS_OF, "listed": code in listed_codes,
                        "expect_eligible": activity not in barred[code]})
    listed_entries = [e for e in entries if e["listed"]]
    info = {"pool_listed": len(listed), "pool_clean": len(clean), "requests": len(entries),
            "listed_requests": len(listed_entries),
            "expected_ineligible_listed_pct": round(100 * sum(not e["expect_eligible"] for e in listed_entries)
                                                    / len(listed_entries), 2) if listed_entries else None,
            "expected_ineligible_clean": sum(not e["expect_eligible"] for e in entries if not e["listed"]),
            "activities": list(ACTIVITIES), "as_of": AS_OF, "seconds": round(time.perf_counter() - t0, 1)}
    say(f"requests: {info['pool_listed']:,} listed + {info['pool_clean']:,} other subjects; the engine expects "
        f"{info['expected_ineligible_listed_pct']}% of checks on listed subjects to be ineligible ({info['seconds']}s)")
    return entries, info


# -- databases -----------------------------------------------------------------------------
class Database:
    """A fresh database for one run: a new SQLite file, or a new PostgreSQL database."""

    def __init__(self, backend: str, run_id: str, pg_admin_url: str, existing: str | None = None):
        self.backend, self.run_id, self.pg_admin_url = backend, run_id, pg_admin_url
        self.existing = existing
        self.url = existing
        self.path: Path | None = None
        self.name: str | None = None

    def create(self) -> str:
        if self.existing:
            if self.existing.startswith("sqlite:///"):
                self.path = Path(self.existing[len("sqlite:///"):])
            else:
                self.name = self.existing.rsplit("/", 1)[-1]
            return self.existing
        if self.backend == "sqlite":
            directory = CACHE / f"run-{self.run_id}"
            directory.mkdir(parents=True, exist_ok=True)
            self.path = directory / "jointcredit.sqlite"
            self.url = f"sqlite:///{self.path}"
        else:
            import psycopg

            self.name = f"jc_bench_{self.run_id}"
            with psycopg.connect(self.pg_admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            self.url = self.pg_admin_url.rsplit("/", 1)[0] + "/" + self.name
        return self.url

    def size_mb(self) -> float | None:
        try:
            if self.backend == "sqlite" and self.path:
                return round(sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*")) / 2**20, 1)
            import psycopg

            with psycopg.connect(self.pg_admin_url, autocommit=True) as conn:
                return round(conn.execute("SELECT pg_database_size(%s)", (self.name,)).fetchone()[0] / 2**20, 1)
        except Exception:  # noqa: BLE001 - a figure we can live without
            return None

    def drop(self) -> None:
        if self.existing:
            return
        if self.backend == "sqlite":
            if self.path:
                shutil.rmtree(self.path.parent, ignore_errors=True)
            return
        import psycopg

        with psycopg.connect(self.pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _env(url: str) -> dict:
    return {**os.environ, "JOINTCREDIT_DATABASE_URL": url, "JOINTCREDIT_LOAD_DEMO": "0", "PYTHONUNBUFFERED": "1"}


# -- import --------------------------------------------------------------------------------
_PROGRESS = re.compile(r"imported ([\d,]+) subjects \(")


def run_import(url: str, path: Path) -> dict:
    """`jointcredit import FILE` in a child process; wall time and that child's own rusage."""
    quiet = wait_for_quiet(QUIET_WAIT_S, what=" (import)")
    say(f"import: jointcredit import {path.name} into {url}")
    watch = CpuWatch()
    progress: list[list[float]] = []
    out_lines: list[str] = []
    t0 = time.perf_counter()
    every_cpu = set(range(os.cpu_count() or 1))  # this process is pinned to the client's CPU: not its children
    proc = subprocess.Popen([JOINTCREDIT, "import", str(path)], cwd=ROOT, env=_env(url), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1,
                            preexec_fn=lambda: os.sched_setaffinity(0, every_cpu))

    def pump(stream, sink: list[str], echo: bool) -> None:
        for line in stream:
            line = line.rstrip("\n")
            sink.append(line)
            match = _PROGRESS.search(line)
            if match:
                progress.append([round(time.perf_counter() - t0, 1), int(match.group(1).replace(",", ""))])
            if echo:
                say(f"  import | {line}")

    err_lines: list[str] = []
    threads = [threading.Thread(target=pump, args=(proc.stdout, out_lines, True), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, err_lines, True), daemon=True)]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    for t in threads:
        t.join(timeout=10)
    summary = next((line for line in reversed(out_lines) if line.startswith("imported ")), None)
    rates = []
    last_t, last_n = 0.0, 0
    for t, n in progress:
        if t > last_t:
            rates.append({"at_subjects": n, "elapsed_s": t, "interval_per_s": round((n - last_n) / (t - last_t), 1)})
        last_t, last_n = t, n
    result = {
        "command": f"jointcredit import {path}",
        "exit_code": proc.returncode,
        "seconds": round(wall, 1),
        "peak_rss_mb": _mb(usage.ru_maxrss),
        "peak_rss_source": "os.wait4 rusage of the import process (ru_maxrss)",
        "cpu_user_s": round(usage.ru_utime, 1),
        "cpu_sys_s": round(usage.ru_stime, 1),
        "summary": summary,
        "progress": rates,
        "errors": [line for line in err_lines if not _PROGRESS.search(line)][:20],
        "quiet_wait": quiet,
        "cpu_watch": watch.done(usage.ru_utime + usage.ru_stime),
    }
    say(f"import: {wall:.1f}s, peak RSS {result['peak_rss_mb']} MB, exit {proc.returncode}")
    if proc.returncode != 0:
        raise RuntimeError(f"import failed with exit code {proc.returncode}: {result['errors'][:5]}")
    return result


def create_key(url: str, role: str = "system", name: str = "bench-service") -> str:
    done = subprocess.run([JOINTCREDIT, "keys", "create", "--role", role, "--name", name], cwd=ROOT,
                          env=_env(url), capture_output=True, text=True, check=True)
    key = done.stdout.strip().splitlines()[-1].strip()
    if not key.startswith("jc_"):
        raise RuntimeError(f"unexpected output of keys create: {done.stdout!r} {done.stderr!r}")
    return key


# -- servers -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _proc_status(pid: int) -> dict:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    out = {}
    for key in ("VmRSS", "VmHWM", "Threads"):
        match = re.search(rf"^{key}:\s+(\d+)", text, re.M)
        if match:
            out[key] = int(match.group(1))
    return out


def _machine_busy_s() -> float | None:
    """CPU seconds the whole machine has been busy (all CPUs, from /proc/stat)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu_s() -> float:
    """CPU seconds of the PostgreSQL server's processes (read from /proc; they are not ours)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text[:64]:
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class CpuWatch:
    """Who used the machine's CPUs over a phase: ours, PostgreSQL, and everybody else."""

    def __init__(self):
        self.t0, self.busy0, self.pg0 = time.perf_counter(), _machine_busy_s(), _postgres_cpu_s()

    def done(self, ours_s: float) -> dict:
        wall = time.perf_counter() - self.t0
        busy, pg = _machine_busy_s(), _postgres_cpu_s()
        if busy is None or self.busy0 is None or wall <= 0:
            return {}
        total = busy - self.busy0
        pg_s = pg - self.pg0
        others = max(0.0, total - ours_s - pg_s)
        return {"machine_busy_cpus": round(total / wall, 2), "postgres_cpus": round(pg_s / wall, 2),
                "others_cpus": round(others / wall, 2)}


def wait_for_quiet(limit_s: float, threshold: float = 0.25, what: str = "") -> dict:
    """Wait (at most limit_s) until processes other than ours use under `threshold` of a CPU."""
    t0 = time.perf_counter()
    said = False
    while True:
        busy0 = _machine_busy_s()
        time.sleep(2.0)
        busy1 = _machine_busy_s()
        load = None if busy0 is None or busy1 is None else (busy1 - busy0) / 2.0
        waited = time.perf_counter() - t0
        if load is None or load < threshold or waited >= limit_s:
            if said or (load is not None and load >= threshold):
                say(f"quiet-wait{what}: machine at {load:.2f} CPUs after {waited:.0f}s"
                    + (" (proceeding anyway)" if load is not None and load >= threshold else ""))
            return {"waited_s": round(waited, 1), "busy_cpus_before": None if load is None else round(load, 2)}
        if not said:
            say(f"quiet-wait{what}: other processes use {load:.2f} CPUs; waiting (at most {limit_s:.0f}s) ...")
            said = True


class Server:
    """One uvicorn process serving `app`, pinned to one CPU (cpu=None: free to use every CPU,
    whatever this process is pinned to), with `workers` uvicorn worker processes."""

    def __init__(self, name: str, app: str, env: dict, cpu: int | None, log_dir: Path, workers: int = 1):
        self.name, self.app, self.env, self.cpu = name, app, env, cpu
        self.port = free_port()
        self.log_path = log_dir / f"server-{name}.log"
        self.proc: subprocess.Popen | None = None
        options = list(UVICORN_OPTIONS)
        options[options.index("--workers") + 1] = str(workers)
        self.command = [PYTHON, "-m", "uvicorn", app, *options, "--port", str(self.port)]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 900) -> float:
        log = open(self.log_path, "w")
        cpus = set(range(os.cpu_count() or 1)) if self.cpu is None else {self.cpu}
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     preexec_fn=lambda: os.sched_setaffinity(0, cpus))
        log.close()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} server exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if time.perf_counter() - t0 > timeout:
                    self.stop()
                    raise RuntimeError(f"{self.name} server not ready after {timeout}s")
                time.sleep(0.2)
        return time.perf_counter() - t0

    def cpu_s(self) -> float | None:
        return _proc_cpu_s(self.proc.pid) if self.proc else None

    def status(self) -> dict:
        return _proc_status(self.proc.pid) if self.proc else {}

    def stop(self) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # uvicorn: graceful shutdown (runs the lifespan's exit)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def smoke(url: str, key: str | None, entry: dict) -> dict:
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {k: entry[k] for k in ("subject", "activity", "as_of")}
    response = httpx.post(url, json=body, headers=headers, timeout=60)
    if response.status_code != 200:
        raise RuntimeError(f"smoke check {url} answered {response.status_code}: {response.text[:500]}")
    return response.json()


def loadgen_command(server: Server, path: str, key: str | None, requests_file: Path, out: Path, *, checks: int,
                    concurrency: int, offset: int, sanity: bool, client: str, max_seconds: float,
                    rate: float | None = None, extra: tuple[str, ...] = ()) -> tuple[list[str], dict]:
    """The bench.loadgen command line (pinned to CLIENT_CPU, no warm-up) and its environment (the key)."""
    cmd = [PYTHON, "-m", "bench.loadgen", "--url", server.base + path, "--requests", str(requests_file),
           "--checks", str(checks), "--warmup", "0", "--offset", str(offset), "--concurrency", str(concurrency),
           "--client", client, "--max-seconds", str(max_seconds), "--cpu", str(CLIENT_CPU), "--out", str(out), *extra]
    if not sanity:
        cmd.append("--no-sanity")
    if rate:
        cmd += ["--rate", f"{rate:g}"]
    env = {**os.environ}
    if key:
        env["JC_BENCH_KEY"] = key
    else:
        env.pop("JC_BENCH_KEY", None)
    return cmd, env


def loadgen(server: Server, path: str, key: str | None, requests_file: Path, *, checks: int, concurrency: int,
            offset: int, sanity: bool, client: str, max_seconds: float, out_dir: Path, label: str,
            rate: float | None = None) -> dict:
    out = out_dir / f"loadgen-{server.name}-{label}.json"
    cmd, env = loadgen_command(server, path, key, requests_file, out, checks=checks, concurrency=concurrency,
                               offset=offset, sanity=sanity, client=client, max_seconds=max_seconds, rate=rate)
    quiet = wait_for_quiet(QUIET_WAIT_S, what=f" ({server.name} {label})") if label != "warmup" else None
    cpu0 = server.cpu_s()
    watch = CpuWatch()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu1 = server.cpu_s()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed with exit code {proc.returncode}")
    result = json.loads(out.read_text())
    result["cpu_watch"] = watch.done((cpu1 or 0) - (cpu0 or 0) + usage.ru_utime + usage.ru_stime)
    result["cpu_watch"]["note"] = "over the whole load-generator process, start-up included"
    if quiet is not None:
        result["quiet_wait"] = quiet
    if cpu0 is not None and cpu1 is not None:
        result["server_cpu_s"] = round(cpu1 - cpu0, 3)
        result["server_cpu_us_per_request"] = round((cpu1 - cpu0) / max(result["count"], 1) * 1e6, 1)
        result["server_cpu_utilisation"] = round((cpu1 - cpu0) / result["wall_s"], 3) if result["wall_s"] else None
    return result


def measure_server(server: Server, path: str, key: str | None, requests_file: Path, entries: list[dict], *,
                   checks: int, warmup: int, concurrency: int, latency_checks: int, sanity: bool, client: str,
                   max_seconds: float, out_dir: Path, rate: float | None = None, rate_checks: int = 0) -> dict:
    common = dict(sanity=sanity, client=client, max_seconds=max_seconds, out_dir=out_dir)
    result: dict = {"app": server.app, "path": path, "command": " ".join(server.command[1:]), "cpu": server.cpu}
    say(f"{server.name}: warm-up {warmup:,} checks at concurrency {concurrency}")
    result["warmup"] = _brief(loadgen(server, path, key, requests_file, checks=warmup, concurrency=concurrency,
                                      offset=0, label="warmup", **common))
    say(f"{server.name}: {checks:,} checks at concurrency {concurrency} ...")
    result["load"] = loadgen(server, path, key, requests_file, checks=checks, concurrency=concurrency,
                             offset=warmup, label=f"c{concurrency}", **common)
    _report_run(server.name, result["load"])
    say(f"{server.name}: {latency_checks:,} checks at concurrency 1 ...")
    result["c1"] = loadgen(server, path, key, requests_file, checks=latency_checks, concurrency=1,
                           offset=warmup + checks, label="c1", **common)
    _report_run(server.name, result["c1"])
    if rate and rate_checks:
        say(f"{server.name}: {rate_checks:,} checks sent open loop at {rate:,.0f}/s ...")
        result["rate"] = loadgen(server, path, key, requests_file, checks=rate_checks, concurrency=OPEN_LOOP_CONNECTIONS,
                                 offset=warmup + checks + latency_checks, label="rate", rate=rate, **common)
        _report_run(server.name, result["rate"])
    status = server.status()
    result["server_rss_mb_after"] = _mb(status.get("VmRSS"))
    result["server_peak_rss_mb"] = _mb(status.get("VmHWM"))
    result["server_threads"] = status.get("Threads")
    return result


def _brief(run: dict) -> dict:
    return {k: run.get(k) for k in ("count", "wall_s", "per_s", "p50_ms", "p99_ms", "non_200", "truncated")}


def _report_run(name: str, run: dict) -> None:
    say(f"{name}: " + (f"open loop at {run['rate']:,.0f}/s" if run.get("rate") else f"c{run['concurrency']}")
        + f": {run['count']:,} in {run['wall_s']}s = {run['per_s']:,}/s; "
        f"p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms, max {run['max_ms']} ms; non-200 {run['non_200']}; "
        f"server CPU {run.get('server_cpu_utilisation')}, client CPU {run.get('client_cpu_utilisation')}"
        + (f"; mismatches {run['mismatches']}" if "mismatches" in run else "")
        + ("; TRUNCATED by the time bound" if run.get("truncated") else ""))


# -- where the server's time goes ------------------------------------------------------------
def components(url: str, key: str, requests_file: str, out: str, n: int) -> None:
    """In-process, pinned to SERVER_CPU: the per-check cost of each part of the service."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {SERVER_CPU})
    from api.schemas import EligibilityAnswer
    from store.service import Service
    from store.settings import Settings

    entries = json.loads(Path(requests_file).read_text())[:n]
    service = Service(Settings(database_url=url, load_demo=False))

    async def timed(label, fn):
        """fn(entry) per entry, awaited when it is a coroutine, on the loop as in the server."""
        samples = []
        for e in entries:
            t0 = time.perf_counter()
            result = fn(e)
            if asyncio.iscoroutine(result):
                await result
            samples.append(time.perf_counter() - t0)
        samples.sort()
        return {"part": label, "mean_us": round(sum(samples) / len(samples) * 1e6, 1),
                "p50_us": round(samples[len(samples) // 2] * 1e6, 1), "p99_us": round(samples[int(len(samples) * 0.99)] * 1e6, 1)}

    answers = {}

    async def keyed(e):
        found = await service.keyed_check(key, e["subject"], e["activity"], AS_OF)
        answers[id(e)] = found.answer
        return found

    seen = [0]

    def logged(e, times: int) -> list[tuple]:
        """`times` decision-log items for the answer keyed() gave to `e`."""
        body, revisions = answers[id(e)]
        return [("system:bench", {"subject": e["subject"], "activity": e["activity"], "as_of": AS_OF}, body,
                 revisions)] * times

    async def group_of_8(e):
        seen[0] += 1
        if seen[0] % 8 == 0:  # every 8th entry appends 8 at once: the mean is per decision
            await service.loop_access.append_decisions(service.decisions, logged(e, 8))

    async def alone(e):
        await service.loop_access.append_decisions(service.decisions, logged(e, 1))

    async def checked(e):  # what the route does, FastAPI aside
        found = await service.keyed_check(key, e["subject"], e["activity"], AS_OF)
        return await service.log_answer(found.answer, "system:bench")

    async def all_parts():
        try:
            return [
                await timed("key lookup alone (Service.principal)", lambda e: service.principal(key)),
                await timed("key lookup + obligations read + answer, one statement (Service.keyed_check)", keyed),
                await timed("decision-log group commit of 8 (loop_access.append_decisions), per decision", group_of_8),
                await timed("decision-log append alone (loop_access.append_decisions)", alone),
                await timed("response model + JSON (EligibilityAnswer)",
                            lambda e: EligibilityAnswer.model_validate({**answers[id(e)][0], "decision_id": "x" * 36})
                            .model_dump_json()),
                await timed("keyed_check + log_answer, one at a time (the route but FastAPI)", checked),
            ]
        finally:
            await service.close_loop_access()

    parts = asyncio.run(all_parts())

    async def profiled():
        try:
            for e in entries:
                await checked(e)
        finally:
            await service.close_loop_access()

    profile = cProfile.Profile()
    profile.enable()
    asyncio.run(profiled())
    profile.disable()
    stats = pstats.Stats(profile)
    prof_path = Path(out).with_suffix(".prof")
    stats.dump_stats(prof_path)
    total = sum(v[2] for v in stats.stats.values())
    top = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:20]
    top_cum = sorted(((k, v) for k, v in stats.stats.items() if "bench/service.py" not in k[0]),
                     key=lambda kv: kv[1][3], reverse=True)[:25]
    fmt = lambda k: f"{_short(k[0])}:{k[1]}({k[2]})"  # noqa: E731
    Path(out).write_text(json.dumps({
        "checks": len(entries), "backend": service.engine.dialect.name, "cpu": SERVER_CPU, "parts": parts,
        "profile_file": str(prof_path), "profile_total_s": round(total, 3),
        "profile_top_tottime": [{"function": fmt(k), "calls": v[1], "tottime_s": round(v[2], 3),
                                 "share": round(v[2] / total, 3)} for k, v in top],
        "profile_top_cumtime": [{"function": fmt(k), "calls": v[1], "cumtime_s": round(v[3], 3)} for k, v in top_cum],
    }, indent=2))
    service.close()


def _short(filename: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", str(ROOT) + "/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def run_components(url: str, key: str, requests_file: Path, out_dir: Path, n: int) -> dict | None:
    out = out_dir / "components.json"
    say(f"components: the per-check cost of each part, in-process on CPU {SERVER_CPU}, {n:,} checks each ...")
    try:
        subprocess.run([PYTHON, "-m", "bench.service", "--_components", url, str(requests_file), str(out), str(n)],
                       cwd=ROOT, env={**os.environ, "JC_BENCH_KEY": key}, check=True, timeout=1800)
    except (subprocess.SubprocessError, OSError) as exc:
        say(f"components: failed: {exc}")
        return None
    result = json.loads(out.read_text())
    for part in result["parts"]:
        say(f"  {part['part']}: mean {part['mean_us']} µs, p50 {part['p50_us']} µs")
    return result


_SERVER_BUCKETS = [
    ("the eligibility route's own handling, all of it (api/keyed_route.py)", "api/keyed_route.py", "handle"),
    ("  body -> model (pydantic model_validate_json)", "pydantic/main.py", "model_validate_json"),
    ("  answer -> JSON (response model TypeAdapter: validate)", "pydantic/type_adapter.py", "validate_python"),
    ("  answer -> JSON (response model TypeAdapter: dump_json)", "pydantic/type_adapter.py", "dump_json"),
    ("key lookup + obligations read + answer (Service.keyed_check)", "store/service.py", "keyed_check"),
    ("  the statement (loop_access read: inline on SQLite, asyncpg)", "store/loop_access.py", "read"),
    ("  obligations + known from the rows (Repository.check_result)", "store/repository.py", "check_result"),
    ("  answer (engine.eligibility.eligibility_answer)", "engine/eligibility.py", "eligibility_answer"),
    ("decision-log group commit (loop_access append_decisions)", "store/loop_access.py", "append_decisions"),
    ("  chaining the entries (canonical JSON, SHA-256)", "store/decisions.py", "_links"),
    ("SQLAlchemy Connection.execute (build, compile-cache, run)", "sqlalchemy/engine/base.py", "execute"),
    ("  DB driver: sqlite3 Cursor.execute", "~", "<method 'execute' of 'sqlite3.Cursor' objects>"),
    ("  DB driver: sqlite3 commit", "~", "<method 'commit' of 'sqlite3.Connection' objects>"),
    ("  DB driver: asyncpg statements", "asyncpg/connection.py", "_do_execute"),
    ("connection pool checkout", "sqlalchemy/pool/base.py", "_checkout"),
    ("connection pool return (reset/rollback)", "sqlalchemy/pool/base.py", "_finalize_fairy"),
    ("FastAPI dependency resolution (solve_dependencies)", "fastapi/dependencies/utils.py", "solve_dependencies"),
    ("FastAPI request body -> model", "fastapi/dependencies/utils.py", "request_body_to_args"),
    ("FastAPI response model validation + serialisation", "fastapi/routing.py", "serialize_response"),
    ("JSON response rendering", "starlette/responses.py", "render"),
]


def _bucket_stats(stats: pstats.Stats, buckets, total: float) -> list[dict]:
    out = []
    for label, file_part, func in buckets:
        ct = sum(v[3] for k, v in stats.stats.items()
                 if k[2] == func and ((file_part == "~" and k[0] == "~") or (file_part != "~" and k[0].endswith(file_part))))
        out.append({"part": label, "cumtime_s": round(ct, 3), "share": round(ct / total, 3) if total else None})
    return out


def profile_server(url: str, key: str, requests_file: Path, out_dir: Path, checks: int, concurrency: int,
                   client: str, max_seconds: float) -> dict:
    """The real app under a per-thread CPU-time cProfile (bench.profiled_app), loaded like the measured run."""
    prof = out_dir / "server.prof"
    env = {**_env(url), "JC_BENCH_PROFILE": str(prof)}
    server = Server("profiled", "bench.profiled_app:create_app", env, SERVER_CPU, out_dir)
    say(f"server profile: the real app under cProfile (thread CPU time), {checks:,} checks at concurrency {concurrency} ...")
    try:
        server.start()
        loadgen(server, "/v1/eligibility", key, requests_file, checks=1000, concurrency=concurrency, offset=0,
                sanity=False, client=client, max_seconds=max_seconds, out_dir=out_dir, label="warmup")
        import httpx

        httpx.post(server.base + "/_bench/profile/reset", timeout=30).raise_for_status()
        run = loadgen(server, "/v1/eligibility", key, requests_file, checks=checks, concurrency=concurrency,
                      offset=1000, sanity=True, client=client, max_seconds=max_seconds, out_dir=out_dir,
                      label="profiled")
    finally:
        server.stop()
    if not prof.exists():
        return {"error": "no profile written", "log": server.log_path.read_text()[-2000:]}
    stats = pstats.Stats(str(prof))
    total = sum(v[2] for v in stats.stats.values())
    n = run["count"]
    top = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:25]
    result = {
        "checks": run["count"], "concurrency": concurrency, "per_s_under_profile": run["per_s"],
        "profile_file": str(prof), "thread_cpu_s": round(total, 2),
        "thread_cpu_us_per_check": round(total / max(n, 1) * 1e6, 1),
        "buckets": _bucket_stats(stats, _SERVER_BUCKETS, total),
        "top_tottime": [{"function": f"{_short(k[0])}:{k[1]}({k[2]})", "calls": v[1], "tottime_s": round(v[2], 3),
                         "share": round(v[2] / total, 3)} for k, v in top],
        "note": "per-thread CPU time (time.thread_time) of the event loop and the thread-pool workers, "
                "inflated by cProfile's own cost; shares are the point",
    }
    say(f"server profile: {result['thread_cpu_us_per_check']:,} µs of thread CPU per check under the profiler")
    for b in result["buckets"]:
        if b["cumtime_s"]:
            say(f"  {b['part']}: {b['share']:.0%}")
    return result


# -- store diagnostics ---------------------------------------------------------------------
def diagnostics(url: str) -> dict:
    """The plan and cost of the DELETE replace_obligations runs per 500 sources, on the imported store."""
    from sqlalchemy import delete, select, text

    from store.db import make_engine
    from store.models import ObligationRow

    engine = make_engine(url)
    out: dict = {}
    try:
        with engine.connect() as c:
            out["obligations_rows"] = c.execute(text("SELECT count(*) FROM obligations")).scalar_one()
            out["records_rows"] = c.execute(text("SELECT count(*) FROM records")).scalar_one()
            out["subjects_rows"] = c.execute(text("SELECT count(*) FROM subjects")).scalar_one()
            generation = c.execute(text("SELECT generation FROM catalog_state WHERE id = 1")).scalar_one()
            codes = list(c.execute(text("SELECT code FROM subjects ORDER BY code LIMIT 500")).scalars())
            where = (ObligationRow.generation == generation) & ObligationRow.source_subject.in_(codes)
            stmt = delete(ObligationRow).where(where)
            compiled = stmt.compile(engine, compile_kwargs={"literal_binds": True})
            probe = select(ObligationRow.id).where(where)
            probe_sql = str(probe.compile(engine, compile_kwargs={"literal_binds": True}))
            if engine.dialect.name == "sqlite":
                out["delete_plan"] = [r[-1] for r in c.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled))]
                t0 = time.perf_counter()
                c.exec_driver_sql(probe_sql).fetchall()
                out["delete_probe_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            else:
                plan = [r[0] for r in c.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + probe_sql)]
                out["delete_plan"] = plan
            out["delete_probe_note"] = ("a SELECT with the WHERE of replace_obligations' DELETE, for 500 source "
                                        "subjects, run against the imported store")
            check = select(ObligationRow.id).where(ObligationRow.generation == generation,
                                                   ObligationRow.target_code == codes[0],
                                                   ObligationRow.valid_from <= AS_OF)
            check_sql = str(check.compile(engine, compile_kwargs={"literal_binds": True}))
            if engine.dialect.name == "sqlite":
                out["check_plan"] = [r[-1] for r in c.exec_driver_sql("EXPLAIN QUERY PLAN " + check_sql)]
            else:
                out["check_plan"] = [r[0] for r in c.exec_driver_sql("EXPLAIN ANALYZE " + check_sql)]
    finally:
        engine.dispose()
    return out


# -- import profile ------------------------------------------------------------------------
_BUCKETS = [
    ("reading + parsing bundles (engine.bundle)", "engine/bundle.py", "read_bundles"),
    ("store.repository.save_batch (subject/record upserts)", "store/repository.py", "save_batch"),
    ("store.repository.linked_codes", "store/repository.py", "linked_codes"),
    ("store.repository.load_rows (stored subjects read back)", "store/repository.py", "load_rows"),
    ("store.rows.materialise (rules over time, rows built)", "store/rows.py", "materialise"),
    ("  of which engine.timeline.obligation_timeline", "engine/timeline.py", "obligation_timeline"),
    ("  of which engine.evaluator.Evaluator.evaluate", "engine/evaluator.py", "evaluate"),
    ("  of which durable-rules assert_fact (adapter)", "engine/adapter.py", "assert_fact"),
    ("store.repository.replace_obligations (DELETE + INSERT obligations)", "store/repository.py", "replace_obligations"),
    ("  of which sqlite3 Cursor.execute (the DELETEs, single statements)", "~", "<method 'execute' of 'sqlite3.Cursor' objects>"),
    ("  of which sqlite3 Cursor.executemany (bulk INSERTs)", "~", "<method 'executemany' of 'sqlite3.Cursor' objects>"),
    ("json.dumps (JSON columns, durable-rules facts)", "json/__init__.py", "dumps"),
    ("commits", "~", "<method 'commit' of 'sqlite3.Connection' objects>"),
]


def profile_import(backend: str, n: int, seed: int, pg_admin_url: str, run_id: str) -> dict:
    subset, _ = population_file(n, seed)  # generate(n) is a prefix of any larger population
    db = Database(backend, run_id, pg_admin_url)
    url = db.create()
    prof = RESULTS / f"import-profile-{backend}-{n}.prof"
    RESULTS.mkdir(parents=True, exist_ok=True)
    say(f"profile: cProfile of `jointcredit import --workers 0` (the rules in process too) of {n:,} subjects "
        f"into {backend} ...")
    code = ("import cProfile, sys\nfrom engine.cli import main\nsource, out = sys.argv[1], sys.argv[2]\n"
            "sys.argv = ['jointcredit', 'import', '--workers', '0', source]\n"
            "p = cProfile.Profile()\np.enable()\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "p.disable()\np.dump_stats(out)\n")
    t0 = time.perf_counter()
    try:
        subprocess.run([PYTHON, "-c", code, str(subset), str(prof)], cwd=ROOT, env=_env(url), check=True)
        wall = time.perf_counter() - t0
        diag = diagnostics(url)
    finally:
        db.drop()
    stats = pstats.Stats(str(prof))
    total_wall = max(v[3] for v in stats.stats.values())
    buckets = []
    for label, file_part, func in _BUCKETS:
        ct = sum(v[3] for k, v in stats.stats.items() if k[2] == func and (file_part == "~" and k[0] == "~" or
                                                                          file_part != "~" and k[0].endswith(file_part)))
        # recursive / nested calls of the same function are counted once by pstats' cumtime
        buckets.append({"part": label, "cumtime_s": round(ct, 2), "share": round(ct / total_wall, 3)})
    stream = io.StringIO()
    pstats.Stats(str(prof), stream=stream).sort_stats("tottime").print_stats(25)
    result = {"backend": backend, "subjects": n, "wall_s_under_profile": round(wall, 1), "profile_file": str(prof),
              "profile_total_s": round(total_wall, 1), "buckets": buckets, "diagnostics": diag,
              "top_tottime": stream.getvalue().splitlines()[-32:]}
    out = RESULTS / f"import-profile-{backend}-{n}.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    for b in buckets:
        say(f"  {b['part']}: {b['cumtime_s']}s ({b['share']:.0%})")
    say(f"profile: written {out} and {prof}")
    return result


# -- one backend ---------------------------------------------------------------------------
def run_backend(backend: str, args, population: Path, generate_s: float | None, run_id: str) -> dict:
    out_dir = CACHE / f"run-{run_id}-{backend}-work"
    out_dir.mkdir(parents=True, exist_ok=True)
    db = Database(backend, run_id, args.pg_admin_url, args.existing_db)
    report: dict = {"meta": _meta(args, backend), "problems": []}
    report["population"] = {"file": str(population), "subjects": args.subjects, "seed": args.seed,
                            "generate_s": generate_s}
    servers: list[Server] = []
    try:
        url = db.create()
        report["meta"]["database"] = url
        say(f"[{backend}] database {url}")
        if args.existing_db:
            report["import"] = {"skipped": "--existing-db"}
            if args.import_report:  # the figures of the run that imported this database
                previous = json.loads(Path(args.import_report).read_text())
                report["import"] = {**previous["import"], "carried_over_from": args.import_report,
                                    "imported_at": previous["meta"]["started"]}
                report["meta"]["imported_by_commit"] = previous["meta"].get("git_commit")
                if previous.get("diagnostics"):
                    report["import_diagnostics"] = previous["diagnostics"]
        else:
            report["import"] = run_import(url, population)
        report["import"].setdefault("db_size_mb", db.size_mb())
        if args.subjects:
            report["import"]["subjects_per_s"] = (round(args.subjects / report["import"]["seconds"], 1)
                                                  if report["import"].get("seconds") else None)
        key = create_key(url)
        say(f"[{backend}] system key created")
        total = args.warmup + args.checks + args.latency_checks + args.rate_checks
        entries, info = build_requests(population, args.subjects, total, min(args.pool, args.subjects),
                                       args.listed_share, args.seed)
        report["requests"] = info
        requests_file = out_dir / "requests.json"
        requests_file.write_text(json.dumps(entries))
        if args.diagnostics:
            say(f"[{backend}] store diagnostics (query plans) ...")
            try:
                report["diagnostics"] = diagnostics(url)
            except Exception as exc:  # noqa: BLE001 - reported
                report["diagnostics"] = {"error": repr(exc)}
        measure = dict(checks=args.checks, warmup=args.warmup, concurrency=args.concurrency,
                       latency_checks=args.latency_checks, client=args.client, max_seconds=args.max_seconds,
                       out_dir=out_dir)
        report["runs"] = {}

        server = Server("eligibility", "api.app:create_app", _env(url), SERVER_CPU, out_dir)
        servers.append(server)
        say(f"[{backend}] starting the service (uvicorn api.app:create_app, CPU {SERVER_CPU}) ...")
        ready = server.start()
        say(f"[{backend}] service ready in {ready:.1f}s (RSS {_mb(server.status().get('VmRSS'))} MB)")
        first = smoke(server.base + "/v1/eligibility", key, entries[0])
        run = measure_server(server, "/v1/eligibility", key, requests_file, entries, sanity=True, **measure)
        if args.rate_checks:  # open loop at a fixed share of what the service just sustained
            measure["rate"] = args.rate or round(run["load"]["per_s"] * args.rate_share, -1)
            measure["rate_checks"] = args.rate_checks
            say(f"{server.name}: {args.rate_checks:,} checks sent open loop at {measure['rate']:,.0f}/s ...")
            run["rate"] = loadgen(server, "/v1/eligibility", key, requests_file, checks=args.rate_checks,
                                  concurrency=OPEN_LOOP_CONNECTIONS, rate=measure["rate"],
                                  offset=args.warmup + args.checks + args.latency_checks, label="rate",
                                  sanity=True, client=args.client, max_seconds=args.max_seconds, out_dir=out_dir)
            _report_run(server.name, run["rate"])
        run["ready_s"] = round(ready, 1)
        run["sample_answer"] = first
        server.stop()
        report["runs"]["eligibility"] = run

        variants = {"bare": "/v1/eligibility", "bare_deps": "/v1/eligibility-deps", "bare_async": "/v1/eligibility-async"}
        for name in ["bare"] + [v for v in args.bare_variants.split(",") if v and v != "bare"]:
            path = variants[name]
            bare = Server(name, "bench.bare_app:create_app", _env(url), SERVER_CPU, out_dir)
            servers.append(bare)
            say(f"[{backend}] starting the bare app (uvicorn bench.bare_app:create_app, {path}) ...")
            ready = bare.start()
            smoke(bare.base + path, None, entries[0])
            run = measure_server(bare, path, None, requests_file, entries, sanity=False, **measure)
            run["ready_s"] = round(ready, 1)
            bare.stop()
            report["runs"][name] = run

        if args.components:
            report["components"] = run_components(url, key, requests_file, out_dir, args.components)
        if args.profile_server:
            try:
                report["server_profile"] = profile_server(url, key, requests_file, out_dir, args.profile_server,
                                                          args.concurrency, args.client, args.max_seconds)
            except Exception as exc:  # noqa: BLE001 - reported
                report["server_profile"] = {"error": repr(exc)}
    finally:
        for s in servers:
            s.stop()
        if args.keep_db:
            say(f"[{backend}] keeping the database: {db.url}")
        elif not args.existing_db:
            say(f"[{backend}] dropping the database")
            db.drop()
    report["summary"] = _summary(report)
    report["problems"] = _problems(report)
    return report


def _summary(report: dict) -> dict:
    runs = report.get("runs", {})
    el, bare = runs.get("eligibility", {}), runs.get("bare", {})
    imp = report.get("import", {})
    s = {
        "backend": report["meta"]["backend"],
        "subjects": report["population"]["subjects"],
        "import_seconds": imp.get("seconds"),
        "import_peak_rss_mb": imp.get("peak_rss_mb"),
        "db_size_mb": imp.get("db_size_mb"),
        "concurrency": report["meta"]["concurrency"],
        "eligibility_p50_ms": el.get("load", {}).get("p50_ms"),
        "eligibility_p99_ms": el.get("load", {}).get("p99_ms"),
        "eligibility_checks_per_s": el.get("load", {}).get("per_s"),
        "eligibility_c1_p50_ms": el.get("c1", {}).get("p50_ms"),
        "eligibility_c1_p99_ms": el.get("c1", {}).get("p99_ms"),
        "eligibility_c1_per_s": el.get("c1", {}).get("per_s"),
        "open_loop_rate_per_s": el.get("rate", {}).get("rate"),
        "eligibility_open_loop_p50_ms": el.get("rate", {}).get("p50_ms"),
        "eligibility_open_loop_p99_ms": el.get("rate", {}).get("p99_ms"),
        "bare_open_loop_p50_ms": bare.get("rate", {}).get("p50_ms"),
        "bare_open_loop_p99_ms": bare.get("rate", {}).get("p99_ms"),
        "bare_p50_ms": bare.get("load", {}).get("p50_ms"),
        "bare_p99_ms": bare.get("load", {}).get("p99_ms"),
        "bare_checks_per_s": bare.get("load", {}).get("per_s"),
        "bare_c1_p50_ms": bare.get("c1", {}).get("p50_ms"),
        "bare_c1_p99_ms": bare.get("c1", {}).get("p99_ms"),
        "server_rss_mb_after": el.get("server_rss_mb_after"),
        "bare_server_rss_mb_after": bare.get("server_rss_mb_after"),
    }
    if runs.get("bare_deps"):
        s["bare_deps_checks_per_s"] = runs["bare_deps"]["load"]["per_s"]
        s["bare_deps_c1_p50_ms"] = runs["bare_deps"]["c1"]["p50_ms"]
        s["bare_deps_server_cpu_us_per_check"] = runs["bare_deps"]["load"].get("server_cpu_us_per_request")
    if runs.get("bare_async"):
        s["bare_async_checks_per_s"] = runs["bare_async"]["load"]["per_s"]
        s["bare_async_c1_p50_ms"] = runs["bare_async"]["c1"]["p50_ms"]
    if s["eligibility_checks_per_s"] and s["bare_checks_per_s"]:
        s["ratio"] = round(s["eligibility_checks_per_s"] / s["bare_checks_per_s"], 3)
    if s.get("bare_async_checks_per_s") and s["eligibility_checks_per_s"]:
        s["ratio_to_bare_async"] = round(s["eligibility_checks_per_s"] / s["bare_async_checks_per_s"], 3)
    s["targets"] = {
        "import_under_5_min": (None if s["import_seconds"] is None or s["backend"] != IMPORT_TARGET_BACKEND
                               else s["import_seconds"] < IMPORT_TARGET_S),
        f"p50_le_{TARGET_P50_MS:g}ms_at_c{s['concurrency']}": _le(s["eligibility_p50_ms"], TARGET_P50_MS),
        f"p99_le_{TARGET_P99_MS:g}ms_at_c{s['concurrency']}": _le(s["eligibility_p99_ms"], TARGET_P99_MS),
        f"p50_le_{TARGET_P50_MS:g}ms_at_c1": _le(s["eligibility_c1_p50_ms"], TARGET_P50_MS),
        f"p99_le_{TARGET_P99_MS:g}ms_at_c1": _le(s["eligibility_c1_p99_ms"], TARGET_P99_MS),
        f"p50_le_{TARGET_P50_MS:g}ms_open_loop": _le(s["eligibility_open_loop_p50_ms"], TARGET_P50_MS),
        f"p99_le_{TARGET_P99_MS:g}ms_open_loop": _le(s["eligibility_open_loop_p99_ms"], TARGET_P99_MS),
        "ratio_ge_0.5": None if s.get("ratio") is None else s["ratio"] >= TARGET_RATIO,
    }
    return s


def _le(value, limit):
    return None if value is None else value <= limit


def _problems(report: dict) -> list[str]:
    problems = []
    for name, run in report.get("runs", {}).items():
        for phase in ("load", "c1", "rate"):
            r = run.get(phase, {})
            if r.get("non_200"):
                problems.append(f"{name}/{phase}: {r['non_200']} non-200 responses: {r.get('non_200_samples')}")
            if r.get("transport_errors"):
                problems.append(f"{name}/{phase}: {r['transport_errors']} unreadable responses")
            if r.get("mismatches"):
                problems.append(f"{name}/{phase}: {r['mismatches']} answers differ from the engine's own evaluation: "
                                f"{r.get('mismatch_samples', [])[:3]}")
            if r.get("truncated"):
                problems.append(f"{name}/{phase}: stopped by the time bound after {r['count']} requests")
            if r and r.get("count", 0) < r.get("requested", 0):
                problems.append(f"{name}/{phase}: {r['count']} of {r['requested']} requests done")
    return problems


def _meta(args, backend: str) -> dict:
    return {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "backend": backend,
        "subjects": args.subjects, "seed": args.seed, "as_of": AS_OF, "checks": args.checks, "warmup": args.warmup,
        "concurrency": args.concurrency, "latency_checks": args.latency_checks, "client": args.client,
        "listed_share": args.listed_share, "pool": args.pool, "max_seconds_per_phase": args.max_seconds,
        "uvicorn": "python -m uvicorn APP " + " ".join(UVICORN_OPTIONS) + " --port P",
        "pinning": {"server": SERVER_CPU, "client": CLIENT_CPU, "import": "not pinned",
                    "database_server": "not pinned (PostgreSQL's own processes)" if backend == "postgresql" else "in-process (SQLite)"},
        **machine_meta(),
    }


def machine_meta() -> dict:
    """The machine, the Python packages that serve a check, and the commit measured."""
    def git(*cmd):
        try:
            return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:  # noqa: BLE001
            return None

    cpu_model = None
    try:
        cpu_model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                          if line.startswith("model name")), None)
    except OSError:
        pass
    versions = {}
    from importlib.metadata import version

    for pkg in ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "SQLAlchemy", "psycopg", "pydantic"):
        try:
            versions[pkg] = version(pkg)
        except Exception:  # noqa: BLE001
            versions[pkg] = None
    return {
        "python": platform.python_version(), "platform": platform.platform(), "cpu_model": cpu_model,
        "cpus": os.cpu_count(), "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "versions": versions, "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain")),
    }


# -- report --------------------------------------------------------------------------------
def print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    s, meta = report["summary"], report["meta"]
    imp = report.get("import", {})
    console.print(f"[bold]{meta['backend']}[/]: {s['subjects']:,} subjects imported in "
                  f"{imp.get('seconds', '-')} s"
                  + (f" (target < {IMPORT_TARGET_S} s)" if meta["backend"] == IMPORT_TARGET_BACKEND else " (no target)")
                  + f", peak RSS {imp.get('peak_rss_mb', '-')} MB, "
                  f"import CPU {imp.get('cpu_user_s', '-')} s user + {imp.get('cpu_sys_s', '-')} s sys, "
                  f"database {imp.get('db_size_mb', '-')} MB")
    table = Table(title=f"eligibility over loopback HTTP, {meta['backend']}, {s['subjects']:,} subjects: one uvicorn "
                        f"process on CPU {SERVER_CPU}, load generator ({meta['client']}) on CPU {CLIENT_CPU}")
    table.add_column("")
    runs = report.get("runs", {})
    for name in runs:
        table.add_column(name, justify="right")

    def row(label, phase, key, fmt="{:,}"):
        cells = []
        for run in runs.values():
            if isinstance(key, tuple):
                value = run.get(phase, {}).get(key[0], {}).get(key[1])
            else:
                value = run.get(phase, {}).get(key) if phase else run.get(key)
            cells.append("-" if value is None else fmt.format(value))
        table.add_row(label, *cells)

    c = meta["concurrency"]
    row(f"checks/s at concurrency {c}", "load", "per_s", "{:,.0f}")
    row(f"  p50 ms (c{c})", "load", "p50_ms", "{:.2f}")
    row(f"  p90 ms (c{c})", "load", "p90_ms", "{:.2f}")
    row(f"  p99 ms (c{c})", "load", "p99_ms", "{:.2f}")
    row(f"  max ms (c{c})", "load", "max_ms", "{:.1f}")
    row(f"  server CPU busy (c{c})", "load", "server_cpu_utilisation", "{:.0%}")
    row(f"  server CPU µs/check (c{c})", "load", "server_cpu_us_per_request", "{:,.0f}")
    row("  server CPU µs/check (c1)", "c1", "server_cpu_us_per_request", "{:,.0f}")
    row(f"  client CPU busy (c{c})", "load", "client_cpu_utilisation", "{:.0%}")
    row(f"  PostgreSQL CPUs busy (c{c})", "load", ("cpu_watch", "postgres_cpus"), "{:.2f}")
    row(f"  other processes' CPUs (c{c})", "load", ("cpu_watch", "others_cpus"), "{:.2f}")
    row("checks/s at concurrency 1", "c1", "per_s", "{:,.0f}")
    row("  p50 ms (c1)", "c1", "p50_ms", "{:.2f}")
    row("  p99 ms (c1)", "c1", "p99_ms", "{:.2f}")
    row("  max ms (c1)", "c1", "max_ms", "{:.1f}")
    row("open loop: checks sent per second", "rate", "rate", "{:,.0f}")
    row("  p50 ms (open loop)", "rate", "p50_ms", "{:.2f}")
    row("  p99 ms (open loop)", "rate", "p99_ms", "{:.2f}")
    row("  max ms (open loop)", "rate", "max_ms", "{:.1f}")
    row("  client send lag p99 ms (open loop)", "rate", "send_lag_p99_ms", "{:.2f}")
    row("checks measured (c{}/c1)".format(c), "load", "count")
    row("non-200 responses", "load", "non_200")
    row("answers differing from the engine", "load", "mismatches")
    row("server RSS after (MB)", None, "server_rss_mb_after", "{:,.1f}")
    console.print(table)
    el = runs.get("eligibility", {}).get("load", {})
    if el.get("listed_checks"):
        console.print(f"sanity: {el['listed_checks']:,} checks on listed subjects, {el['listed_ineligible_pct']}% "
                      f"ineligible (engine expects {report['requests']['expected_ineligible_listed_pct']}%); "
                      f"{el.get('compared_with_engine', 0):,} answers compared with the engine, "
                      f"{el.get('mismatches', 0)} differ")
    if s.get("ratio") is not None:
        console.print(f"throughput ratio eligibility / bare: [bold]{s['ratio']:.3f}[/] (target >= {TARGET_RATIO})"
                      + (f"; / bare_async: {s['ratio_to_bare_async']:.3f}" if s.get("ratio_to_bare_async") else ""))
    for name, ok in s["targets"].items():
        mark = "-" if ok is None else ("[green]met[/]" if ok else "[bold red]MISSED[/]")
        console.print(f"  target {name}: {mark}")
    comps = report.get("components")
    if comps:
        console.print("per-check cost in-process (µs, mean / p50): " + "; ".join(
            f"{p['part']}: {p['mean_us']:,.0f}/{p['p50_us']:,.0f}" for p in comps["parts"]))
    prof = report.get("server_profile") or {}
    if prof.get("buckets"):
        console.print(f"server profile ({prof['thread_cpu_us_per_check']:,.0f} µs thread CPU per check under cProfile): "
                      + "; ".join(f"{b['part'].strip()}: {b['share']:.0%}" for b in prof["buckets"] if b["cumtime_s"]))
    for p in report["problems"]:
        console.print(f"[bold red]CHECK FAILED[/] {p}")
    if not report["problems"]:
        console.print("[green]every response 200, every answer as the engine's own evaluation[/]")


def main(argv: list[str] | None = None) -> int:
    global QUIET_WAIT_S
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--_components":  # internal: the in-process breakdown
        _, _, url, requests_file, out, n = sys.argv
        components(url, os.environ["JC_BENCH_KEY"], requests_file, out, int(n))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.service", description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--checks", type=int, default=20_000, help="measured checks at --concurrency")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=10_000,
                        help="checks before the measured ones, to bring the working set into the page caches (a cold 7 GB store answered ~40%% slower for the first few thousand)")
    parser.add_argument("--latency-checks", type=int, default=3_000, help="measured checks at concurrency 1")
    parser.add_argument("--rate-checks", type=int, default=10_000,
                        help="checks sent open loop at a fixed rate, after the closed-loop runs (0: skip)")
    parser.add_argument("--rate", type=float, default=None,
                        help="the open-loop rate (default: --rate-share of the service's own throughput at "
                             "--concurrency; the bare apps get the same rate)")
    parser.add_argument("--rate-share", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=None, help="population seed (default: bench.population's)")
    parser.add_argument("--pool", type=int, default=20_000, help="distinct subjects the checks are drawn from")
    parser.add_argument("--listed-share", type=float, default=0.2, help="share of listed subjects in the pool")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw", help="load generator client")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="time bound of each load phase")
    parser.add_argument("--bare-variants", default="bare,bare_deps,bare_async",
                        help="bare endpoints to measure besides `bare`: bare_deps (the real dependency chain, "
                             "doing nothing), bare_async (async, no body)")
    parser.add_argument("--components", type=int, default=2000,
                        help="checks for the in-process per-part breakdown (0: skip)")
    parser.add_argument("--profile-server", type=int, default=4000, metavar="N",
                        help="after the measured runs, N checks against the app under cProfile (0: skip)")
    parser.add_argument("--no-diagnostics", dest="diagnostics", action="store_false")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--keep-db", action="store_true", help="keep the database (and print where)")
    parser.add_argument("--existing-db", default=None, help="skip the import: use this imported database URL")
    parser.add_argument("--import-report", default=None,
                        help="with --existing-db: a service-<backend>.json whose import figures to carry over")
    parser.add_argument("--profile-import", type=int, default=None, metavar="N",
                        help="instead: cProfile `jointcredit import` of the first N subjects")
    parser.add_argument("--quiet-wait", type=float, default=QUIET_WAIT_S,
                        help="before each measured phase, wait at most this long for other processes to leave "
                             "the CPUs alone (they are measured and reported either way)")
    parser.add_argument("--out-dir", default=str(RESULTS))
    args = parser.parse_args(argv)

    from bench.population import DEFAULT_SEED

    args.seed = DEFAULT_SEED if args.seed is None else args.seed
    QUIET_WAIT_S = args.quiet_wait
    host = re.sub(r"^.*@", "", args.pg_admin_url).split("/")[0].split(":")[0]
    if host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--pg-admin-url must point at a loopback address")
    if hasattr(os, "sched_setaffinity"):  # this process mostly waits; keep it off the server's CPU
        os.sched_setaffinity(0, {CLIENT_CPU})
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    run_id = f"{datetime.now():%Y%m%d%H%M%S}_{uuid.uuid4().hex[:6]}"
    if args.profile_import:
        for backend in backends:
            profile_import(backend, args.profile_import, args.seed, args.pg_admin_url, run_id)
        return 0
    population, generate_s = population_file(args.subjects, args.seed)
    status = 0
    for backend in backends:
        say(f"=== {backend}: {args.subjects:,} subjects ===")
        report = run_backend(backend, args, population, generate_s, run_id)
        out = Path(args.out_dir) / f"service-{backend}.json"
        if args.subjects < 1_000_000 and args.out_dir == str(RESULTS):
            out = Path(args.out_dir) / f"service-{backend}-{args.subjects}.json"
        write_report(out, report, print_table)
        status |= 1 if report["problems"] else 0
    return status


def write_report(out: Path, report: dict, show) -> None:
    """The report as JSON at `out`, and shown by `show`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    show(report)
    say(f"written {out}")


if __name__ == "__main__":
    sys.exit(main())
