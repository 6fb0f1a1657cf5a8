"""The publish benchmark runs end to end at a tiny size (a real import, server, load generator
and three publishes) and writes its report with every phase's figures."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.publish import CHANGES, _multiset_diff, add_effect

ROOT = Path(__file__).resolve().parent.parent


def test_the_change_adds_one_effect_line_to_the_measure():
    for name, (measure, activity, effect) in CHANGES.items():
        text = (ROOT / "rulebooks" / f"{name}.yaml").read_text(encoding="utf-8")
        changed = add_effect(text, measure, activity, effect)
        added = [line for line in changed.splitlines() if line not in text.splitlines()]
        assert added == [f"      - {{activity: {activity}, effect: {effect}}}"], name
        assert len(changed.splitlines()) == len(text.splitlines()) + 1


def test_rows_that_appeared_and_went_are_counted_with_repeats():
    assert _multiset_diff([1, 2, 2, 5], [2, 3, 5, 5]) == (2, 2)
    assert _multiset_diff([], [1]) == (1, 0)


def test_the_benchmark_runs_at_a_tiny_size(tmp_path):
    env = {**os.environ, "JC_BENCH_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.publish", "--subjects", "300", "--rate", "20", "--backend", "sqlite",
         "--baseline", "1", "--gap", "0", "--sample", "100", "--repeats", "1", "--quiet-wait", "0",
         "--out-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "publish-sqlite.json").read_text(encoding="utf-8"))
    assert report["problems"] == []
    assert list(report["phases"]) == ["a_publish_taxation", "b_publish_procurement", "c_rollback_taxation"]
    for name, phase in report["phases"].items():
        assert phase["rebuild_state"] == "done", name
        assert phase["wall_s"] > 0 and phase["subjects_total"] == phase["subjects_done"] > 0
        checks = phase["checks"]
        for field in ("count", "p50_ms", "p99_ms", "max_ms", "non_200", "status_503"):
            assert field in checks, (name, field)
        assert checks["non_200"] == 0
        assert phase["store"]["db_size_mb_after"] > 0
        assert phase["store"]["changed_obligations"] >= 0
        assert set(report["summary"]["phases"][name]["targets"]) >= {"no_503", "growth_le_changed_obligations"}
    assert report["phases"]["c_rollback_taxation"]["revision"] == report["phases"]["a_publish_taxation"]["revision_before"]
    assert report["checks"]["mismatches"] == 0
    assert report["materialise"]["eras"] == {"before": 1, "after": 6}
    assert report["materialise"]["before_us_per_subject"] > 0 and report["materialise"]["ratio"] > 0
    assert report["import_after_publishes"]["after"]["publications"] == 5
    assert "targets (shown, not asserted)" in done.stdout
