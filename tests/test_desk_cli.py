"""The desk clerk's CLI: file an objection, see the queue, decide it (a real subprocess)."""
import json
import os
import subprocess
import sys

from conftest import ROOT, bundle, entry, org_code


def run(database_url, *args):
    env = {**os.environ, "JOINTCREDIT_DATABASE_URL": database_url, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)


def test_object_queue_decide(tmp_path):
    url = f"sqlite:///{tmp_path / 'desk.sqlite'}"
    data = tmp_path / "b.jsonl"
    data.write_text(json.dumps(bundle(org_code(900), entry("tax.major_violation", "2025-01-01", department="tax",
                                                           id="T-9"))) + "\n", encoding="utf-8")
    assert run(url, "import", str(data)).returncode == 0
    filed = run(url, "desk", "object", org_code(900), "T-9", "--grounds", "主体错误", "--by", "张某")
    assert filed.returncode == 0 and "objection 1 filed; tax must decide by" in filed.stdout
    queue = run(url, "desk", "queue", "--department", "tax")
    assert "T-9" in queue.stdout and "主体错误" in queue.stdout
    other = run(url, "desk", "decide", "objection", "1", "--decision", "uphold", "--reasons", "x", "--department", "finance")
    assert other.returncode == 2 and "not_your_case" in other.stderr
    decided = run(url, "desk", "decide", "objection", "1", "--decision", "uphold", "--reasons", "核实有误", "--department", "tax")
    assert decided.returncode == 0 and "upheld" in decided.stdout
    early = run(url, "desk", "repair", org_code(900), "T-9", "--statement", "已整改")
    assert early.returncode == 2 and ("repair_too_early" in early.stderr or "record_ended" in early.stderr)


def test_keys_create_list_revoke(tmp_path):
    from store.keys import KeyStore
    from store.db import make_engine

    url = f"sqlite:///{tmp_path / 'keys.sqlite'}"
    key = run(url, "keys", "create", "--role", "auditor", "--name", "audit office").stdout.strip()
    assert key.startswith("jc_")
    store = KeyStore(make_engine(url))
    assert store.principal(key).role == "auditor"
    listed = run(url, "keys", "list").stdout
    assert "audit office" in listed and key not in listed
    assert run(url, "keys", "revoke", "1").returncode == 0
    assert store.principal(key) is None
    assert run(url, "keys", "revoke", "99").returncode == 2
