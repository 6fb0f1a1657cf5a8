"""What every eligibility check goes through: the decision log's group commit, the single-statement
read, SQLite's per-thread read connections and background checkpoints, a lost connection; on a
real SQLite file and a real PostgreSQL database."""
import asyncio
import json
import sqlite3
import threading
import uuid

import pytest
from hypothesis import given, strategies as st
from sqlalchemy import event as sqlalchemy_event, text

import engine
from store.checkpointer import WalCheckpointer
from store.db import make_engine, migrate
from store.decision_writer import DecisionWriter
from store.decisions import DecisionLog, _canonical_entry, canonical
from store import driver
from store.driver import StoreUnavailable, apart, beside, read
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


def _on_a_loop(service, work):
    """Run `work()` on an event loop as the server does, closing that loop's connections after."""
    async def run():
        try:
            return await work()
        finally:
            await service.close_loop_access()

    return asyncio.run(run())


def test_checks_waiting_together_share_commits_and_each_gets_its_own_link(service):
    writer = service.decision_writer  # the route's: inline on SQLite, asyncpg on PostgreSQL
    entries = _on_a_loop(service, lambda: _append_all(writer, 40))
    assert writer.entries == 40
    assert writer.batches == 1  # all 40 were queued before the first append started: one commit
    # each waiter got the entry of its own request, chained in the order of the commit
    assert [e["answer"]["n"] for e in entries] == list(range(40))
    seqs = [e["seq"] for e in entries]
    assert seqs == list(range(seqs[0], seqs[0] + 40))
    for before, after in zip(entries, entries[1:]):
        assert after["prev_hash"] == before["hash"]
    stored = service.decisions.get(entries[17]["id"])
    assert stored["answer"]["n"] == 17 and stored["hash"] == entries[17]["hash"]
    assert service.decisions.verify() == {"ok": True, "checked": 40, "broken_at": None}


def test_appends_queued_during_a_commit_go_in_the_next_one(service):
    writer = service.decision_writer

    async def two_waves():
        first = [asyncio.ensure_future(writer.append(*_ask(n))) for n in range(5)]
        await asyncio.sleep(0)  # the five queue their entries
        await asyncio.sleep(0)  # and the append of those five starts (on SQLite: is done)
        second = [asyncio.ensure_future(writer.append(*_ask(n))) for n in range(5, 12)]
        return await asyncio.gather(*first, *second)

    entries = _on_a_loop(service, two_waves)
    assert (writer.batches, writer.entries) == (2, 12)
    assert [e["seq"] for e in entries] == list(range(1, 13))
    assert service.decisions.verify()["ok"] is True


def test_group_commits_and_single_appends_of_other_writers_make_one_chain(service):
    """The writer on PostgreSQL appends after the head its own last append left, and finds out
    in the same statement when another writer (a batch check, another process) moved it."""
    first = service.decisions.append(*_ask(1))
    writer = service.decision_writer

    async def interleaved():
        group = await _append_all(writer, 5)
        middle = await asyncio.to_thread(service.decisions.append, *_ask(7))  # another writer moves the head
        return group, middle, await _append_all(writer, 3)

    group, middle, after = _on_a_loop(service, interleaved)
    last = service.decisions.append(*_ask(9))
    assert group[0]["prev_hash"] == first["hash"] and middle["prev_hash"] == group[-1]["hash"]
    assert after[0]["prev_hash"] == middle["hash"] and last["prev_hash"] == after[-1]["hash"]
    assert [e["seq"] for e in after] == [8, 9, 10] and last["seq"] == 11
    assert service.decisions.verify() == {"ok": True, "checked": 11, "broken_at": None}


def test_two_servers_appending_at_once_make_one_unbroken_chain(service, monkeypatch):
    """Several server processes over one database (the architecture's way to scale out): each
    writer appends after the head it last saw, loses the race whenever the other appended
    meanwhile, and then appends under the head's lock; no link is lost or doubled."""
    other = Service(Settings(database_url=service.settings.database_url, load_demo=False))
    locked = []
    original = DecisionLog.append_locked_async
    monkeypatch.setattr(DecisionLog, "append_locked_async", lambda *a: locked.append(1) or original(*a))

    async def both():
        async def waves(writer, tag):
            out = []
            for wave in range(10):
                out += await asyncio.gather(*(writer.append(*_ask(tag * 1000 + wave * 10 + n)) for n in range(wave % 4 + 1)))
            return out
        try:
            return await asyncio.gather(waves(service.decision_writer, 1), waves(other.decision_writer, 2))
        finally:
            await other.close_loop_access()

    try:
        mine, theirs = _on_a_loop(service, both)
    finally:
        other.close()
    entries = sorted(mine + theirs, key=lambda e: e["seq"])
    if service.engine.dialect.name == "postgresql":  # the first append of each, and the lost races
        assert 2 < len(locked) < 20
    expected = 2 * sum(wave % 4 + 1 for wave in range(10))
    assert [e["seq"] for e in entries] == list(range(1, expected + 1))
    for before, after in zip(entries, entries[1:]):
        assert after["prev_hash"] == before["hash"]
    assert service.decisions.verify() == {"ok": True, "checked": expected, "broken_at": None}


def test_a_failed_commit_fails_every_waiting_check_and_the_writer_goes_on(service):
    writer = service.decision_writer
    with service.engine.begin() as c:
        c.execute(text("DELETE FROM chain_head"))
    results = _on_a_loop(service, lambda: _gather_outcomes(writer, 5))
    assert all(isinstance(r, RuntimeError) and "chain head" in str(r) for r in results)
    with service.engine.begin() as c:
        c.execute(text("INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, :h)"), {"h": "0" * 64})
    entries = _on_a_loop(service, lambda: _append_all(writer, 3))  # the writer survived the failure
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert service.decisions.verify()["ok"] is True


async def _gather_outcomes(writer, count):
    return await asyncio.gather(*(writer.append(*_ask(n)) for n in range(count)), return_exceptions=True)


def test_closing_the_writer_writes_what_is_queued(service):
    writer = service.decision_writer

    async def queue_then_close():
        pending = [asyncio.ensure_future(writer.append(*_ask(n))) for n in range(10)]
        await asyncio.sleep(0)  # all ten are queued
        await writer.close()
        assert all(p.done() for p in pending)
        return await asyncio.gather(*pending)

    entries = _on_a_loop(service, queue_then_close)
    assert len({e["id"] for e in entries}) == 10
    assert service.decisions.verify()["checked"] == 10


def test_the_async_check_answers_like_the_sync_one_and_is_logged(service):
    company, person = org_code(300), person_code(300)
    service.save([engine.parse_bundle(bundle(company, entry("tax.major_violation", "2024-03-15"),
                                             {"id": "rel", "kind": "relation", "type": "legal_representative",
                                              "other": person, "listed_on": "2020-01-01"}, related=[person]))])

    key = service.keys.create("system", "a")

    async def check(subject, activity):  # what the route does, the key's authorisation aside
        found = await service.keyed_check(key, subject, activity, AS_OF)
        assert found.principal.name == "a" and found.problem is None
        return await service.log_answer(found.answer, "system:a")

    async def ask():
        return await asyncio.gather(check(company, "government_procurement"), check(person, "senior_management"),
                                    check(org_code(301), "honours"))

    barred, rep, unknown = _on_a_loop(service, ask)
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
    generation = service.repository.generation()
    assert service.repository.check_reads(plain, AS_OF, "honours") == ([], True, generation)
    assert service.repository.check_reads(org_code(312), AS_OF) == ([], False, generation)
    rows, known, _ = service.repository.check_reads(rep, AS_OF, "senior_management")
    assert known is True and rows and all(r["target_code"] == rep for r in rows)
    assert service.repository.check_reads(rep, "2024-03-14") == ([], service.repository.known(rep), generation)


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


def test_checkpoints_leave_the_writers_connection_and_its_page_cache_alone(tmp_path):
    """The checkpointer has a connection of its own. When it took one from the pool, a writer
    that checked out while it held one got a second connection, and from then on alternated
    between the two: each time on a connection whose page cache SQLite had emptied, because
    the other had written since (16 switches in a 20,000-subject import)."""
    eng = make_engine(f"sqlite:///{tmp_path / 'own.sqlite'}", background_checkpoints=True)
    migrate(eng)
    checkpointer = WalCheckpointer(eng)
    used = []
    for n in range(6):
        with eng.connect() as c:
            used.append(id(c.connection.driver_connection))
            checkpointer.checkpoint()  # while the writer holds its connection
            c.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
            c.exec_driver_sql("INSERT INTO t VALUES (?)", (n,))
            c.commit()
        checkpointer.checkpoint()
    assert len(set(used)) == 1 and checkpointer.checkpoints == 12
    assert eng.pool.checkedin() == 1  # the pool never opened a second connection
    checkpointer.stop()  # never started: closes its connection
    eng.dispose()


def test_a_lost_connection_is_store_unavailable_and_the_next_check_gets_a_fresh_one(service):
    if service.engine.dialect.name != "postgresql":
        pytest.skip("a server-side disconnect needs a database server")
    service.repository.known(org_code(1))  # a pooled connection now exists
    _terminate_sessions(service)  # as if the server restarted
    with pytest.raises(StoreUnavailable) as caught:
        service.repository.check_reads(org_code(1), AS_OF)
    assert caught.value.code == "store_unavailable"
    assert service.repository.check_reads(org_code(1), AS_OF)[:2] == ([], False)

    async def checks_around_a_restart():  # the event loop's own connections (asyncpg)
        before = await service.keyed_check("jc_x", org_code(1), "government_procurement", AS_OF)
        await _append_all(service.decision_writer, 2)
        await asyncio.to_thread(_terminate_sessions, service)
        outcomes = [await _outcome(service.keyed_check("jc_x", org_code(1), "government_procurement", AS_OF)),
                    await _outcome(_append_all(service.decision_writer, 2))]
        after = await service.keyed_check("jc_x", org_code(1), "government_procurement", AS_OF)
        return before, outcomes, after, await _append_all(service.decision_writer, 2)

    before, outcomes, after, appended = _on_a_loop(service, checks_around_a_restart)
    assert before.answer == after.answer and after.principal is None
    # asyncpg notices a closed session before reusing it; if it does not, the request is a 503
    assert all(not isinstance(o, Exception) or isinstance(o, StoreUnavailable) for o in outcomes)
    assert len(appended) == 2
    service.engine.dispose()  # the synchronous pool's sessions were terminated too (tested above)
    assert service.decisions.verify() == {"ok": True, "checked": 4 + sum(isinstance(o, list) for o in outcomes) * 2,
                                          "broken_at": None}


async def _outcome(awaitable):
    try:
        return await awaitable
    except Exception as exc:  # noqa: BLE001 - the test looks at it
        return exc


def _terminate_sessions(service) -> None:
    admin = make_engine(service.settings.database_url)
    with admin.connect() as c:
        killed = c.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    admin.dispose()
    assert killed >= 1


def test_an_unreachable_database_is_store_unavailable_on_the_loop_and_nothing_is_logged(service):
    if service.engine.dialect.name != "postgresql":
        pytest.skip("the loop's own connections are asyncpg's, on a database server")
    reachable, service.loop_access.dsn = service.loop_access.dsn, "postgresql://postgres@127.0.0.1:1/nowhere"

    async def while_unreachable():
        outcomes = [await _outcome(service.keyed_check("jc_x", org_code(1), "honours", AS_OF)),
                    await _outcome(service.decision_writer.append(*_ask(1)))]
        service.loop_access.dsn = reachable
        return outcomes, await service.decision_writer.append(*_ask(2))

    (read_failed, append_failed), entry = _on_a_loop(service, while_unreachable)
    for failed in (read_failed, append_failed):
        assert isinstance(failed, StoreUnavailable) and failed.code == "store_unavailable"
        assert "cannot be reached" in failed.message
    assert entry["seq"] == 1 and service.decisions.verify()["checked"] == 1


def test_placeholders_are_renumbered_for_asyncpg(service):
    if service.engine.dialect.name != "postgresql":
        pytest.skip("asyncpg serves a database server only")
    numbered = service.loop_access._numbered
    assert numbered("SELECT 1 FROM t WHERE a = %s AND (b = %s OR c > %s)") == "SELECT 1 FROM t WHERE a = $1 AND (b = $2 OR c > $3)"
    with pytest.raises(ValueError):
        numbered("SELECT 1 FROM t WHERE a LIKE 'x%%' AND b = %s")


def test_the_key_lookup_beside_the_check_read_answers_as_each_alone(service):
    """The eligibility route's two reads as one statement (driver.beside, split by apart), through
    the event loop's access (asyncpg on PostgreSQL) and the synchronous driver alike."""
    key = service.keys.create("system", "together")
    listed, rep = org_code(1), person_code(1)
    service.save([engine.parse_bundle(bundle(listed, entry("tax.major_violation", "2024-01-10"),
                                             {"id": "rel", "kind": "relation", "type": "legal_representative",
                                              "other": rep, "listed_on": "2020-01-01"}, related=[rep]))])
    width = len(service.keys.LOOKUP_COLUMNS)
    cases = [(k, code) for k in (key, "jc_no-such-key") for code in (listed, rep, org_code(2))]

    async def on_the_loop():
        return [await service.loop_access.read(*beside(service.keys.lookup(k), service.repository.check_statement(
            code, AS_OF))) for k, code in cases]

    for (k, code), joined in zip(cases, _on_a_loop(service, on_the_loop)):
        key_rows, check_rows = apart(joined, width)
        assert apart(read(service.engine, *beside(service.keys.lookup(k), service.repository.check_statement(
            code, AS_OF))), width)[0] == key_rows
        assert service.keys.principal_of(key_rows) == service.keys.principal(k)
        assert (service.keys.principal_of(key_rows) is None) == (k != key)
        assert service.repository.check_result(check_rows) == service.repository.check_reads(code, AS_OF)
    obligations, known, _ = service.repository.check_reads(listed, AS_OF)
    assert known and len(obligations) >= 2  # several rows, in the order of their ids
    assert [o["id"] for o in obligations] == sorted(o["id"] for o in obligations)


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


@given(st.text())
def test_strings_of_an_entry_are_spelt_as_canonical_spells_them(value):
    """_links spells the id, time and caller with the encoder's own string function."""
    from store.decisions import _spell_str

    assert _spell_str(value) == canonical(value)


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


def test_the_writer_commits_while_checks_hold_every_read_connection(service):
    """Regression: with the writer on the readers' pool, 64 checks in flight on PostgreSQL held every
    connection for their reads and the log's commits queued behind them (throughput collapsed).
    The writer keeps a connection of its own."""
    if service.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's reads and appends run inline: there is no pool to wait for")

    async def append_while_reads_hold_the_pool():
        await service.principal("jc_x")  # the readers' pool exists
        pool = service.loop_access._pool
        held = [await pool.acquire() for _ in range(service.loop_access.readers)]
        try:
            return await asyncio.wait_for(_append_all(service.decision_writer, 5), timeout=10)
        finally:
            for connection in held:
                await pool.release(connection)

    entries = _on_a_loop(service, append_while_reads_hold_the_pool)
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert service.decisions.verify()["ok"] is True


def test_the_loops_reads_stay_within_a_few_connections(service):
    """On a database server the event loop's reads share a small asyncpg pool, however many
    checks are in flight; on SQLite they run inline on the thread's own connection."""
    key = service.keys.create("system", "many")

    async def many():
        principals = await asyncio.gather(*[service.principal(key) for _ in range(64)])
        pool = service.loop_access._pool if service.engine.dialect.name == "postgresql" else None
        return principals, pool.get_size() if pool is not None else None

    principals, connections = _on_a_loop(service, many)
    assert {p.name for p in principals} == {"many"}
    if service.engine.dialect.name == "sqlite":
        assert connections is None and service.engine.pool.checkedout() == 0
    else:
        assert 1 <= connections <= service.loop_access.readers


def test_decision_ids_are_time_ordered_so_appends_stay_at_the_end_of_their_index(service):
    """Version 7 ids (time, then random bits) sort in the order the entries were made; random
    (version 4) ids dirtied a random page of the id index with every entry."""
    entries = _on_a_loop(service, lambda: _append_all(service.decision_writer, 40))
    entries += [service.decisions.append(*_ask(99))]
    ids = [e["id"] for e in entries]
    assert {uuid.UUID(i).version for i in ids} == {7}
    assert sorted(ids) == ids and len(set(ids)) == len(ids)
    assert [e["seq"] for e in entries] == list(range(1, 42))
    assert service.decisions.get(ids[-1])["seq"] == 41 and service.decisions.verify()["ok"] is True


def test_sqlite_loop_reads_and_appends_share_one_connection_with_a_big_page_cache(service):
    """SQLite empties a connection's page cache when another connection has written since its
    last read: the loop's appends go through the connection its reads use (nothing is taken from
    the pool), which is given a page cache of its own size."""
    if service.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's connections only")
    key = service.keys.create("system", "cache")
    checkouts = []
    sqlalchemy_event.listen(service.engine, "checkout", lambda *args: checkouts.append(args))

    async def read_append_read():
        await service.principal(key)
        entry = await service.decision_writer.append(*_ask(1))
        await service.principal(key)
        own = driver.own_connection(service.engine).connection()
        return entry, own.execute("PRAGMA cache_size").fetchone()[0], own

    entry, cache_size, own = _on_a_loop(service, read_append_read)
    assert entry["seq"] == 1 and {id(args[0]) for args in checkouts} == {id(own)}  # opened once, nothing else
    assert cache_size == -service.loop_access.cache_kib != -2000  # KiB, not the default
    other = service.engine.raw_connection()  # the other connections keep SQLite's default
    try:
        assert other.driver_connection is not own
        assert other.driver_connection.execute("PRAGMA cache_size").fetchone()[0] == -2000
    finally:
        other.close()
