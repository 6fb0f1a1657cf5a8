"""Statements straight on the DB-API connection, for the few reads every check pays for.

`Connection.exec_driver_sql` still builds SQLAlchemy's result metadata for every statement
(~15 µs each, measured under load: a sixth of a check's server time went to
CursorResultMetaData). These reads take a pooled connection, run fixed SQL with the driver's
own placeholders (`param_mark`) and return plain tuples.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import sqlalchemy.exc
from sqlalchemy import Engine

from engine.errors import JointCreditError

__all__ = ["param_mark", "driver_cursor", "StoreUnavailable"]


class StoreUnavailable(JointCreditError):
    """The database cannot be reached, or stayed locked: nothing was read or written, and the
    same request may be retried (the API answers 503 with Retry-After)."""

    def __init__(self, message: str):
        super().__init__(message, code="store_unavailable")


def param_mark(engine: Engine) -> str:
    """The driver's placeholder: `?` for sqlite3, `%s` for psycopg."""
    return "?" if engine.dialect.name == "sqlite" else "%s"


@contextmanager
def driver_cursor(engine: Engine, *, reads_only: bool = False) -> Iterator:
    """A DB-API cursor on a pooled connection; the connection goes back to the pool (rolled back,
    as SQLAlchemy does for every connection it takes back) when the block ends.

    `reads_only`: the statements need no transaction of their own. On PostgreSQL they then run
    in autocommit, so giving the connection back costs no ROLLBACK round trip (a third of a
    check's reads on loopback); sqlite3 never opens a transaction for a SELECT anyway.
    """
    unavailable = engine.dialect.loaded_dbapi.OperationalError
    try:
        connection = engine.raw_connection()
    except sqlalchemy.exc.OperationalError as exc:  # a failed connect, wrapped by SQLAlchemy
        raise StoreUnavailable(f"the database cannot be reached: {_first_line(exc.orig)}") from exc
    dbapi = connection.driver_connection
    autocommit = reads_only and engine.dialect.name == "postgresql" and not dbapi.autocommit
    try:
        if autocommit:
            dbapi.autocommit = True  # client-side in psycopg 3: no round trip
        cursor = connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
    except unavailable as exc:
        # A dropped connection (server restarted: the pool does not ping before each use, which
        # would cost a round trip per check) or a lock held too long. The pool discards a
        # connection whose rollback fails, so the retry gets a fresh one.
        autocommit = False  # nothing to restore on a discarded connection
        connection.invalidate(exc)
        raise StoreUnavailable(f"the database did not answer: {_first_line(exc)}") from exc
    finally:
        if autocommit:
            dbapi.autocommit = False
        connection.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
