"""Database engines and migrations.

SQLite gets WAL, foreign keys and NORMAL sync: readers never wait for the writer and a
decision-log append costs a page write, not an fsync. Schemas are created by Alembic
migrations, never by `create_all`, so a database made today upgrades tomorrow.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import sessionmaker

__all__ = ["make_engine", "migrate", "session_factory", "import_pragmas", "deferred_indexes", "restore_indexes",
           "DEFERRABLE_INDEXES", "MIGRATIONS"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str, *, background_checkpoints: bool = False) -> Engine:
    """An engine for `url`. `background_checkpoints` (SQLite): no automatic WAL checkpoints in
    commits; the caller runs store/checkpointer.py's thread instead (the service does)."""
    if url.startswith("sqlite"):
        # LIFO: a thread checks out the connection it gave back last, the one whose page cache
        # holds what it just wrote (FIFO handed out the pool's least recently used one)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_use_lifo=True)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # pragma: no cover - exercised by every SQLite test
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            if background_checkpoints:
                cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    # the plain `def` routes run on up to anyio's 40 worker threads, each of which may read at once
    return create_engine(url, pool_size=20, max_overflow=30, pool_pre_ping=False)


# SQLite page cache for a bulk import's connections (KiB; allocated as used). The default 2 MB
# holds little of the obligations' five random-order indexes (~85 MB per 100k subjects), so
# each insert re-reads index pages: 18.5 µs per obligation row at 100k subjects with the
# default, 11.5 µs with 256 MB (measured). 1 GiB covers the indexes of ~1M subjects.
IMPORT_CACHE_KIB = 1 << 20
IMPORT_MMAP_BYTES = 16 << 30


@contextmanager
def import_pragmas(engine: Engine) -> Iterator[None]:
    """Connections opened meanwhile get IMPORT_CACHE_KIB of page cache and read the file through
    a memory map of up to IMPORT_MMAP_BYTES (SQLite; nothing else changes, durability included:
    writes still go through the WAL). The map saves a system call and a copy per page read
    that misses the cache: the import's system time fell from 15.6 s to 9.7 s for 300,000
    subjects. Pooled connections are closed at both ends, so both are given back after the
    import."""
    if engine.dialect.name != "sqlite":
        yield
        return

    def bigger_cache(dbapi_connection, _record) -> None:
        dbapi_connection.execute(f"PRAGMA cache_size=-{IMPORT_CACHE_KIB}")
        dbapi_connection.execute(f"PRAGMA mmap_size={IMPORT_MMAP_BYTES}")

    event.listen(engine, "connect", bigger_cache)
    engine.dispose()
    try:
        yield
    finally:
        event.remove(engine, "connect", bigger_cache)
        engine.dispose()


# Indexes that answer reads (checks, worklists, feedback) but that an import's own statements
# never use, and whose keys arrive in random order (subject codes, hashes, departments with
# random dates). Into an empty store, an import builds them once at the end instead of keeping
# them up to date row by row: random-order inserts into indexes that outgrow the page cache
# were most of why a 1M-subject import slowed down as it went. The change feed's indexes stay:
# their keys (department or generation, then the time of writing) only ever append.
# Helper threads SQLite may use to sort the keys of an index it builds (PRAGMA threads): 9.4-9.7
# -> 7.1 s for a million subjects' obligations on 2 cores, table cached, default page cache
# (with import_pragmas' 1 GB cache the sort is one run and takes ~21 s with or without them).
SORT_THREADS = min(os.cpu_count() or 1, 8)
DEFERRABLE_INDEXES = ("ix_obligations_target", "ix_obligations_department", "ix_obligations_obligation_key",
                      "ix_records_route")


def _deferrable() -> list:
    from .models import Base

    by_name = {index.name: index for table in Base.metadata.tables.values() for index in table.indexes}
    return [by_name[name] for name in DEFERRABLE_INDEXES]


@contextmanager
def deferred_indexes(engine: Engine, *, when: bool, on_build: Callable[[], None] | None = None) -> Iterator[None]:
    """With `when` (the caller knows the store holds no obligations yet), drop DEFERRABLE_INDEXES
    for the block and build them after it, whether it succeeded or not; `on_build` is told when
    the build starts (tens of seconds for a million subjects: the user should know why the
    import pauses). A process killed inside the block leaves them missing: `restore_indexes`
    (every Service start) builds them again."""
    if not when:
        yield
        return
    indexes = _deferrable()
    with engine.begin() as connection:
        for index in indexes:
            index.drop(connection, checkfirst=True)
    try:
        yield
    finally:
        if on_build is not None:
            on_build()
        restore_indexes(engine)


def restore_indexes(engine: Engine) -> list[str]:
    """Build whichever DEFERRABLE_INDEXES are missing (after an import that was killed); their names."""
    from sqlalchemy import inspect

    indexes = _deferrable()
    with engine.begin() as connection:
        present = {i["name"] for table in {index.table.name for index in indexes}
                   for i in inspect(connection).get_indexes(table)}
        missing = [index for index in indexes if index.name not in present]
        # SQLite sorts an index's keys on one thread unless told it may use more (PostgreSQL
        # builds with its parallel maintenance workers on its own)
        helpers = bool(missing) and engine.dialect.name == "sqlite"
        if helpers:
            connection.exec_driver_sql(f"PRAGMA threads={SORT_THREADS}")
        try:
            for index in missing:
                index.create(connection)
        finally:
            if helpers:  # the connection goes back to the pool, even after a failed build
                connection.exec_driver_sql("PRAGMA threads=0")
    return [index.name for index in missing]


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
