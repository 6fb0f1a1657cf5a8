"""SQLite WAL checkpoints in a background thread instead of inside a commit.

By default SQLite checkpoints the write-ahead log in whichever commit makes it pass 1000
pages. In the server that commit is a decision-log append on the event loop, and copying
4 MB back into the database file stalled every check in flight for 10-25 ms: the checks'
p99 went from ~5 ms to ~13 ms (measured at 8 in flight). So the service's engine turns
automatic checkpoints off (make_engine(..., background_checkpoints=True)) and this thread
runs PASSIVE checkpoints, which never wait for readers or writers, twice a second. SQLite
releases the GIL while it copies pages, so the loop goes on meanwhile. Whatever is still
in the log when the process stops is checkpointed by the next connection to open the file.

The thread checkpoints on a connection of its own, outside the engine's pool. Taking a pooled
one, it made the pool open a second connection whenever a writer checked out meanwhile, and
the writer then alternated between the two: each time on a connection whose page cache
SQLite had emptied because the other had written since (16 switches in a 20,000-subject
import, whose 1 GB import cache was meant to stay warm; store/db.py import_pragmas).
"""
from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

from .driver import DedicatedConnection

__all__ = ["WalCheckpointer"]

log = logging.getLogger("jointcredit.store")


class WalCheckpointer:
    def __init__(self, engine: Engine, interval_s: float = 0.5):
        self.engine = engine
        self.interval_s = interval_s
        self.checkpoints = 0
        # its own connection, outside the pool: see the module docstring
        self._connection = DedicatedConnection(engine)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)

    def start(self) -> "WalCheckpointer":
        self._thread.start()
        return self

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (busy, frames in the log, frames checkpointed)."""
        with self._connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            busy, logged, done = cursor.fetchone()
        self.checkpoints += 1
        return busy, logged, done

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.checkpoint()
            except Exception:  # noqa: BLE001 - a failed checkpoint is retried next time; the data is safe in the log
                log.exception("WAL checkpoint failed")

    def stop(self) -> None:
        """Stop the thread, after a last checkpoint so the log does not outlive the process."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            try:
                self.checkpoint()
            except Exception:  # noqa: BLE001
                log.exception("final WAL checkpoint failed")
        self._connection.close()
