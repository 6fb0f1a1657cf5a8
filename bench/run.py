"""Benchmark: jointcredit's engine against the plain durable-rules baseline.

    python -m bench.run --subjects 100000 [--seed 20250630] [--out bench/results/latest.json]

Each contender runs in its own fresh process (multiprocessing, spawn), pinned to one CPU, one
after the other, so that neither inherits the other's durable-rules memory and each peak
RSS is its own. In that process:

1. the population is generated (bench.population, same seed: the same subjects for both)
   and kept as parsed dicts; this is outside the timed section; the garbage collector is
   then frozen so the population is not walked again and again by collections;
2. setup is timed on its own: compiling the rulebooks and building the Evaluator, or
   registering the baseline ruleset;
3. the timed section is the single-threaded loop over all subjects: for the engine
   `parse_bundle` + `evaluate` per subject, for the baseline its fact assertions and
   retractions; wall-clock (perf_counter) and CPU time (process_time) are both kept;
4. memory: RSS before the loop, the peak RSS during the loop (the kernel's high-water mark
   VmHWM, reset just before the loop through /proc/self/clear_refs; ru_maxrss, the peak of
   the whole process including generation, is reported too) and RSS after.

Sanity is asserted at the end: no exceptions, non-zero action counts, and about a tenth of
the subjects firing in the baseline. The exit status is 1 when a check fails; the table and
the JSON are written either way.
"""
from __future__ import annotations

import argparse
import collections
import gc
import hashlib
import json
import multiprocessing
import os
import platform
import re
import resource
import subprocess
import sys
import time
import traceback
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2025, 6, 30)
CONTENDERS = ("engine", "baseline")


# -- memory --------------------------------------------------------------------------------
def _status_kb(field_name: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field_name}:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) if match else None


def _reset_peak() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM) of this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


# -- progress ------------------------------------------------------------------------------
class _Progress:
    """A rich progress bar on a terminal, a line to stderr every ~10 s otherwise."""

    def __init__(self, label: str, total: int, enabled: bool):
        self.label, self.total, self.enabled = label, total, enabled
        self.rich = None
        self.started = self.last = time.perf_counter()
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            self.rich = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=False)
            self.rich.start()
            self.task = self.rich.add_task(label, total=total, rate="")

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        rate = done / (now - self.started) if now > self.started else 0.0
        if self.rich is not None:
            self.rich.update(self.task, completed=done, rate=f"{rate:,.0f}/s")
        elif now - self.last >= 10 or done == self.total:
            self.last = now
            print(f"[{self.label}] {done:,}/{self.total:,} subjects, {rate:,.0f}/s, "
                  f"{now - self.started:,.0f} s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.rich is not None:
            self.rich.stop()


# -- one contender, in its own process -----------------------------------------------------
def _population_stats(population: list[dict]) -> dict:
    kinds = collections.Counter(b["subject"]["kind"] for b in population)
    records = sum(len(b.get("records", ())) for b in population)
    with_related = sum(1 for b in population if b.get("related"))
    digest = hashlib.sha256()
    for b in population:
        digest.update(b["subject"]["code"].encode())
    return {"subjects": len(population), "records": records, "kinds": dict(kinds),
            "with_related": with_related, "codes_sha256": digest.hexdigest()[:16]}


def _measure(contender: str, n: int, seed: int, rulebooks: list[str], cpu: int | None,
             progress: bool) -> dict:
    os.chdir(ROOT)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    from bench.population import generate

    result: dict = {"contender": contender, "cpu": cpu, "pid": os.getpid()}
    t0 = time.perf_counter()
    population = list(generate(n, seed=seed))
    result["generate_s"] = round(time.perf_counter() - t0, 2)
    result["population"] = _population_stats(population)
    result["rss_population_mb"] = _mb(_status_kb("VmRSS"))

    t0 = time.perf_counter()
    if contender == "engine":
        import engine

        compiled = engine.compile_rulebooks(rulebooks)
        evaluator = engine.Evaluator(compiled)
        parse_bundle = engine.parse_bundle
        evaluate = evaluator.evaluate
        result["rulebooks"] = dict(compiled.revisions)
        result["rulesets"] = len(compiled.rulesets)
        result["rules"] = sum(len(r) for r in compiled.rulesets.values())
    else:
        from bench.baseline import Baseline

        baseline = Baseline(AS_OF)
        evaluate_baseline = baseline.evaluate
        suspended_of = baseline.incentive_suspended
        result["rulesets"] = 1
        result["rules"] = baseline.rule_count
    result["setup_s"] = round(time.perf_counter() - t0, 3)

    gc.collect()
    gc.freeze()  # the population is long-lived: keep collections from walking it
    rss_before = _status_kb("VmRSS")
    peak_reset = _reset_peak()

    counts: collections.Counter = collections.Counter()
    per_rule: collections.Counter = collections.Counter()
    fired_subjects: list[int] = []
    errors: list[dict] = []
    error_count = 0
    actions = firings = suspended = subjects_suspended = 0
    bar = _Progress(contender, n, progress)
    step = 1000
    as_of = AS_OF

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    if contender == "engine":
        for i, obj in enumerate(population):
            try:
                evaluation = evaluate(parse_bundle(obj), as_of=as_of)
                acts = evaluation.actions
                if acts:
                    actions += len(acts)
                    firings += len(evaluation.firings)
                    fired_subjects.append(i)
                    s = 0
                    for a in acts:
                        per_rule[a.measure.id] += 1
                        if a.status == "suspended":
                            s += 1
                    if s:
                        suspended += s
                        subjects_suspended += 1
            except Exception as exc:  # counted and reported, never hidden
                error_count += 1
                if len(errors) < 10:
                    errors.append({"index": i, "code": obj["subject"].get("code"), "error": repr(exc),
                                   "traceback": traceback.format_exc(limit=6)})
            if i % step == 0:
                bar.update(i)
    else:
        for i, obj in enumerate(population):
            try:
                fired = evaluate_baseline(obj)
                if fired:
                    firings += len(fired)
                    fired_subjects.append(i)
                    per_rule.update(fired)
                    if suspended_of(fired):
                        subjects_suspended += 1
            except Exception as exc:
                error_count += 1
                if len(errors) < 10:
                    errors.append({"index": i, "code": obj["subject"].get("code"), "error": repr(exc),
                                   "traceback": traceback.format_exc(limit=6)})
            if i % step == 0:
                bar.update(i)
        actions = firings
    wall = time.perf_counter() - t0
    cpu_s = time.process_time() - cpu0
    bar.update(n)
    bar.close()

    peak = _status_kb("VmHWM") if peak_reset else None
    result.update({
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu_s, 3),
        "subjects_per_s": round(n / wall, 1) if wall > 0 else None,
        "us_per_subject": round(wall / n * 1e6, 1) if n else None,
        "actions": actions,
        "firings": firings,
        "subjects_fired": len(fired_subjects),
        "subjects_fired_pct": round(100 * len(fired_subjects) / n, 2) if n else 0,
        "actions_suspended": suspended,
        "subjects_with_suspension": subjects_suspended,
        "per_rule": dict(per_rule.most_common()),
        "errors": error_count,
        "error_samples": errors,
        "rss_before_mb": _mb(rss_before),
        "peak_rss_mb": _mb(peak),
        "peak_rss_source": "VmHWM since loop start" if peak_reset else None,
        "loop_peak_delta_mb": _mb(peak - rss_before) if peak and rss_before else None,
        "rss_after_mb": _mb(_status_kb("VmRSS")),
        "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "fired_subjects": fired_subjects,
    })
    return result


def _child(queue, *args) -> None:
    try:
        queue.put(("ok", _measure(*args)))
    except BaseException:  # noqa: BLE001 - report anything, including SystemExit
        queue.put(("error", traceback.format_exc()))


def run_contender(contender: str, n: int, seed: int, rulebooks: list[str], cpu: int | None,
                  progress: bool, isolate: bool) -> dict:
    if not isolate:
        return _measure(contender, n, seed, rulebooks, cpu, progress)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, contender, n, seed, rulebooks, cpu, progress),
                       name=f"bench-{contender}")
    proc.start()
    status, payload = None, None
    while status is None:
        try:
            status, payload = queue.get(timeout=5)
        except Exception:  # queue.Empty
            if not proc.is_alive():
                proc.join()
                return {"contender": contender, "crashed": True, "exitcode": proc.exitcode,
                        "errors": 1, "error_samples": [{"error": f"process died with exit code {proc.exitcode}"}]}
    proc.join()
    if status != "ok":
        return {"contender": contender, "crashed": True, "errors": 1, "error_samples": [{"error": payload}]}
    return payload


# -- report --------------------------------------------------------------------------------
def _meta(args, cpu) -> dict:
    def git(*cmd):
        try:
            return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:
            return None

    cpu_model = None
    try:
        cpu_model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                          if line.startswith("model name")), None)
    except OSError:
        pass
    try:
        from importlib.metadata import version
        durable_version = version("durable_rules")
    except Exception:
        durable_version = None
    return {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "subjects": args.subjects, "seed": args.seed, "as_of": AS_OF.isoformat(),
        "rulebooks": args.rulebooks, "python": platform.python_version(), "platform": platform.platform(),
        "cpu_model": cpu_model, "cpus": os.cpu_count(), "pinned_cpu": cpu, "durable_rules": durable_version,
        "git_commit": git("rev-parse", "--short", "HEAD"), "git_dirty": bool(git("status", "--porcelain")),
        "isolated_processes": not args.in_process,
    }


def _compare(results: dict, n: int, seed: int) -> dict | None:
    if not all(c in results and "fired_subjects" in results[c] for c in CONTENDERS):
        return None
    eng, base = set(results["engine"]["fired_subjects"]), set(results["baseline"]["fired_subjects"])
    only_engine, only_base = sorted(eng - base), sorted(base - eng)
    samples = {i: None for i in only_engine[:5] + only_base[:5]}
    if samples:
        from bench.population import generate

        last = max(samples)
        for i, bundle in enumerate(generate(last + 1, seed=seed)):
            if i in samples:
                recs = [r.get("list") or (r.get("scheme", "") + ":" + r.get("grade", "") if r["kind"] == "rating"
                                          else r["kind"]) for r in bundle["records"]
                        if r["kind"] in ("list_entry", "rating") and r.get("status") in ("active", "disputed")]
                samples[i] = {"index": i, "code": bundle["subject"]["code"], "live_entries": recs}
    return {
        "both": len(eng & base), "only_engine": len(only_engine), "only_baseline": len(only_base),
        "only_engine_samples": [samples[i] for i in only_engine[:5]],
        "only_baseline_samples": [samples[i] for i in only_base[:5]],
    }


def _checks(results: dict, n: int) -> list[str]:
    problems = []
    for name, r in results.items():
        if r.get("crashed"):
            problems.append(f"{name}: crashed: {r['error_samples'][0]['error'][-500:]}")
            continue
        if r["errors"]:
            problems.append(f"{name}: {r['errors']} subject(s) raised; first: {r['error_samples'][0]['error']}")
        if not r["actions"]:
            problems.append(f"{name}: no actions at all")
    base = results.get("baseline")
    if base and not base.get("crashed") and n >= 1000 and not 5 <= base["subjects_fired_pct"] <= 20:
        problems.append(f"baseline: {base['subjects_fired_pct']}% of subjects fired, expected about 10%")
    return problems


def _print_table(meta: dict, results: dict, comparison: dict | None, problems: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"jointcredit bench: {meta['subjects']:,} subjects, as of {meta['as_of']}, "
                        f"seed {meta['seed']}, 1 CPU (#{meta['pinned_cpu']})")
    table.add_column("")
    for name in results:
        table.add_column(name, justify="right")

    def row(label, key, fmt="{:,}"):
        cells = []
        for r in results.values():
            value = r.get(key)
            cells.append("-" if value is None else fmt.format(value))
        table.add_row(label, *cells)

    row("durable-rules rulesets", "rulesets")
    row("rules", "rules")
    row("setup (s)", "setup_s", "{:.3f}")
    row("loop wall (s)", "wall_s", "{:.2f}")
    row("loop CPU (s)", "cpu_s", "{:.2f}")
    row("subjects / s", "subjects_per_s", "{:,.0f}")
    row("µs / subject", "us_per_subject", "{:,.1f}")
    row("actions (engine) / firings", "actions")
    row("rule firings", "firings")
    row("subjects with actions", "subjects_fired")
    row("  % of subjects", "subjects_fired_pct", "{:.2f}")
    row("subjects with a suspension", "subjects_with_suspension")
    row("errors", "errors")
    row("RSS before loop (MB)", "rss_before_mb", "{:,.1f}")
    row("peak RSS in loop (MB)", "peak_rss_mb", "{:,.1f}")
    row("  loop peak - before (MB)", "loop_peak_delta_mb", "{:,.1f}")
    row("ru_maxrss, whole process (MB)", "ru_maxrss_mb", "{:,.1f}")
    console.print(table)
    if comparison:
        console.print(f"subjects with actions: both {comparison['both']:,}, engine only "
                      f"{comparison['only_engine']:,}, baseline only {comparison['only_baseline']:,}")
        for key in ("only_engine_samples", "only_baseline_samples"):
            for s in comparison[key][:3]:
                console.print(f"  {key.replace('_samples', '')}: #{s['index']} {s['code']} {s['live_entries']}")
    for p in problems:
        console.print(f"[bold red]CHECK FAILED[/] {p}")
    if not problems:
        console.print("[green]sanity checks passed[/]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=None, help="population seed (default: bench.population's)")
    parser.add_argument("--out", default="bench/results/latest.json")
    parser.add_argument("--only", choices=CONTENDERS, action="append", help="run only this contender (repeatable)")
    parser.add_argument("--rulebooks", action="append", default=None, help="rulebook directory (default: rulebooks)")
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last one allowed)")
    parser.add_argument("--in-process", action="store_true",
                        help="measure in this process instead of a fresh one per contender (memory figures then mix)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    from bench.population import DEFAULT_SEED

    if args.seed is None:
        args.seed = DEFAULT_SEED
    args.rulebooks = args.rulebooks or ["rulebooks"]
    cpu = args.cpu
    if cpu is None and hasattr(os, "sched_getaffinity"):
        cpu = max(os.sched_getaffinity(0))
    meta = _meta(args, cpu)
    results: dict[str, dict] = {}
    for contender in args.only or CONTENDERS:
        print(f"[{contender}] generating {args.subjects:,} subjects and measuring ...", file=sys.stderr, flush=True)
        results[contender] = run_contender(contender, args.subjects, args.seed, args.rulebooks, cpu,
                                           not args.no_progress, not args.in_process)
    comparison = _compare(results, args.subjects, args.seed)
    problems = _checks(results, args.subjects)
    _print_table(meta, results, comparison, problems)

    out = Path(args.out)
    if not out.is_absolute():
        out = ROOT / out
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"meta": meta, "results": {k: {kk: vv for kk, vv in v.items() if kk != "fired_subjects"}
                                        for k, v in results.items()},
              "comparison": comparison, "problems": problems}
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written {out}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
