"""Learn of another process's publication as soon as it commits, and compile it before a check
needs it.

Correctness does not depend on this thread: every check reads the generation it answers from
in its own statement (Repository.check_reads) and loads that generation's catalog if it has not
yet, and every write refreshes under the cluster lock (Service.writing). What the watcher saves
is the compile (a quarter of a second for the shipped rulebooks) on the first check after a
publish, and it keeps the process's idea of the catalog current within a second even when no
request arrives:

- PostgreSQL: LISTEN on CATALOG_CHANNEL, which each generation switch NOTIFYs on commit
  (Repository.switch_generation); a look at the generation every second as well, for a
  notification missed while the listening connection was being re-opened.
- SQLite: a look at the generation (one row of catalog_state) twice a second.
"""
from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from .repository import CATALOG_CHANNEL

if TYPE_CHECKING:  # pragma: no cover
    from .service import Service

__all__ = ["CatalogWatcher"]

log = logging.getLogger("jointcredit.store")

POLL_SECONDS = 0.5  # SQLite: how often the generation is read
SAFETY_SECONDS = 1.0  # PostgreSQL: the longest wait between two readings, notified or not (and for stop)
RETRY_SECONDS = 1.0  # after the database could not be reached


class CatalogWatcher:
    """A daemon thread that calls service.refresh_if_stale() when the catalog may have changed."""

    def __init__(self, service: "Service"):
        self.service = service
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jointcredit-catalog-watch", daemon=True)

    def start(self) -> "CatalogWatcher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        postgresql = self.service.engine.dialect.name == "postgresql"
        while not self._stop.is_set():
            try:
                if postgresql:
                    self._listen()
                else:
                    self._refresh()
                    self._stop.wait(POLL_SECONDS)
            except Exception as exc:  # the database went away or a compile failed: say so, try again
                if self._stop.is_set():
                    return
                log.warning("catalog watch: %s; trying again in %g s", str(exc).strip().splitlines()[0]
                            if str(exc).strip() else type(exc).__name__, RETRY_SECONDS)
                self._stop.wait(RETRY_SECONDS)

    def _refresh(self) -> None:
        self.service.refresh_if_stale()

    def _listen(self) -> None:
        import psycopg

        url = self.service.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f"LISTEN {CATALOG_CHANNEL}")
            self._refresh()  # anything switched before the LISTEN took effect
            while not self._stop.is_set():
                for _ in connection.notifies(timeout=SAFETY_SECONDS, stop_after=1):
                    pass
                if not self._stop.is_set():
                    self._refresh()
