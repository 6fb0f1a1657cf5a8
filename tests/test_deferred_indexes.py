"""An import into an empty store builds the read-side indexes once at the end instead of row
by row (store/db.py deferred_indexes); whatever happens, the store is left with all of them."""
import json
import logging
import os

import pytest
from sqlalchemy import event, inspect, make_url

from bench.population import generate
from conftest import fail_writes_at
from store.db import DEFERRABLE_INDEXES, IMPORT_CACHE_KIB, SORT_THREADS, restore_indexes
from store.db import make_engine
from store.importer import import_files
from store.repository import Repository
from store.service import Service
from store.settings import Settings


def _service(url):
    return Service(Settings(database_url=url, load_demo=False))


def _write(path, objs):
    path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs), encoding="utf-8")
    return path


def _indexes(engine) -> set[str]:
    inspector = inspect(engine)
    return {i["name"] for table in ("obligations", "obligation_changes", "records") for i in inspector.get_indexes(table)}


def _requested_checkpoints(engine) -> int:
    with engine.connect() as c:
        return c.exec_driver_sql("SELECT checkpoints_req FROM pg_stat_bgwriter").scalar_one()


@pytest.fixture
def ddl(request):
    """The DROP INDEX / CREATE INDEX statements an engine runs, captured."""
    seen: list[str] = []

    def capture(engine):
        def listener(_conn, _cursor, statement, *_):
            if "INDEX" in statement.upper():
                seen.append(" ".join(statement.split()[:3]).upper())
        event.listen(engine, "before_cursor_execute", listener)
        request.addfinalizer(lambda: event.remove(engine, "before_cursor_execute", listener))
        return seen
    return capture


def test_a_first_import_builds_the_read_indexes_after_the_rows(tmp_path, database_url, ddl):
    service = _service(database_url)
    try:
        statements, stages = ddl(service.engine), []
        postgresql = service.engine.dialect.name == "postgresql"
        checkpoints = _requested_checkpoints(service.engine) if postgresql else None
        report = import_files(service, [_write(tmp_path / "p.jsonl", list(generate(120)))], batch_size=50, workers=0,
                              stage=stages.append)
        assert report.subjects == 120 and not report.errors
        # the user is told why the import pauses at the end
        assert stages == ["building the indexes"] + (["updating the planner's statistics",
                                                      "writing the imported data out to disk"] if postgresql else [])
        if postgresql:  # and the data is in the data files before the import returns
            assert _requested_checkpoints(service.engine) > checkpoints
        if postgresql:  # the planner has statistics for what was loaded (autovacuum may be off)
            with service.engine.connect() as c:
                assert c.exec_driver_sql("SELECT count(*) FROM pg_stats WHERE tablename = 'obligations' "
                                         "AND attname = 'target_code'").scalar() == 1
        assert set(DEFERRABLE_INDEXES) <= _indexes(service.engine)
        assert sum(s.startswith("DROP INDEX") for s in statements) == len(DEFERRABLE_INDEXES)
        assert sum(s.startswith("CREATE INDEX") for s in statements) == len(DEFERRABLE_INDEXES)
        # a check finds what the import wrote
        with service.engine.connect() as c:
            target, start = c.exec_driver_sql("SELECT target_code, valid_from FROM obligations LIMIT 1").one()
        assert service.repository.obligations_for(target, start)
    finally:
        service.close()


def test_a_later_import_keeps_the_indexes_in_place(tmp_path, database_url, ddl):
    service = _service(database_url)
    try:
        import_files(service, [_write(tmp_path / "a.jsonl", list(generate(60)))], batch_size=50, workers=0)
        assert service.repository.has_obligations()
        statements, stages = ddl(service.engine), []
        more = [b for i, b in enumerate(generate(90)) if i >= 60]
        import_files(service, [_write(tmp_path / "b.jsonl", more)], batch_size=50, workers=0, stage=stages.append)
        assert not [s for s in statements if s.startswith(("DROP INDEX", "CREATE INDEX"))] and stages == []
    finally:
        service.close()


def test_a_failed_first_import_still_leaves_every_index(tmp_path, database_url, monkeypatch):
    service = _service(database_url)
    fail_writes_at(2, monkeypatch, service)
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            import_files(service, [_write(tmp_path / "p.jsonl", list(generate(150)))], batch_size=40, workers=0)
        assert set(DEFERRABLE_INDEXES) <= _indexes(service.engine)
    finally:
        service.close()


def test_indexes_a_killed_import_left_missing_are_built_at_the_next_start(database_url, caplog):
    service = _service(database_url)
    try:  # what a kill -9 between the drop and the build leaves
        with service.engine.begin() as c:
            c.exec_driver_sql("DROP INDEX ix_obligations_target")
            c.exec_driver_sql("DROP INDEX ix_obligations_department")
        assert "ix_obligations_target" not in _indexes(service.engine)
    finally:
        service.close()
    with caplog.at_level(logging.WARNING, logger="store.service"):
        again = _service(database_url)
    try:
        assert set(DEFERRABLE_INDEXES) <= _indexes(again.engine)
        assert "ix_obligations_target" in caplog.text and "ix_obligations_department" in caplog.text
    finally:
        again.close()


def test_sqlite_sorts_the_keys_of_the_indexes_it_builds_on_several_threads(tmp_path):
    """An index build may use SORT_THREADS helper threads (9.4-9.7 -> 7.1 s for a million
    subjects' obligations on 2 cores); the pooled connection is given back single-threaded."""
    service = _service(f"sqlite:///{tmp_path / 's.sqlite'}")
    statements: list[str] = []
    event.listen(service.engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql))
    try:
        with service.engine.begin() as c:
            c.exec_driver_sql("DROP INDEX ix_obligations_target")
        assert restore_indexes(service.engine) == ["ix_obligations_target"]
        threads = [s for s in statements if "PRAGMA threads" in s]
        create = next(i for i, s in enumerate(statements) if s.lstrip().upper().startswith("CREATE INDEX"))
        assert threads == [f"PRAGMA threads={SORT_THREADS}", "PRAGMA threads=0"] and SORT_THREADS >= 1
        assert statements.index(threads[0]) < create < statements.index(threads[1])
        with service.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA threads").scalar_one() == 0
        assert restore_indexes(service.engine) == [] and len([s for s in statements if "threads=" in s]) == 2
    finally:
        service.close()


def test_an_import_role_that_may_not_checkpoint_still_imports(database_url, caplog):
    """CHECKPOINT needs a superuser or pg_checkpoint; without them the import only does not wait
    for the data files (the data is in the WAL), and the log says so."""
    if not database_url.startswith("postgresql"):
        pytest.skip("CHECKPOINT is PostgreSQL's")
    service = _service(database_url)
    role = f"jc_no_checkpoint_{os.getpid()}"
    with service.engine.connect() as c:
        c.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        c.commit()
    limited = make_engine(str(make_url(database_url).set(username=role)))
    try:
        with caplog.at_level(logging.WARNING, logger="jointcredit.store"):
            assert Repository(limited).write_out() is False
        assert "no CHECKPOINT after the import (must be superuser or have privileges of pg_checkpoint" in caplog.text
        assert service.repository.write_out() is True
    finally:
        limited.dispose()
        with service.engine.connect() as c:
            c.exec_driver_sql(f"DROP ROLE {role}")
            c.commit()
        service.close()


def test_a_first_import_builds_its_indexes_without_the_imports_big_page_cache(tmp_path):
    """Regression: built inside import_pragmas, SQLite sorted each index's keys in one run sized
    by the 1 GB page cache (20.7 s instead of 8.6 s for a million subjects' obligations)."""
    service = _service(f"sqlite:///{tmp_path / 'c.sqlite'}")
    at_build: list[int] = []

    def cache_at_build(_conn, cursor, statement, *_):
        if statement.lstrip().upper().startswith("CREATE INDEX"):
            at_build.append(cursor.connection.execute("PRAGMA cache_size").fetchone()[0])

    event.listen(service.engine, "before_cursor_execute", cache_at_build)
    try:
        report = import_files(service, [_write(tmp_path / "p.jsonl", list(generate(120)))], batch_size=50, workers=0)
        assert report.subjects == 120 and len(at_build) == len(DEFERRABLE_INDEXES)
        assert set(at_build) == {-2000} != {-IMPORT_CACHE_KIB}  # SQLite's default, not the import's
    finally:
        service.close()
