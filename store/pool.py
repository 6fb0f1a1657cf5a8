"""Materialising in worker processes, for large imports and rebuilds.

Running the rules over a subject's history (store/rows.py) is most of an import's CPU and needs
no database, while parsing and database I/O need no rules: with the rules in worker processes
the parent parses and writes one batch while the workers evaluate the next. Each worker
compiles the service's catalog history once, era by era from the same rulebook texts
(durable-rules rulesets live in the process that registered them, so they cannot be shipped), receives
bundles as the rows they are read from and sends back Materialised rows: plain tuples both
ways, because pickling the Bundle dataclasses cost the parent ~65 µs a subject.

Workers are spawned, not forked: the parent holds database connections, a durable-rules Host
and threads, none of which survive a fork reliably. Workers ignore SIGINT so that Ctrl-C
reaches only the parent, which then shuts the pool down. A parent killed outright (kill -9,
the OOM killer) shuts nothing down, and its workers, and the resource tracker they keep
open, used to live on for ever: each worker asks the kernel for SIGKILL when its parent dies
(PR_SET_PDEATHSIG), or, where there is no such call, watches its parent's pid.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Protocol

from .history import CatalogHistory, Era
from .repository import BundleRows, bundle_of
from .rows import Materialised, materialise

__all__ = ["Pool", "RulePool", "InlinePool", "EraTexts", "cpus", "era_texts", "compile_history"]

# What a worker needs to compile a catalog history: each era's (start, end, rulebook texts).
EraTexts = list[tuple[str, str | None, dict[str, str]]]

_history: CatalogHistory | None = None  # the worker's own, built by _start
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with(parent: int) -> None:
    """End this process when `parent` ends (checked after asking, in case it already has). The
    kernel's signal comes when the *thread* that spawned the worker ends: ProcessPoolExecutor
    spawns in submit(), which RulePool calls on the importing (or rebuilding) thread, alive until
    the import (or rebuild) is."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        asked = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux
        asked = False
    if os.getppid() != parent:
        os._exit(1)
    if not asked:
        threading.Thread(target=_watch, args=(parent,), daemon=True, name="parent-watch").start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


class Pool(Protocol):
    """Where the rules run: `submit(rows)` returns a future of their Materialised rows, in order."""

    workers: int

    def submit(self, rows: list[BundleRows]) -> Future: ...

    def close(self, *, cancel: bool = False) -> None: ...


def cpus() -> int:
    """CPUs this process may run on (as taskset or a cpuset limits them)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def era_texts(history: CatalogHistory) -> EraTexts:
    return [(era.start, era.end, era.texts) for era in history.eras]


def compile_history(eras: EraTexts) -> CatalogHistory:
    """The history `eras` describes, compiled in this process (a worker's)."""
    from catalog.vocabulary import load_vocabulary
    from engine.compiler import compile_texts
    from engine.evaluator import Evaluator

    vocab = load_vocabulary()
    built = []
    for start, end, texts in eras:
        catalog = compile_texts(texts, vocab)
        built.append(Era(start, end, texts, catalog, Evaluator(catalog)))
    return CatalogHistory(built)


def _start(parent: int, eras: EraTexts) -> None:
    global _history
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(10)  # the parent's reading and writing is the import's critical path: it goes first
    _history = compile_history(eras)


def _work(rows: list[BundleRows]) -> list[Materialised]:
    return [materialise(_history, bundle_of(r)) for r in rows]


def _warm() -> int:
    return len(_history.eras)


class InlinePool:
    """The same interface, computed in this process at submit (small imports, tests)."""

    workers = 1

    def __init__(self, history: CatalogHistory):
        self.history = history

    def submit(self, rows: list[BundleRows]) -> Future:
        future: Future = Future()
        future.set_result([materialise(self.history, bundle_of(r)) for r in rows])
        return future

    def close(self, *, cancel: bool = False) -> None:
        pass


class RulePool:
    """`workers` spawned processes; `submit` splits the bundles among them, keeping their order."""

    def __init__(self, history: CatalogHistory, workers: int):
        self.workers = workers
        args = (os.getpid(), era_texts(history))
        self._executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start, initargs=args)
        for _ in range(workers):  # start compiling now, while the parent gets on with the first batch
            self._executor.submit(_warm)

    def submit(self, rows: list[BundleRows]) -> Future:
        """A future of the Materialised rows of the bundles of `rows` (Repository.load_rows), in their order."""
        size = -(-len(rows) // self.workers) or 1
        parts = [self._executor.submit(_work, rows[i:i + size]) for i in range(0, len(rows), size)]
        joined: Future = Future()
        lock = threading.Lock()  # parts finish in the pool's thread, or here if already done

        def done(_part: Future) -> None:
            with lock:
                if joined.done() or not all(p.done() for p in parts):
                    return
                try:
                    joined.set_result([m for p in parts for m in p.result()])
                except BaseException as exc:  # a worker failed or died: the caller sees it at result()
                    joined.set_exception(exc)

        for part in parts:
            part.add_done_callback(done)
        if not parts:
            joined.set_result([])
        return joined

    def close(self, *, cancel: bool = False) -> None:
        """Stop the workers; `cancel`: drop the work not started (an import that failed)."""
        self._executor.shutdown(wait=True, cancel_futures=cancel)
