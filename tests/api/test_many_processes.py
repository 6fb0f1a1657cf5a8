"""Many processes, one truth: real servers over one database (a SQLite file, a PostgreSQL
database), each a process of its own, as a city runs them on several machines.

Publish through one, then push, check, dry-run and read the decision log through the other;
roll back through one and see it in the other; two departments publishing at the same moment
through two processes; If-Match raced across processes; `jointcredit serve --workers 2`
starting on an empty database and answering from both workers after a publish.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import date

import httpx
import pytest
from sqlalchemy import func, select

from bench.population import generate
from store.models import ObligationRow
from store.repository import Repository
from store.service import Service, bundles_from
from store.settings import Settings

from apitest import SEED, SUSPENDED, VIOLATOR, auth
from conftest import entry, bundle, org_code
from servers import running

TODAY = date.today().isoformat()
BAN = "      - {activity: government_procurement, effect: deny}\n"
COURT_EFFECT = "      - {activity: public_bidding, effect: restrict, note: 联合体中有一个或一个以上成员属于失信被执行人的，联合体视为失信被执行人}\n"
POPULATION = 400  # subjects besides SEED: a rebuild long enough for two publishes to overlap


def bar_bidding(text_: str) -> str:
    """The taxation rulebook with the procurement ban also denying public bidding."""
    assert BAN in text_
    return text_.replace(BAN, BAN + "      - {activity: public_bidding, effect: deny}\n", 1)


def court_bars_procurement(text_: str) -> str:
    """The courts rulebook with the bidding restriction also denying government procurement."""
    assert COURT_EFFECT in text_
    return text_.replace(COURT_EFFECT, COURT_EFFECT + "      - {activity: government_procurement, effect: deny}\n", 1)


@pytest.fixture
def store_url(database_url):
    """The database with the shipped rulebooks, the SEED subjects and a population stored, and keys."""
    service = Service(Settings(database_url=database_url, load_demo=False))
    try:
        service.save(bundles_from(SEED + list(generate(POPULATION)), service.vocab))
        keys = {"system": service.keys.create("system", "platform"),
                "tax": service.keys.create("department", "tax-bureau", "tax"),
                "court": service.keys.create("department", "court", "court"),
                "admin": service.keys.create("admin", "operations")}
    finally:
        service.close()
    return database_url, keys


@pytest.fixture
def two_servers(store_url, tmp_path):
    """Two server processes over the store: (client of A, client of B, keys)."""
    url, keys = store_url
    with ExitStack() as stack:
        bases = [stack.enter_context(running(url, tmp_path / f"server-{n}.log"))[0] for n in "ab"]
        a, b = (stack.enter_context(httpx.Client(base_url=base, timeout=120)) for base in bases)
        yield a, b, keys


def _head(client, keys, name="taxation"):
    r = client.get(f"/v1/rulebooks/{name}", headers=auth(keys["system"]))
    assert r.status_code == 200, r.text
    return r.json()


def _publish(client, key, name, new_text, effective_from=TODAY) -> str:
    """Save `new_text` as a draft of `name` and publish it; its revision."""
    head = _head(client, {"system": key}, name)
    r = client.put(f"/v1/rulebooks/{name}", json={"text": new_text, "comment": "test"},
                   headers={**auth(key), "If-Match": f'"{head["revision"]}"'})
    assert r.status_code == 201, r.text
    revision = r.json()["revision"]
    r = client.post(f"/v1/rulebooks/{name}/publish", json={"revision": revision, "effective_from": effective_from},
                    headers=auth(key))
    assert r.status_code == 200, r.text
    return revision


def _check(client, keys, subject, activity) -> dict:
    r = client.post("/v1/eligibility", json={"subject": subject, "activity": activity, "as_of": TODAY},
                    headers=auth(keys["system"]))
    assert r.status_code == 200, r.text
    return r.json()


def _logged_revisions(client, keys, answer) -> dict:
    r = client.get(f"/v1/decisions/{answer['decision_id']}", headers=auth(keys["system"]))
    assert r.status_code == 200, r.text
    return r.json()["revisions"]


def _push_listed(client, keys, code) -> None:
    """A company new to the store, on the major tax violation list since 2024, pushed through `client`."""
    r = client.post("/v1/records", json={"bundles": [bundle(code, entry("tax.major_violation", "2024-05-01"))]},
                    headers=auth(keys["tax"]))
    assert r.status_code == 200, r.text


def test_a_publish_through_one_process_is_used_by_the_other(two_servers):
    a, b, keys = two_servers
    before = _check(b, keys, VIOLATOR, "public_bidding")  # B has compiled the catalog and answered with it
    assert before["eligible"] is True
    old = _logged_revisions(b, keys, before)["taxation"]
    new = _publish(a, keys["tax"], "taxation", bar_bidding(_head(a, keys)["text"]))
    assert new != old
    # records pushed through B are materialised under the revision A published
    for n in range(5):
        _push_listed(b, keys, org_code(9100 + n))
        answer = _check(b, keys, org_code(9100 + n), "public_bidding")
        assert answer["eligible"] is False, answer
        # and B's decision log records the revision it answered under
        assert _logged_revisions(b, keys, answer)["taxation"] == new
    # B's dry run of the revision in force measures it against itself: nothing would change
    dry = b.post("/v1/rulebooks/taxation/dry-run", json={"revision": new, "as_of": TODAY}, headers=auth(keys["tax"]))
    assert dry.status_code == 200, dry.text
    assert dry.json()["eligibility_flips"] == {} and dry.json()["measures"] == {}
    listed = {r["name"]: r for r in b.get("/v1/rulebooks", headers=auth(keys["system"])).json()["rulebooks"]}
    assert listed["taxation"]["revision"] == new


def test_a_rollback_through_one_process_is_seen_by_the_other(two_servers):
    a, b, keys = two_servers
    old = _head(a, keys)["revision"]
    new = _publish(a, keys["tax"], "taxation", bar_bidding(_head(a, keys)["text"]))
    _push_listed(b, keys, org_code(9200))
    assert _check(b, keys, org_code(9200), "public_bidding")["eligible"] is False  # B uses the publication
    r = a.post("/v1/rulebooks/taxation/rollback", json={"to": old, "effective_from": TODAY}, headers=auth(keys["tax"]))
    assert r.status_code == 200, r.text
    for n in range(1, 6):  # B materialises and answers under the revision rolled back to
        _push_listed(b, keys, org_code(9200 + n))
        answer = _check(b, keys, org_code(9200 + n), "public_bidding")
        assert answer["eligible"] is True, answer
        assert _logged_revisions(b, keys, answer)["taxation"] == old != new
    assert _check(b, keys, org_code(9200), "public_bidding")["eligible"] is True


def test_records_pushed_through_one_process_while_the_other_publishes_are_not_lost(two_servers):
    """Pushes through B all the while A publishes (and a few after): each pushed company ends up
    with the obligations of the revision in force, none left out of the rebuilt generation."""
    a, b, keys = two_servers
    head = _head(a, keys)["revision"]
    draft = a.put("/v1/rulebooks/taxation", json={"text": bar_bidding(_head(a, keys)["text"]), "comment": "test"},
                  headers={**auth(keys["tax"]), "If-Match": f'"{head}"'}).json()["revision"]
    published, pushed = threading.Event(), []

    def push_meanwhile():
        while not published.is_set() or len(pushed) < 3:
            code = org_code(9300 + len(pushed))
            _push_listed(b, keys, code)
            pushed.append(code)

    with ThreadPoolExecutor(1) as pool:
        pushing = pool.submit(push_meanwhile)
        r = a.post("/v1/rulebooks/taxation/publish", json={"revision": draft, "effective_from": TODAY},
                   headers=auth(keys["tax"]))
        published.set()
        pushing.result()
    assert r.status_code == 200, r.text
    for code in pushed:
        answer = _check(a, keys, code, "public_bidding")
        assert answer["known"] is True and answer["eligible"] is False, answer


def _obligations(service) -> list[tuple]:
    """The obligations answering checks, as comparable rows (ids and generations aside); every
    stored row answers (nothing superseded is left behind)."""
    table = ObligationRow.__table__
    columns = [table.c[name] for name in ("target_code", "source_subject", "measure", "rule", "rulebook", "revision",
                                          "department", "status", "effects", "valid_from", "valid_until")]
    with service.engine.connect() as c:
        rows = c.execute(select(*columns).where(Repository.answering_now())).all()
        stray = c.execute(select(func.count()).select_from(table).where(~Repository.answering_now())).scalar()
    assert stray == 0, f"{stray} superseded obligations left behind"
    return sorted(tuple(str(v) for v in row) for row in rows)


def test_two_departments_publishing_at_once_both_take_effect_once(two_servers, store_url):
    a, b, keys = two_servers
    tax_text, court_text = bar_bidding(_head(a, keys)["text"]), court_bars_procurement(_head(a, keys, "courts")["text"])
    barrier = threading.Barrier(2)

    def publish(client, key, name, new_text):
        barrier.wait()
        return _publish(client, key, name, new_text)

    with ThreadPoolExecutor(2) as pool:
        tax = pool.submit(publish, a, keys["tax"], "taxation", tax_text)
        court = pool.submit(publish, b, keys["court"], "courts", court_text)
        tax_revision, court_revision = tax.result(), court.result()
    for client in (a, b):  # both in force, in both processes
        listed = {r["name"]: r["revision"] for r in client.get("/v1/rulebooks", headers=auth(keys["system"])).json()["rulebooks"]}
        assert (listed["taxation"], listed["courts"]) == (tax_revision, court_revision)
    assert _check(a, keys, VIOLATOR, "public_bidding")["eligible"] is False  # the tax change
    restricted = _check(b, keys, SUSPENDED, "government_procurement")  # the court change
    assert restricted["eligible"] is False and "courts.bidding_restricted" in {r["measure"] for r in restricted["restrictions"]}
    # no obligation twice, none missing: what is stored is what a rebuild from scratch under
    # both publications gives
    service = Service(Settings(database_url=store_url[0], load_demo=False))
    try:
        served = _obligations(service)
        assert len(served) == len(set(served)), "an obligation is stored twice"
        with service.writing("rebuilding from scratch"):
            service.materialiser.rebuild()
        assert _obligations(service) == served
    finally:
        service.close()


ROUNDS = 50


def test_if_match_raced_across_processes_never_forks_the_history(two_servers):
    a, b, keys = two_servers
    barrier = threading.Barrier(2)

    def put(client, base, n, side):
        barrier.wait()
        return client.put("/v1/rulebooks/taxation", json={"text": f"{base}\n# round {n} by {side}\n", "comment": side},
                          headers={**auth(keys["tax"]), "If-Match": f'"{head}"'})

    original = _head(a, keys)["text"]
    with ThreadPoolExecutor(2) as pool:
        for n in range(ROUNDS):
            head = _head(a, keys)["revision"]
            answers = [f.result() for f in (pool.submit(put, a, original, n, "a"), pool.submit(put, b, original, n, "b"))]
            assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
            lost = next(r for r in answers if r.status_code == 409)
            won = next(r for r in answers if r.status_code == 201)
            assert lost.json()["code"] == "stale_revision" and lost.json()["errors"][0]["head"] == won.json()["revision"]
    revisions = a.get("/v1/rulebooks/taxation/revisions", headers=auth(keys["system"])).json()["revisions"]
    drafts = [r for r in reversed(revisions) if r["state"] == "draft"]
    assert len(drafts) == ROUNDS
    # one line of history: each draft's parent is the draft before it, no parent has two children
    parents = [d["parent"] for d in drafts]
    assert len(set(parents)) == ROUNDS and parents[1:] == [d["revision"] for d in drafts[:-1]]


def test_serve_with_two_workers_starts_on_an_empty_database_and_both_answer_after_a_publish(database_url, tmp_path):
    """`jointcredit serve --workers 2` on a database nobody has used: both workers start at once,
    migrate, load the rulebooks and the demo subjects; each happens once. After a publish
    through one of them, every answer from either worker is given and logged under it."""
    with running(database_url, tmp_path / "serve.log", workers=2, load_demo=True) as (base, _):
        service = Service(Settings(database_url=database_url, load_demo=False))
        try:
            loads = service.rulebook_store.changes()
            assert sorted(c["name"] for c in loads) == sorted(service.history.latest.texts), "a rulebook loaded twice"
            keys = {"system": service.keys.create("system", "platform"), "tax": service.keys.create("department", "tax", "tax")}
            served = _obligations(service)
            assert served and len(served) == len(set(served))
        finally:
            service.close()
        with httpx.Client(base_url=base, timeout=120) as client:
            demo = "91511702MA62X8Q157"  # a major tax violator among the demo subjects
            assert _check(client, keys, demo, "public_bidding")["eligible"] is True
            new = _publish(client, keys["tax"], "taxation", bar_bidding(_head(client, keys)["text"]))
        answers = []
        for _ in range(30):  # a connection each: the kernel hands them to either worker
            with httpx.Client(base_url=base, timeout=120) as client:
                answers.append(_check(client, keys, demo, "public_bidding"))
        assert all(a["eligible"] is False for a in answers)
        with httpx.Client(base_url=base, timeout=120) as client:
            assert {_logged_revisions(client, keys, a)["taxation"] for a in answers} == {new}
        log = (tmp_path / "serve.log").read_text()
        assert log.count("Application startup complete") == 2, log  # two workers did answer
