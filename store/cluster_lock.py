"""One writer of obligations at a time, across every process and machine of the service.

Re-materialising (a record push, an objection decided, an import, a publish) replaces rows
that another writer may be replacing at the same moment, and a publish rebuilds every subject
into a new generation that must include every record saved before its switch. A threading lock
serialises one process; a city runs several processes on several machines over one database,
so the lock is held where they all meet:

- PostgreSQL: a session-level advisory lock (`pg_advisory_lock`) on a connection of its own,
  held for the block. A process that dies loses its connection and with it the lock.
- SQLite: an exclusive `flock` on a file beside the database (filelock). SQLite is shared only
  by processes of one machine; the alternative, one write transaction held for a whole
  rebuild, would stop the decision log (every check appends to it) for as long. The kernel
  releases the flock of a process that dies.
- An in-memory SQLite database lives in one process: a threading lock is then the whole truth.

A hold is reentrant within a thread (a publish saves nothing twice, but an import or a start-up
calls code that holds it again); only the outermost hold takes the lock. Waiting longer than
`timeout` seconds raises StoreUnavailable (503 with Retry-After): nothing was done.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlalchemy.exc
from filelock import FileLock, Timeout
from sqlalchemy import Engine

from .driver import StoreUnavailable

__all__ = ["ClusterLock", "ADVISORY_KEY"]

# pg_advisory_lock's key: a 64-bit number no other application on the database should use
# (the first eight bytes of sha256(b"jointcredit.materialise"), as a signed integer).
ADVISORY_KEY = -1350479172707289694


class ClusterLock:
    """The lock every re-materialisation holds (see the module docstring)."""

    def __init__(self, engine: Engine, timeout: float = 600.0):
        self.engine = engine
        self.timeout = timeout
        self._held = threading.local()  # .depth: this thread's nested holds
        self._file: Path | None = None
        self._local_lock: threading.RLock | None = None
        if engine.dialect.name == "sqlite":
            database = engine.url.database
            if database and database != ":memory:" and not database.startswith("file::memory:"):
                self._file = Path(database).resolve().with_name(Path(database).name + ".lock")
            else:
                self._local_lock = threading.RLock()

    @property
    def held(self) -> bool:
        """Whether this thread holds the lock now."""
        return getattr(self._held, "depth", 0) > 0

    @contextmanager
    def hold(self, what: str = "re-materialising", *, bounded: bool = True) -> Iterator[None]:
        """Hold the lock for the block; `what` names the holder's work in a timeout's message.
        `bounded=False`: wait as long as it takes (a process starting while another rebuilds a
        million subjects must wait for it, not fail)."""
        depth = getattr(self._held, "depth", 0)
        if depth:
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth = depth
            return
        with self._acquired(what, self.timeout if bounded else None):
            self._held.depth = 1
            try:
                yield
            finally:
                self._held.depth = 0

    def _acquired(self, what: str, timeout: float | None):
        if self.engine.dialect.name == "postgresql":
            return self._advisory(what, timeout)
        if self._file is not None:
            return self._flock(what, timeout)
        return self._threading(what, timeout)

    def _busy(self, what: str) -> StoreUnavailable:
        return StoreUnavailable(f"another process has been re-materialising obligations for over "
                                f"{self.timeout:g} s (a publish or an import); {what} was not started: retry later")

    @contextmanager
    def _advisory(self, what: str, timeout: float | None) -> Iterator[None]:
        # a connection of its own, outside the pool's reuse while held: the lock belongs to the session
        connection = self.engine.connect()
        try:
            # a blocking wait (woken as soon as the holder lets go), bounded by lock_timeout; the
            # lock is the session's, so it outlives the transaction that took it
            limit = "0" if timeout is None else f"{max(1, int(timeout * 1000))}ms"  # 0: no limit
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{limit}'")
            try:
                connection.exec_driver_sql(f"SELECT pg_advisory_lock({ADVISORY_KEY})")
            except sqlalchemy.exc.OperationalError:  # LockNotAvailable: lock_timeout passed
                raise self._busy(what) from None
            connection.commit()
            try:
                yield
            finally:
                connection.exec_driver_sql(f"SELECT pg_advisory_unlock({ADVISORY_KEY})")
                connection.commit()
        finally:
            connection.close()

    @contextmanager
    def _flock(self, what: str, timeout: float | None) -> Iterator[None]:
        # thread_local: each thread its own descriptor, so two threads of one process exclude
        # each other too (flock locks belong to the open file, not to the process)
        lock = FileLock(self._file, timeout=-1 if timeout is None else timeout, thread_local=True)
        try:
            lock.acquire()
        except Timeout:
            raise self._busy(what) from None
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def _threading(self, what: str, timeout: float | None) -> Iterator[None]:
        if not self._local_lock.acquire(timeout=-1 if timeout is None else timeout):
            raise self._busy(what)
        try:
            yield
        finally:
            self._local_lock.release()
