"""The store on a real SQLite file and a real PostgreSQL database: records in, obligations
kept current, answers for any date from intervals, a tamper-evident decision log."""
import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import text

import engine
from store.editing import RulebookEditor
from store.service import Service
from store.settings import Settings

from conftest import bundle, entry, org_code, person_code


@pytest.fixture
def service(database_url):
    svc = Service(Settings(database_url=database_url, load_demo=False))
    yield svc
    svc.close()


def company_with_rep(n, *records):
    person = person_code(n)
    return bundle(org_code(n), *records, {"id": f"rel{n}", "kind": "relation", "type": "legal_representative",
                                           "other": person, "listed_on": "2020-01-01"}, related=[person])


def test_obligations_follow_record_changes_and_reach_linked_persons(service):
    obj = company_with_rep(100, entry("tax.major_violation", "2024-03-15", document="D1"))
    service.save([engine.parse_bundle(obj)])
    company, person = org_code(100), person_code(100)
    procurement = service.eligibility(company, "government_procurement", "2025-06-30", "test")
    assert procurement["eligible"] is False and procurement["known"] is True
    assert procurement["restrictions"][0]["records"][0]["document"] == "D1"
    director = service.eligibility(person, "senior_management", "2025-06-30", "test")
    assert director["eligible"] is False and director["restrictions"][0]["relation"] == "legal_representative"
    assert service.eligibility(company, "government_procurement", "2024-03-14", "test")["eligible"] is True
    # the listing is repaired: answers from that date change, answers before it do not
    obj["records"][0].update(status="repaired", status_on="2025-05-01")
    service.save([engine.parse_bundle(obj)])
    assert service.eligibility(company, "government_procurement", "2025-06-30", "test")["eligible"] is True
    assert service.eligibility(company, "government_procurement", "2025-04-30", "test")["eligible"] is False
    assert service.eligibility(person, "senior_management", "2025-06-30", "test")["eligible"] is True


def test_unknown_but_valid_subject_is_eligible_and_unknown(service):
    answer = service.eligibility(org_code(101), "public_bidding", "2025-06-30", "test")
    assert answer["eligible"] is True and answer["known"] is False and answer["restrictions"] == []


def test_saving_twice_is_idempotent(service):
    obj = company_with_rep(102, entry("safety.dishonest", "2025-01-01"))
    service.save([engine.parse_bundle(obj)])
    service.save([engine.parse_bundle(obj)])
    with service.engine.connect() as c:
        assert c.execute(text("select count(*) from records")).scalar_one() == 2
        first = c.execute(text("select count(*) from obligations")).scalar_one()
    service.save([engine.parse_bundle(obj)])
    with service.engine.connect() as c:
        assert c.execute(text("select count(*) from obligations")).scalar_one() == first > 0


def test_decision_log_verifies_and_shows_tampering(service):
    for i in range(5):
        service.eligibility(org_code(103 + i), "government_procurement", "2025-06-30", f"caller{i}")
    assert service.decisions.verify() == {"ok": True, "checked": 5, "broken_at": None}
    with service.engine.begin() as c:
        c.execute(text("update decisions set caller = 'someone else' where seq = 3"))
    result = service.decisions.verify()
    assert result["ok"] is False and result["broken_at"]["seq"] == 3 and result["checked"] == 2


def test_deleting_the_last_decision_is_detected(service):
    for i in range(3):
        service.eligibility(org_code(110 + i), "honours", None, "c")
    with service.engine.begin() as c:
        c.execute(text("delete from decisions where seq = 3"))
    assert service.decisions.verify()["ok"] is False


def test_concurrent_appends_keep_one_chain(service):
    errors = []

    def work(k):
        try:
            for i in range(15):
                service.eligibility(org_code(200 + i), "honours", "2025-06-30", f"t{k}")
        except Exception as exc:  # pragma: no cover
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []
    assert service.decisions.verify() == {"ok": True, "checked": 60, "broken_at": None}


def test_a_decision_records_caller_request_answer_and_revisions(service):
    answer = service.eligibility(org_code(120), "land_supply", "2025-06-30", "system:procurement")
    stored = service.decisions.get(answer["decision_id"])
    assert stored["caller"] == "system:procurement"
    assert stored["request"] == {"subject": org_code(120), "activity": "land_supply", "as_of": "2025-06-30"}
    assert stored["answer"]["eligible"] is True
    assert stored["revisions"] == service.catalog.revisions


@pytest.mark.parametrize("call, code", [
    (lambda s: s.eligibility("91511700000000000X", "honours", None, "t"), "invalid_subject_code"),
    (lambda s: s.eligibility(org_code(1), "honour", None, "t"), "unknown_activity"),
    (lambda s: s.eligibility(org_code(1), "honours", "2025-02-30", "t"), "invalid_date"),
    (lambda s: s.eligibility_batch([], "honours", None, False, "t"), "empty_batch"),
])
def test_bad_input_has_stable_codes(service, call, code):
    from store.service import ServiceError

    with pytest.raises(ServiceError) as info:
        call(service)
    assert info.value.code == code and 400 <= info.value.status < 500


def test_consortium_is_barred_by_one_member(service):
    service.save([engine.parse_bundle(bundle(org_code(130), entry("court.judgment_defaulter", "2025-01-01")))])
    result = service.eligibility_batch([org_code(131), org_code(130)], "public_bidding", "2025-06-30", True, "t")
    assert result["eligible"] is False
    assert [m["subject"] for m in result["restricted_members"]] == [org_code(130)]
    assert [a["eligible"] for a in result["answers"]] == [True, False]


def test_changed_rulebooks_take_effect_from_today_and_rematerialise(database_url, tmp_path, monkeypatch):
    import shutil
    from datetime import date, timedelta

    from conftest import TEST_RULEBOOKS

    today = date.today()
    books = tmp_path / "books"
    shutil.copytree(TEST_RULEBOOKS, books)
    settings = Settings(database_url=database_url, load_demo=False, rulebooks=str(books))
    first = Service(settings)
    listed = (today - timedelta(days=60)).isoformat()
    first.save([engine.parse_bundle(bundle(org_code(140), entry("safety.dishonest", listed)))])
    before, after = (today - timedelta(days=1)).isoformat(), (today + timedelta(days=1)).isoformat()
    assert first.repository.obligations_for(org_code(140), after)
    first.close()
    # the department edits its rulebook on disk: safety listings no longer trigger this measure
    path = books / "rewards.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("list: safety.dishonest", "list: statistics.serious_dishonest"),
                    encoding="utf-8")
    second = Service(settings)
    assert second.repository.obligations_for(org_code(140), after) == []
    assert second.repository.obligations_for(org_code(140), before)  # earlier dates keep the old catalog
    assert [e.start for e in second.history.eras][1] == today.isoformat()
    assert second.history.at(today).revisions["rewards"] != second.history.at(before).revisions["rewards"]
    assert second.sync_rulebooks_from_disk() is False  # nothing changed since
    # the catalog of today (what the checks validate against) is kept, but follows the day ...
    assert second.catalog is second.history.at(today).catalog
    import store.service

    class Yesterday(date):
        @classmethod
        def today(cls):
            return today - timedelta(days=1)

    monkeypatch.setattr(store.service, "date", Yesterday)
    assert second.catalog is second.history.at(before).catalog
    monkeypatch.undo()
    assert second.catalog is second.history.at(today).catalog
    # ... and a new history (another process published)
    old_history = second.history
    third = Service(settings)
    RulebookEditor(third).publish("rewards", third.rulebook_store.head("rewards").revision, after, "test")
    third.close()
    second.refresh_if_stale()
    assert second.history is not old_history and second.catalog is second.history.at(today).catalog
    assert [e.start for e in second.history.eras][-1] == after
    second.close()


def test_history_remembers_the_era_of_each_day_it_was_asked_about():
    """at() keeps its answers (every check asks for its as_of), within a bound."""
    from store import history as h

    eras = [h.Era(start, None, {}, None, None) for start in ("2024-03-01", h.BEGINNING, "2025-01-01")]
    history = h.CatalogHistory(eras)
    days = [f"{y}-{m:02d}-{d:02d}" for y in (2023, 2024, 2025) for m in range(1, 13) for d in (1, 15, 28)]

    def expected(day):
        return max((e for e in eras if e.start <= day), key=lambda e: e.start)

    for _ in range(2):  # asked, then remembered
        assert [history.at(day) for day in days] == [expected(day) for day in days]
    assert history.at(date(2024, 3, 1)) is expected("2024-03-01")
    small = h.CatalogHistory(eras)
    for n in range(h._DAYS_REMEMBERED + 10):
        day = (date(2015, 1, 1) + timedelta(days=n)).isoformat()
        assert small.at(day) is expected(day)
    assert len(small._by_day) <= h._DAYS_REMEMBERED


def test_store_columns_hold_whatever_the_bundle_parser_accepts():
    from engine.bundle import FIELD_LIMITS
    from store.models import RecordRow, Subject as SubjectRow

    columns = {c.name: c.type.length for c in RecordRow.__table__.columns if getattr(c.type, "length", None)}
    columns["id"] = columns.pop("record_id")
    columns["name"] = SubjectRow.__table__.c.name.type.length
    for field, limit in FIELD_LIMITS.items():
        assert columns[field] >= limit, field


@pytest.mark.parametrize("value, code", [
    ("2025-W01-1", "invalid_date"), ("0005-01-01", "invalid_date"), (["x"], "wrong_type"), ("a" * 201, "value_too_long"),
    ("bad\x00", "invalid_character")])
def test_values_the_store_could_not_hold_are_refused_at_parse_time(value, code):
    obj = bundle(org_code(150), entry("tax.major_violation", "2024-01-01"))
    field = "listed_on" if code == "invalid_date" else "document"
    obj["records"][0][field] = value
    with pytest.raises(engine.BundleError) as info:
        engine.parse_bundle(obj)
    assert info.value.code == code and info.value.field == f"records[0].{field}"


def test_a_replaced_generation_is_dropped_in_small_transactions_and_nothing_else(service, monkeypatch):
    """The rows of every generation before the one kept go, walked DROP_BATCH ids at a time (here 3,
    so the walk has many boundaries), whatever the order the generations' ids interleave in."""
    import store.repository as repository

    codes = [org_code(700 + i) for i in range(7)]
    service.save([engine.parse_bundle(bundle(code, entry("tax.major_violation", "2024-03-15"))) for code in codes])
    current = service.repository.generation()
    materialiser = service.materialiser
    for generation in (current - 6, current - 5):  # two superseded generations beside the one in force
        materialiser._refresh_batch(codes[:4], generation, {"kind": "test"})
    service.save([engine.parse_bundle(bundle(org_code(720), entry("tax.major_violation", "2024-03-15")))])

    def count(where: str) -> int:
        with service.engine.connect() as c:
            return c.execute(text(f"SELECT COUNT(*) FROM obligations WHERE {where}")).scalar()

    kept, stray = count(f"generation = {current}"), count(f"generation != {current}")
    assert kept and stray
    transactions = []
    begin = service.engine.begin
    monkeypatch.setattr(service.engine, "begin", lambda: transactions.append(1) or begin())
    monkeypatch.setattr(repository, "DROP_BATCH", 3)
    assert service.repository.drop_generations_before(current) == stray
    assert count(f"generation != {current}") == 0 and count(f"generation = {current}") == kept
    assert len(transactions) > stray // 3
