"""What the event loop itself asks of the store for every eligibility check: the key lookup
with the obligations read, and the decision log's group-committed append.

SQLite has no network: its reads cost ~20 µs and run inline (store/driver.py keeps one
connection per thread), and the log's append runs inline too. A database server answers
after a round trip, during which the loop should serve other requests. There the work goes
through asyncpg on the loop: its protocol is compiled (Cython), so a statement costs the
server process ~30 µs of CPU, against ~175 µs for the same reads through psycopg on worker
threads (the thread hop, psycopg's pipeline mode and its Python-level protocol; measured on
a 20k-subject store at 8 in flight). psycopg's own async connections were tried before and
were slower than its threads. Everything else (imports, migrations, worklists, edits) stays
on SQLAlchemy and psycopg.

Statements are the same text as the synchronous reads use (psycopg's `%s` placeholders,
see driver.param_mark), renumbered once to asyncpg's `$1, $2, ...`; asyncpg prepares each
once per connection and caches it.
"""
from __future__ import annotations

import asyncio
import re

from sqlalchemy import Engine

from .decisions import DecisionLog
from .driver import StoreUnavailable, _first_line, own_connection, read

__all__ = ["InlineAccess", "AsyncpgAccess", "loop_access"]

Rows = tuple[list[str], list[tuple]]


class InlineAccess:
    """SQLite: the reads and the append run right here, on the loop (see the module docstring),
    all on the loop thread's own connection (driver.own_connection), whose page cache is
    `cache_kib` (SQLite's default is 2 MB). With the appends on the same connection the cache
    survives them, so the pages of the subjects being asked about stay in it; the other
    threads' connections keep the default."""

    def __init__(self, engine: Engine, cache_kib: int = 128 << 10):
        self.engine = engine
        self.cache_kib = cache_kib
        self._sized = None  # the connection given cache_kib (a broken one is replaced)

    async def read(self, sql: str, params: tuple) -> Rows:
        self._size_cache()
        return read(self.engine, sql, params)

    async def append_decisions(self, decisions: DecisionLog, items: list[tuple]) -> list[dict]:
        self._size_cache()
        return decisions.append_many(items, own_connection=True)

    def _size_cache(self) -> None:
        connection = own_connection(self.engine).connection()
        if connection is not self._sized:
            connection.execute(f"PRAGMA cache_size=-{self.cache_kib}")
            self._sized = connection

    async def close(self) -> None:
        pass

    def terminate(self) -> None:
        pass


class AsyncpgAccess:
    """A database server through asyncpg on the event loop: a small pool for the reads, and one
    connection of the decision log's own, so that its commits never queue behind reads (with
    64 checks in flight holding a shared pool, throughput once fell below half of that at 8).

    Connections are opened on first use, on the loop that uses them, and reopened after a
    failure; a failure is StoreUnavailable (the API answers 503 with Retry-After), and the next
    request gets a fresh connection."""

    def __init__(self, engine: Engine, readers: int = 8):
        url = engine.url.set(drivername="postgresql")
        self.dsn = url.render_as_string(hide_password=False)
        self.readers = readers
        self._pool = None
        self._log_connection = None
        self._head: tuple[int, str] | None = None  # the chain head as this writer's last append left it
        self._loop = None  # connections belong to the loop that opened them
        self._opening: asyncio.Lock | None = None
        self._sql: dict[str, str] = {}

    async def read(self, sql: str, params: tuple) -> Rows:
        """Column names and rows of one read-only statement (autocommit: it sees the latest commit)."""
        pool = self._pool if self._loop is asyncio.get_running_loop() else None
        pool = pool or await self._open_pool()
        try:
            async with pool.acquire() as connection:
                try:
                    records = await connection.fetch(self._numbered(sql), *params)
                    return list(records[0].keys()) if records else [], [tuple(r) for r in records]
                except BaseException:
                    # whatever state it was left in (a lost session, a cancelled request), the pool
                    # does not reset it (_keep_session): the next acquire opens a fresh one
                    connection.terminate()
                    raise
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"the database did not answer: {_first_line(exc)}") from exc

    async def append_decisions(self, decisions: DecisionLog, items: list[tuple]) -> list[dict]:
        """The items appended to the decision log on the log's own connection: as one statement
        after the head this writer's last append left (DecisionLog.append_after_async), or, when
        it does not know the head or another writer (a process, a batch check on a worker
        thread) moved it, in a transaction that locks the head first (append_locked_async)."""
        self._on_this_loop()
        connection = self._log_connection
        if connection is None or connection.is_closed():
            self._head = None
            connection = self._log_connection = await self._connect()
        try:
            stored = None if self._head is None else await decisions.append_after_async(connection, items, self._head)
            if stored is None:
                stored = await decisions.append_locked_async(connection, items)
        except BaseException as exc:
            self._head = None
            _discard(connection)  # whatever state it was left in; the next append opens another
            self._log_connection = None
            if isinstance(exc, _UNAVAILABLE):
                raise StoreUnavailable(f"the database did not answer: {_first_line(exc)}") from exc
            raise
        self._head = (stored[-1]["seq"], stored[-1]["hash"])
        return stored

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        connection, self._log_connection = self._log_connection, None
        if pool is not None:
            await pool.close()
        if connection is not None:
            _discard(connection)

    def terminate(self) -> None:
        """Drop whatever close() did not (a loop that ended without closing them)."""
        for stale in (self._pool, self._log_connection):
            if stale is not None:
                stale.terminate()
        self._pool = self._log_connection = None

    def _numbered(self, sql: str) -> str:
        """psycopg's `%s` placeholders as asyncpg's `$1, $2, ...` (cached per statement text)."""
        numbered = self._sql.get(sql)
        if numbered is None:
            if "%%" in sql or "%(" in sql:
                raise ValueError(f"only positional %s placeholders are supported: {sql!r}")
            count = iter(range(1, sql.count("%s") + 1))
            numbered = self._sql[sql] = re.sub(r"%s", lambda _: f"${next(count)}", sql)
        return numbered

    def _on_this_loop(self) -> None:
        """Forget connections of another (closed) event loop: a test, or a server, may run
        several loops one after the other; asyncpg connections cannot move between them."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self.terminate()
            self._loop, self._opening, self._head = loop, asyncio.Lock(), None

    async def _open_pool(self):
        import asyncpg

        self._on_this_loop()
        async with self._opening:
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self.readers,
                                                           reset=_keep_session, server_settings=_SESSION)
                except _UNAVAILABLE as exc:
                    raise StoreUnavailable(f"the database cannot be reached: {_first_line(exc)}") from exc
        return self._pool

    async def _connect(self):
        import asyncpg

        try:
            return await asyncpg.connect(self.dsn, server_settings=_SESSION)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"the database cannot be reached: {_first_line(exc)}") from exc


def _unavailable_errors() -> tuple[type[BaseException], ...]:
    """What a lost or refused connection raises through asyncpg. A server restart terminates the
    sessions: AdminShutdownError on a statement in flight, ConnectionDoesNotExist after, or
    InternalClientError ("another operation is in progress") on a session whose termination
    notice arrived while it was idle (seen in the tests)."""
    try:
        import asyncpg.exceptions as e
    except ImportError:  # asyncpg is only needed with a database server
        return (OSError, asyncio.TimeoutError)
    return (e.PostgresConnectionError, e.OperatorInterventionError, e.InsufficientResourcesError,
            e.InterfaceError, e.InternalClientError, OSError, asyncio.TimeoutError)


_UNAVAILABLE = _unavailable_errors()

# These sessions run a few fixed statements, each prepared once, whose best plan does not depend
# on the values (an index lookup by key): the generic plan, always. With the default ("auto") a
# prepared statement may be planned again at each execution, and after a bulk import without
# statistics it was: PostgreSQL's CPU per check read 64 µs generic, 80 auto, 174 custom.
_SESSION = {"plan_cache_mode": "force_generic_plan"}


async def _keep_session(connection) -> None:
    """The pool's reset on release, which does nothing: these connections only ever run plain
    SELECTs in autocommit, and leave no session state (locks, cursors, LISTEN, SET) to undo.
    asyncpg's default reset sends a statement on every release: a round trip per check, and
    a sixth of the server's CPU for a check (py-spy)."""


def _discard(connection) -> None:
    try:
        connection.terminate()
    except Exception:  # noqa: BLE001 - it is being discarded
        pass


def loop_access(engine: Engine) -> InlineAccess | AsyncpgAccess:
    return InlineAccess(engine) if engine.dialect.name == "sqlite" else AsyncpgAccess(engine)
