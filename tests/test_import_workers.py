"""The worker processes of `jointcredit import` end with it (issue 15): kill -9 of the import
left its two workers and the resource tracker alive for ever, 120-140 MB each. A real import
in a subprocess, killed once its workers run; its children are found in /proc."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.population import generate

from conftest import ROOT


def _children(pid: int) -> dict[int, str]:
    """pid -> command line of the live processes whose parent is `pid`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for an init that may never reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_killing_the_import_ends_its_workers_and_their_resource_tracker(tmp_path):
    data = tmp_path / "many.jsonl"
    data.write_text("".join(json.dumps(b, ensure_ascii=False) + "\n" for b in generate(4000)), encoding="utf-8")
    env = {**os.environ, "JOINTCREDIT_DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite'}"}
    command = [sys.executable, "-m", "engine.cli", "import", str(data), "--batch", "100", "--workers", "2"]
    importer = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and importer.poll() is None:
            children = _children(importer.pid)
            if sum("spawn_main" in c for c in children.values()) >= 2:
                break
            time.sleep(0.1)
        assert sum("spawn_main" in c for c in children.values()) >= 2, "the import never started its workers"
        assert any("resource_tracker" in c for c in children.values())
        os.kill(importer.pid, signal.SIGKILL)
        importer.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in children):
            time.sleep(0.2)
        assert [c for pid, c in children.items() if _alive(pid)] == []
    finally:
        if importer.poll() is None:
            importer.kill()
            importer.wait()
        for pid in children:  # what the failed assertion left behind: started by this test
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
