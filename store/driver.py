"""Statements straight on the DB-API connection, for the few reads every check pays for.

`Connection.exec_driver_sql` still builds SQLAlchemy's result metadata for every statement
(~15 µs each, measured under load: a sixth of a check's server time went to
CursorResultMetaData). These reads run fixed SQL with the driver's own placeholders
(`param_mark`) and return plain tuples.

On SQLite `read` goes one step further: a thread keeps one connection of its own for reads,
outside the pool, because checking a connection out of the pool and back in cost as much as
the statements (~12 µs a check, py-spy). That is safe: outside a transaction every SELECT sees
the latest commit, and a connection is never shared between threads. On a database server
`read` takes a pooled connection in autocommit; the event loop's own reads go through asyncpg
(store/loop_access.py).
"""
from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from typing import Iterator

import sqlalchemy.exc
from sqlalchemy import Engine

from engine.errors import JointCreditError

__all__ = ["param_mark", "driver_cursor", "own_connection", "own_cursor", "read", "beside", "apart", "close_readers", "DedicatedConnection",
           "StoreUnavailable"]


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
        # connection whose rollback fails, so the retry gets a fresh one. A disconnect means
        # the server's other sessions are gone too: as SQLAlchemy does on its own path, every
        # connection pooled so far is replaced at its next checkout, so one request, not one
        # per pooled connection, learns of a restart.
        autocommit = False  # nothing to restore on a discarded connection
        if engine.dialect.is_disconnect(exc, dbapi, None):
            engine.pool._invalidate(connection, exc)  # this connection with the rest
        else:
            connection.invalidate(exc)
        raise StoreUnavailable(f"the database did not answer: {_first_line(exc)}") from exc
    finally:
        if autocommit:
            dbapi.autocommit = False
        connection.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


class _Readers(threading.local):
    """One engine's per-thread read connections (and all of them, to close them)."""

    def __init__(self, everyone: list, lock: threading.Lock):
        self.own: DedicatedConnection | None = None
        self.everyone, self.lock = everyone, lock


_readers: "weakref.WeakKeyDictionary[Engine, _Readers]" = weakref.WeakKeyDictionary()
_readers_lock = threading.Lock()


def own_connection(engine: Engine) -> "DedicatedConnection":
    """This thread's own connection for `engine`, the one `read` uses on SQLite, kept outside the
    pool (see the module docstring)."""
    readers = _readers.get(engine)
    if readers is None:
        with _readers_lock:
            readers = _readers.setdefault(engine, _Readers([], threading.Lock()))
    own = readers.own
    if own is None:
        own = readers.own = DedicatedConnection(engine)
        with readers.lock:
            readers.everyone.append(own)
    return own


def own_cursor(engine: Engine):
    """A cursor on this thread's own SQLite connection, the one `read` uses, as a context manager
    (rolled back on an error; a broken connection is dropped and the next use opens another).
    Writes made through it leave that connection's page cache warm: SQLite empties a
    connection's cache when another connection has written since its last read, not when it
    wrote itself."""
    return own_connection(engine).cursor()


def read(engine: Engine, sql: str, params: tuple) -> tuple[list[str], list[tuple]]:
    """Column names and rows of one read-only statement: on SQLite on this thread's own
    connection, on a database server on a pooled one in autocommit (see the module docstring)."""
    if engine.dialect.name != "sqlite":
        block = driver_cursor(engine, reads_only=True)
    else:
        block = own_connection(engine).cursor()  # a broken one is dropped; the next read opens another
    with block as cursor:
        cursor.execute(sql, params)
        return [d[0] for d in cursor.description], cursor.fetchall()


def beside(lookup: tuple[str, tuple], statement: tuple[str, tuple]) -> tuple[str, tuple]:
    """Two reads as one statement: every row of `statement`, which must return at least one row,
    each preceded by the columns of `lookup`'s row (it finds at most one; all NULL when none).
    A second statement costs a second round trip on a database server and, through asyncpg,
    ~30 µs of the server's CPU; `apart` splits the rows again. `statement`'s row order is not
    kept (a derived table has none): its reader sorts."""
    (lookup_sql, lookup_params), (sql, params) = lookup, statement
    return f"SELECT l.*, s.* FROM ({sql}) AS s LEFT JOIN ({lookup_sql}) AS l ON 1 = 1", (*params, *lookup_params)


def apart(result: tuple[list[str], list[tuple]], width: int) -> tuple[tuple[list[str], list[tuple]], ...]:
    """`beside`'s result as the two results it joined: `lookup`'s first `width` columns (its row,
    or none when they are NULL: its first column must never be NULL), and `statement`'s."""
    names, rows = result
    found = [row[:width] for row in rows[:1] if row[0] is not None]
    return (names[:width], found), (names[width:], [row[width:] for row in rows])


def close_readers(engine: Engine) -> None:
    """Close every thread's read connection of `engine` (before engine.dispose())."""
    readers = _readers.pop(engine, None)
    if readers is None:
        return
    with readers.lock:
        for own in readers.everyone:
            own.close()
        readers.everyone.clear()


class DedicatedConnection:
    """One DB-API connection outside the pool, for a thread that reads so often that the pool's
    checkout is the cost (`read` on SQLite). A broken connection is dropped, and the next use
    opens a new one.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        # a pool of its own: same creator and connect events (SQLite pragmas), none of the others' waits
        self._pool = engine.pool.recreate()
        self._fairy = None
        self._connection = None

    def connection(self):
        """The DB-API connection, opened on first use (and after close)."""
        if self._connection is None:
            try:
                self._fairy = self._pool.connect()
            except (sqlalchemy.exc.OperationalError, self.engine.dialect.loaded_dbapi.OperationalError) as exc:
                raise StoreUnavailable(f"the database cannot be reached: {_first_line(exc)}") from exc
            self._connection = self._fairy.driver_connection
        return self._connection

    @contextmanager
    def cursor(self) -> Iterator:
        connection = self.connection()
        cursor = connection.cursor()
        try:
            yield cursor
        except self.engine.dialect.loaded_dbapi.OperationalError as exc:
            self.close()
            raise StoreUnavailable(f"the database did not answer: {_first_line(exc)}") from exc
        except BaseException:
            connection.rollback()
            raise
        finally:
            try:
                cursor.close()
            except Exception:  # noqa: BLE001 - its connection may be closed already
                pass

    def close(self) -> None:
        fairy, self._fairy, self._connection = self._fairy, None, None
        if fairy is not None:
            try:
                fairy.invalidate()  # closed, not kept: it may be the broken one
            except Exception:  # noqa: BLE001 - it is being discarded
                pass
        self._pool.dispose()
