"""What every eligibility check goes through: the decision log's group commit, the single-statement
read, SQLite's per-thread read connections and background checkpoints, a lost connection; on a
real SQLite file and a real PostgreSQL database."""
import asyncio
import json
import sqlite3
import threading

import pytest
from hypothesis import given, strategies as st
from sqlalchemy import create_engine, text

import engine
from store.checkpointer import WalCheckpointer
from store.db import make_engine, migrate
from store.decision_writer import DecisionWriter
from store.decisions import DecisionLog, _canonical_entry, canonical
from store import driver
from store.driver import StoreUnavailable, read, read_all
from store.keys import KeyStore
from store.service import Service
from store.settings import Settings

from conftest import bundle, entry, org_code, person_code

AS_OF = "2025-06-30"


@pytest.fixture
def service(database_url):
    svc = Service(Settings(database_url=database_url, load_demo=False))
    yield svc
    svc.close()


def _ask(n: int) -> tuple:
    return ("system:t", {"subject": org_code(n), "activity": "honours", "as_of": AS_OF},
            {"subject": org_code(n), "eligible": True, "n": n}, {"taxation": "r1"})


async def _append_all(writer: DecisionWriter, count: int) -> list[dict]:
    return await asyncio.gather(*(writer.append(*_ask(n)) for n in range(count)))


@pytest.mark.parametrize("on_loop", [True, False], ids=["on-loop", "writer-thread"])
def test_checks_waiting_together_share_commits_and_each_gets_its_own_link(service, on_loop):
    writer = DecisionWriter(service.decisions, on_loop=on_loop)
    try:
        entries = asyncio.run(_append_all(writer, 40))
    finally:
        writer.close()
    assert writer.entries == 40
    if on_loop:  # all 40 were queued in one pass of the loop: one transaction
        assert writer.batches == 1
    assert writer.batches <= 40
    # each waiter got the entry of its own request, chained in the order of the commit
    assert [e["answer"]["n"] for e in entries] == list(range(40))
    seqs = [e["seq"] for e in entries]
    assert seqs == list(range(seqs[0], seqs[0] + 40))
    for before, after in zip(entries, entries[1:]):
        assert after["prev_hash"] == before["hash"]
    stored = service.decisions.get(entries[17]["id"])
    assert stored["answer"]["n"] == 17 and stored["hash"] == entries[17]["hash"]
    assert service.decisions.verify() == {"ok": True, "checked": 40, "broken_at": None}


def test_a_group_commit_continues_the_chain_of_single_appends(service):
    first = service.decisions.append(*_ask(1))
    writer = DecisionWriter(service.decisions)
    try:
        entries = asyncio.run(_append_all(writer, 5))
    finally:
        writer.close()
    last = service.decisions.append(*_ask(9))
    assert entries[0]["prev_hash"] == first["hash"] and last["prev_hash"] == entries[-1]["hash"]
    assert service.decisions.verify()["ok"] is True


@pytest.mark.parametrize("on_loop", [True, False], ids=["on-loop", "writer-thread"])
def test_a_failed_commit_fails_every_waiting_check_and_the_writer_goes_on(service, on_loop):
    writer = DecisionWriter(service.decisions, on_loop=on_loop)
    with service.engine.begin() as c:
        c.execute(text("DELETE FROM chain_head"))
    try:
        results = asyncio.run(_gather_outcomes(writer, 5))
        assert all(isinstance(r, RuntimeError) and "chain head" in str(r) for r in results)
        with service.engine.begin() as c:
            c.execute(text("INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, :h)"), {"h": "0" * 64})
        entries = asyncio.run(_append_all(writer, 3))  # the writer survived the failure
    finally:
        writer.close()
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert service.decisions.verify()["ok"] is True


async def _gather_outcomes(writer, count):
    return await asyncio.gather(*(writer.append(*_ask(n)) for n in range(count)), return_exceptions=True)


def test_closing_the_writer_writes_what_is_queued(service):
    writer = DecisionWriter(service.decisions)

    async def queue_then_close():
        pending = [asyncio.ensure_future(writer.append(*_ask(n))) for n in range(10)]
        await asyncio.sleep(0)  # all ten are queued
        await asyncio.to_thread(writer.close)
        return await asyncio.gather(*pending)

    entries = asyncio.run(queue_then_close())
    assert len({e["id"] for e in entries}) == 10
    assert service.decisions.verify()["checked"] == 10


def test_the_async_check_answers_like_the_sync_one_and_is_logged(service):
    company, person = org_code(300), person_code(300)
    service.save([engine.parse_bundle(bundle(company, entry("tax.major_violation", "2024-03-15"),
                                             {"id": "rel", "kind": "relation", "type": "legal_representative",
                                              "other": person, "listed_on": "2020-01-01"}, related=[person]))])

    key = service.keys.create("system", "a")

    async def check(subject, activity):  # what the route does, the key's authorisation aside
        found = await service.read(service.keyed_check, key, subject, activity, AS_OF)
        assert found.principal.name == "a" and found.problem is None
        return await service.log_answer(found.answer, "system:a")

    async def ask():
        return await asyncio.gather(check(company, "government_procurement"), check(person, "senior_management"),
                                    check(org_code(301), "honours"))

    barred, rep, unknown = asyncio.run(ask())
    sync = service.eligibility(company, "government_procurement", AS_OF, "system:s")
    assert {k: v for k, v in barred.items() if k != "decision_id"} == {k: v for k, v in sync.items() if k != "decision_id"}
    assert barred["eligible"] is False and rep["eligible"] is False
    assert (unknown["known"], unknown["eligible"]) == (False, True)
    assert service.decisions.get(rep["decision_id"])["request"]["subject"] == person
    assert service.decisions.verify()["checked"] == 4


def test_known_without_obligations_and_obligations_of_an_unstored_target(service):
    plain, listed, rep = org_code(310), org_code(311), person_code(311)
    service.save([engine.parse_bundle(bundle(plain, {"id": "TCR-B", "kind": "rating", "scheme": "tax.credit",
                                                     "grade": "B", "decided_on": "2025-04-01"}))])
    # the relation names a person the bundle does not bring along: obligations reach a code the
    # subjects table does not hold
    service.save([engine.parse_bundle(bundle(listed, entry("tax.major_violation", "2024-03-15"),
                                             {"id": "rel", "kind": "relation", "type": "legal_representative",
                                              "other": rep, "listed_on": "2020-01-01"}))])
    assert service.repository.check_reads(plain, AS_OF, "honours") == ([], True)
    assert service.repository.check_reads(org_code(312), AS_OF) == ([], False)
    rows, known = service.repository.check_reads(rep, AS_OF, "senior_management")
    assert known is True and rows and all(r["target_code"] == rep for r in rows)
    assert service.repository.check_reads(rep, "2024-03-14") == ([], service.repository.known(rep))


def test_sqlite_commits_leave_checkpoints_to_the_background_thread(tmp_path):
    url = f"sqlite:///{tmp_path / 'wal.sqlite'}"
    eng = make_engine(url, background_checkpoints=True)
    migrate(eng)
    log = DecisionLog(eng)
    big = {"text": "x" * 3000}
    for n in range(2000):  # ~6 MB through the log: SQLite's default would checkpoint at 1000 pages
        log.append("t", {"n": n}, big, {})
    checkpointer = WalCheckpointer(eng)
    busy, logged, done = checkpointer.checkpoint()
    assert logged > 1000, "a commit checkpointed the log itself"
    assert (busy, done) == (0, logged)
    assert log.verify()["checked"] == 2000
    eng.dispose()
    default = make_engine(f"sqlite:///{tmp_path / 'default.sqlite'}")
    with default.connect() as c:
        assert c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    default.dispose()


def test_the_service_checkpoints_sqlite_in_the_background(tmp_path):
    svc = Service(Settings(database_url=f"sqlite:///{tmp_path / 's.sqlite'}", load_demo=False))
    try:
        svc.checkpointer.interval_s = 0.01
        for n in range(50):
            svc.decisions.append(*_ask(n))
        deadline = 200
        while svc.checkpointer.checkpoints == 0 and deadline:
            import time
            time.sleep(0.01)
            deadline -= 1
        assert svc.checkpointer.checkpoints > 0
    finally:
        svc.close()
    assert not svc.checkpointer._thread.is_alive()
    with sqlite3.connect(tmp_path / "s.sqlite") as c:  # the last checkpoint emptied the log
        assert c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1] in (0, -1)


def test_a_lost_connection_is_store_unavailable_and_the_next_check_gets_a_fresh_one(service):
    if service.engine.dialect.name != "postgresql":
        pytest.skip("a server-side disconnect needs a database server")
    service.repository.known(org_code(1))  # a pooled connection now exists
    admin = make_engine(service.settings.database_url)  # as if the server restarted
    with admin.connect() as c:
        killed = c.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    admin.dispose()
    assert killed >= 1
    with pytest.raises(StoreUnavailable) as caught:
        service.repository.check_reads(org_code(1), AS_OF)
    assert caught.value.code == "store_unavailable"
    assert service.repository.check_reads(org_code(1), AS_OF) == ([], False)
    with admin.connect() as c:  # and the same for the key lookup and the check read sent together
        c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    admin.dispose()
    with pytest.raises(StoreUnavailable):
        service.keyed_check("jc_x", org_code(1), "government_procurement", AS_OF)
    assert service.keyed_check("jc_x", org_code(1), "government_procurement", AS_OF).principal is None


def test_reads_sent_together_answer_as_each_alone(service, monkeypatch):
    """read_all: the key lookup and the check read of the eligibility route in one round trip on
    PostgreSQL (psycopg's pipeline), the same rows as reading one after the other."""
    key = service.keys.create("system", "together")
    listed = org_code(1)
    service.save([engine.parse_bundle(bundle(listed, entry("tax.major_violation", "2024-01-10")))])
    pipelines = []
    if service.engine.dialect.name == "postgresql":
        import psycopg

        original = psycopg.Connection.pipeline
        monkeypatch.setattr(psycopg.Connection, "pipeline", lambda self: pipelines.append(1) or original(self))
    for code in (listed, org_code(2)):
        statements = [service.keys.lookup(key), service.repository.check_statement(code, AS_OF),
                      service.keys.lookup("jc_no-such-key")]
        together = read_all(service.engine, statements)
        assert together == [read(service.engine, *s) for s in statements]
        assert service.keys.principal_of(together[0]).name == "together"
        assert service.keys.principal_of(together[2]) is None
        assert service.repository.check_result(together[1]) == service.repository.check_reads(code, AS_OF)
    assert service.repository.check_result(read_all(service.engine, [service.repository.check_statement(
        listed, AS_OF)])[0])[0]  # the listed subject's obligations are there
    assert len(pipelines) == (2 if service.engine.dialect.name == "postgresql" else 0)  # one per read_all of several


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                     max_leaves=12)


@given(caller=st.text(max_size=12), request=_json, answer=_json, revisions=st.dictionaries(st.text(max_size=6), st.text()),
       seq=st.integers(min_value=1, max_value=10**12))
def test_the_entry_spelt_from_its_parts_is_the_canonical_entry(caller, request, answer, revisions, seq):
    """append_many hashes an entry assembled from each field serialised once; verify re-serialises
    the whole entry. Both must be the same text, or every chain would read as broken."""
    entry = {"id": "0b5b3d9e-6a39-4f57-9d3a-2f0b1b5c9e11", "seq": seq, "created_at": "2025-06-30T08:00:00.000+00:00",
             "caller": caller, "request": request, "answer": answer, "revisions": revisions}
    parts = {key: canonical(value) for key, value in entry.items()}
    assert _canonical_entry(parts) == canonical(entry)
    # and the spelling is the one entries have always been hashed with
    assert canonical(entry) == json.dumps(entry, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def test_sqlite_reads_use_one_connection_per_thread_that_sees_every_commit(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    eng = make_engine(url)
    migrate(eng)
    keys = KeyStore(eng)
    key = keys.create("system", "p")
    seen: dict[str, object] = {}

    def look(name):
        assert keys.principal(key) is not None
        seen[name] = driver._readers[eng].own.connection()

    look("main")
    thread = threading.Thread(target=look, args=("other",))
    thread.start()
    thread.join()
    assert seen["main"] is not seen["other"] and eng.pool.checkedout() == 0
    look("again")
    assert seen["again"] is seen["main"]  # kept, not taken from the pool each time
    with eng.begin() as c:  # a commit on another connection is seen by the next read
        c.execute(text("UPDATE api_keys SET revoked = :t"), {"t": True})
    assert keys.principal(key) is None
    driver.close_readers(eng)
    with pytest.raises(sqlite3.ProgrammingError):  # closed, every thread's
        seen["other"].execute("SELECT 1")
    assert keys.principal(key) is None  # a new one is opened on demand
    eng.dispose()


def test_the_writer_commits_while_checks_hold_every_pooled_connection(database_url):
    """Regression: with the writer on the shared pool, 64 checks in flight on PostgreSQL held every
    connection for their reads and the log's commits queued behind them (throughput collapsed)."""
    url = database_url.replace("postgresql://", "postgresql+psycopg://")
    eng = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=1)
    migrate(eng)
    writer = DecisionWriter(DecisionLog(eng))
    held = eng.raw_connection()  # the pool's only connection, as if a check's read held it
    try:
        entries = asyncio.run(_append_all(writer, 5))
    finally:
        held.close()
        writer.close()
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert DecisionLog(eng).verify()["ok"] is True
    eng.dispose()


def test_the_loops_reads_run_on_a_few_threads_that_keep_their_connections(service):
    """On a database server, reads awaited by the event loop run on ReadThreads: each keeps one
    autocommit connection of its own (no pool checkout per check), and there are never more
    than the threads; on SQLite they run inline."""
    key = service.keys.create("system", "threads")

    async def many():
        return await asyncio.gather(*[service.read(service.keys.principal, key) for _ in range(64)])

    principals = asyncio.run(many())
    assert {p.name for p in principals} == {"threads"}
    if service.engine.dialect.name == "sqlite":
        assert service.read_threads is None
        return
    own = driver._readers[service.engine].everyone
    assert 1 <= len(own) <= 8
    assert all(o.connection().autocommit for o in own)
    assert service.engine.pool.checkedout() == 0
