"""Real servers for end-to-end tests: uvicorn processes on loopback over one database.

Not a test module: imported by the tests that need a server (test_api_server.py, the
many-processes tests).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"

__all__ = ["ROOT", "HOST", "free_port", "wait_for_docs", "running"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for_docs(base: str, server: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the server exited with {server.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/docs", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server did not answer /docs within {timeout}s:\n{log.read_text()}")


@contextmanager
def running(database_url: str, log: Path, *, workers: int | None = None, load_demo: bool = False,
            wait: bool = True) -> Iterator[tuple[str, subprocess.Popen]]:
    """A server on a free port over `database_url`, output to `log`; (base URL, process).

    `workers`: started as `jointcredit serve --workers N` (uvicorn's worker processes sharing one
    socket); None: one plain uvicorn process. Stopped (SIGTERM, then SIGKILL) when the block ends."""
    port = free_port()
    env = {**os.environ, "JOINTCREDIT_DATABASE_URL": database_url, "JOINTCREDIT_LOAD_DEMO": "1" if load_demo else "0"}
    if workers is None:
        command = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", HOST,
                   "--port", str(port)]
    else:
        command = [sys.executable, "-m", "engine.cli", "serve", "--host", HOST, "--port", str(port),
                   "--workers", str(workers)]
    with log.open("w") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://{HOST}:{port}"
    try:
        if wait:
            wait_for_docs(base, server, log)
        yield base, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - a server that ignores SIGTERM
            server.kill()
            server.wait()
