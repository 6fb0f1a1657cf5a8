"""The cluster lock across real processes: a holder in another process makes a bounded wait
fail with store_unavailable (nothing done), and a holder killed with SIGKILL releases it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from store.cluster_lock import ClusterLock
from store.db import make_engine
from store.driver import StoreUnavailable

ROOT = Path(__file__).resolve().parent.parent

HOLDER = """
import sys, time
from store.cluster_lock import ClusterLock
from store.db import make_engine
lock = ClusterLock(make_engine(sys.argv[1]))
with lock.hold("holding for a test"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(url: str, seconds: float) -> subprocess.Popen:
    """Another process holding the lock for `seconds` (once it has printed `held`)."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, url, str(seconds)], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_another_process_holding_it_makes_a_bounded_wait_fail_and_an_unbounded_one_wait(database_url):
    engine = make_engine(database_url)
    try:
        holder = _holder(database_url, 3)
        lock = ClusterLock(engine, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            with lock.hold("saving records"):
                pytest.fail("held while another process holds it")
        assert caught.value.code == "store_unavailable" and "saving records" in caught.value.message
        assert 0.4 < time.monotonic() - started < 2.5
        with lock.hold("starting", bounded=False):  # waits for the holder to let go, ~3 s after it took it
            assert time.monotonic() - started > 2.5
        assert holder.wait() == 0
    finally:
        engine.dispose()


def test_a_holder_killed_with_sigkill_releases_it(database_url):
    engine = make_engine(database_url)
    try:
        holder = _holder(database_url, 600)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        started = time.monotonic()
        with ClusterLock(engine, timeout=10).hold("after a crash"):
            assert time.monotonic() - started < 5
    finally:
        engine.dispose()


def test_two_threads_of_one_process_exclude_each_other_and_a_thread_may_hold_it_again(database_url):
    engine = make_engine(database_url)
    lock = ClusterLock(engine, timeout=5)
    inside, overlaps = [], []

    def work():
        with lock.hold("a"):
            with lock.hold("the same thread again"):
                inside.append(1)
                overlaps.append(len(inside))
                time.sleep(0.2)
                inside.pop()

    try:
        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert overlaps == [1, 1, 1] and not lock.held
    finally:
        engine.dispose()
