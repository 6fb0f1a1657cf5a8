"""Group commit for the decision log: the checks waiting at one moment share one append.

Every eligibility answer must be in the hash-chained log before it is returned. One append
is a transaction of three statements, and on PostgreSQL a WAL flush; under load most of a
check's time would be spent on it, one check after the other, since the chain head is a
single row everybody locks. Here one writer thread takes every entry queued while it was
busy and appends them as consecutive links in one transaction (DecisionLog.append_many).
A check still gets its answer only after its entry is committed: nothing is acknowledged
that is not recorded. Alone, a check pays the same single append as before; at 8 in
flight, the writes of ~8 checks cost about one.

The checks await from the event loop, so waiting for the commit occupies no worker thread.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading

from .decisions import DecisionLog
from .driver import DedicatedConnection

__all__ = ["DecisionWriter"]

log = logging.getLogger("jointcredit.decisions")

_STOP = object()


class DecisionWriter:
    """One thread appending queued decisions in batches of at most `max_batch`."""

    def __init__(self, decisions: DecisionLog, max_batch: int = 256, on_loop: bool = False):
        self.decisions = decisions
        self.max_batch = max_batch
        self.on_loop = on_loop
        self._pending: list = []
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = self.entries = 0  # counters for the benchmark and the tests

    async def append(self, caller: str, request: dict, answer: dict, revisions: dict) -> dict:
        """Queue one entry and wait (without blocking the loop) until it is committed."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self.on_loop:
            if not self._pending:
                loop.call_soon(self._flush_on_loop)
            self._pending.append(((caller, request, answer, revisions), future, loop))
            return await future
        self._ensure_started()
        self._queue.put(((caller, request, answer, revisions), future, loop))
        return await future

    def _flush_on_loop(self) -> None:
        batch, self._pending = self._pending, []
        outcome = self._append(batch)
        for (_, future, _), entry in zip(batch, outcome):
            _settle(future, *entry)

    def _append(self, batch: list, connection: DedicatedConnection | None = None) -> list[tuple]:
        """Append the batch's entries; (entry, None) for each, or (None, error) for each if it failed."""
        try:
            stored = self.decisions.append_many([item[0] for item in batch], connection=connection)
        except Exception as exc:  # noqa: BLE001 - handed to every waiting check, which answers with an error
            log.exception("decision log append failed for %d entries", len(batch))
            return [(None, exc)] * len(batch)
        self.batches += 1
        self.entries += len(batch)
        return [(entry, None) for entry in stored]

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="decision-writer", daemon=True)
                    self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread (the app's shutdown)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)
        log.info("decision writer: %d entries in %d group commits", self.entries, self.batches)

    def _run(self) -> None:
        connection = DedicatedConnection(self.decisions.engine)  # never waits behind the pool
        try:
            self._loop(connection)
        finally:
            connection.close()

    def _loop(self, connection: DedicatedConnection) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if any(item is _STOP for item in batch):
                stopping = True
                batch = [item for item in batch if item is not _STOP]
            if batch:
                self._write(batch, connection)

    def _write(self, batch: list, connection: DedicatedConnection) -> None:
        by_loop: dict = {}
        for (_, future, loop), outcome in zip(batch, self._append(batch, connection)):
            by_loop.setdefault(loop, []).append((future, *outcome))
        for loop, settled in by_loop.items():  # one wake-up per loop, not per entry
            _wake(loop, _settle_all, settled)


def _wake(loop: asyncio.AbstractEventLoop, callback, *args) -> None:
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # that loop has closed: nobody is waiting any more; the entries are written
        pass


def _settle(future: asyncio.Future, result, exc: BaseException | None) -> None:
    if future.cancelled():  # the client went away; its entry is recorded all the same
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


def _settle_all(settled: list) -> None:
    for future, result, exc in settled:
        _settle(future, result, exc)
