"""Database engines and migrations.

SQLite gets WAL, foreign keys and NORMAL sync: readers never wait for the writer and a
decision-log append costs a page write, not an fsync. Schemas are created by Alembic
migrations, never by `create_all`, so a database made today upgrades tomorrow.
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import sessionmaker

__all__ = ["make_engine", "migrate", "session_factory", "MIGRATIONS"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str, *, background_checkpoints: bool = False) -> Engine:
    """An engine for `url`. `background_checkpoints` (SQLite): no automatic WAL checkpoints in
    commits; the caller runs store/checkpointer.py's thread instead (the service does)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

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
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=False)


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
