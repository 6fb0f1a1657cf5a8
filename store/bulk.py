"""Statements for many rows at once, straight to the DB-API driver.

SQLAlchemy's per-row parameter processing cost about 100 µs a row, most of an import's
database time; the driver's executemany does the same work in a few µs. Callers pass tuples
in column order with JSON columns already serialised (`dumps`), so a value that is the same
for many rows (a measure's effects) can be serialised once. PostgreSQL needs `::json` casts
on JSON parameters; SQLite stores the text as it is, which is what SQLAlchemy's JSON type
reads back.
"""
from __future__ import annotations

from sqlalchemy import JSON

from engine.jsontext import dumps  # what SQLAlchemy's JSON type reads back (engine/jsontext.py)

__all__ = ["dumps", "mark", "insert_many", "upsert_many", "select_in", "IN_CHUNK"]

IN_CHUNK = 900  # values per IN (...) list: below SQLite's old 999-parameter limit


def mark(connection) -> str:
    """The driver's parameter placeholder (qmark for sqlite3, format for psycopg)."""
    return "?" if connection.dialect.name == "sqlite" else "%s"


def _marks(connection, table, columns) -> str:
    if connection.dialect.name == "sqlite":
        return ", ".join("?" for _ in columns)
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    return ", ".join("%s::json" if name in json_columns else "%s" for name in columns)


def _insert_sql(connection, table, columns) -> str:
    quote = connection.dialect.identifier_preparer.quote
    return (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({_marks(connection, table, columns)})")


def insert_many(connection, table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """INSERT `rows` (tuples in `columns` order, JSON columns already `dumps`-ed)."""
    if rows:
        connection.exec_driver_sql(_insert_sql(connection, table, columns), rows)


def upsert_many(connection, table, columns: tuple[str, ...], keys: tuple[str, ...], rows: list[tuple]) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE every other column (both backends speak it)."""
    if not rows:
        return
    quote = connection.dialect.identifier_preparer.quote
    update = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in keys)
    sql = (_insert_sql(connection, table, columns) +
           f" ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET {update}")
    connection.exec_driver_sql(sql, rows)


def select_in(connection, sql: str, values: list, before: tuple = ()) -> list[tuple]:
    """Rows of `sql` (a SELECT, or a DELETE returning none) for all `values`, IN (...) list by IN (...) list.

    `sql` has `{m}` for each of the `before` parameters and one `{in}` where the list goes
    (after them)."""
    out: list[tuple] = []
    m = mark(connection)
    for start in range(0, len(values), IN_CHUNK):
        chunk = values[start:start + IN_CHUNK]
        query = sql.replace("{m}", m).replace("{in}", ", ".join(m for _ in chunk))
        result = connection.exec_driver_sql(query, (*before, *chunk))
        if result.returns_rows:
            out.extend(result.fetchall())
    return out
