"""The lifecycle of a record on a real SQLite file and a real PostgreSQL database: objections,
credit repair, publication periods ending obligations by themselves, departments' feedback and
the change feed they poll."""
from datetime import date

import pytest
from sqlalchemy import text

import engine
from engine.explain import explanation_graph, to_dot, to_node_link
from engine.temporal import record_states
from store.feedback import OVERDUE_DAYS, Feedback
from store.lifecycle import Lifecycle, add_working_days
from store.repository import now_iso
from store.service import Service, ServiceError
from store.settings import Settings

from conftest import TEST_RULEBOOKS, bundle, entry, org_code, person_code

PROCUREMENT = "government_procurement"


@pytest.fixture
def service(database_url):
    svc = Service(Settings(database_url=database_url, load_demo=False, rulebooks=str(TEST_RULEBOOKS)))
    yield svc
    svc.close()


@pytest.fixture
def lifecycle(service):
    return Lifecycle(service)


@pytest.fixture
def feedback(service):
    return Feedback(service)


def listed(service, n, list_code="tax.major_violation", listed_on="2024-03-15", **extra):
    """A company on a list, with a legal representative; returns (company, person, record id)."""
    extra = {"department": "tax", **extra} if list_code.startswith("tax") else extra
    record = entry(list_code, listed_on, **extra)
    person = person_code(n)
    obj = bundle(org_code(n), record, {"id": f"rel{n}", "kind": "relation", "type": "legal_representative",
                                       "other": person, "listed_on": "2015-01-01"}, related=[person])
    service.save([engine.parse_bundle(obj)])
    return org_code(n), person, record["id"]


def check(service, code, as_of, activity=PROCUREMENT):
    return service.eligibility(code, activity, as_of, "test", log=False)


def fails(code, call, *args, **kwargs):
    with pytest.raises(ServiceError) as info:
        call(*args, **kwargs)
    assert info.value.code == code, info.value.to_dict()
    return info.value


def record_of(service, code, rid):
    return next(r for r in service.repository.subject(code)["records"] if r["id"] == rid)


# -- objections ------------------------------------------------------------------------------------
def test_an_objection_marks_the_record_disputed_from_filing_and_answers_say_so(service, lifecycle):
    company, person, rid = listed(service, 500)
    case = lifecycle.file_objection(company, rid, "与 2023 年的处罚重复", ["达税复〔2025〕1号"], "rep:张三",
                                    on="2025-03-03")
    assert case["state"] == "pending" and case["department"] == "tax"  # the record's department decides
    assert case["deadline"] == "2025-03-24" == add_working_days("2025-03-03", 15)  # 15 working days
    assert record_of(service, company, rid)["status"] == "disputed"
    after = check(service, company, "2025-06-30")
    assert after["eligible"] is False and after["restrictions"][0]["disputed"] is True  # still applies, says so
    assert check(service, person, "2025-06-30", "senior_management")["restrictions"][0]["disputed"] is True
    before = check(service, company, "2025-03-02")
    assert before["eligible"] is False and before["restrictions"][0]["disputed"] is False  # the past is not rewritten
    queue = lifecycle.waiting("tax", as_of="2025-03-10")
    assert [o["id"] for o in queue["objections"]] == [case["id"]] and queue["objections"][0]["overdue"] is False
    assert lifecycle.waiting("tax", as_of="2025-03-25")["objections"][0]["overdue"] is True
    assert lifecycle.waiting("finance")["objections"] == []
    fails("objection_exists", lifecycle.file_objection, company, rid, "again", None, "rep:张三")
    fails("objection_pending", lifecycle.apply_repair, company, rid, "rep:张三", "repaired", on="2025-06-01")
    assert [e["action"] for e in lifecycle.events(company)] == ["filed"]


def test_an_objection_to_a_list_entry_without_department_goes_to_the_listing_authority(service, lifecycle):
    company, _, rid = listed(service, 501, "safety.dishonest", "2025-01-01")
    case = lifecycle.file_objection(company, rid, "not us", None, "desk:emergency", on="2025-02-01")
    assert case["department"] == "emergency"  # safety.dishonest is listed by 市应急管理局
    # a record naming a bureau that no longer exists reaches the one that inherited its duties
    company, _, rid = listed(service, 507, "tax.major_violation", "2018-01-05", department="state_tax")
    assert lifecycle.file_objection(company, rid, "x", None, "rep", on="2019-01-02")["department"] == "tax"


def test_an_upheld_objection_lifts_obligations_from_the_decision_date_only(service, lifecycle):
    company, person, rid = listed(service, 502)
    case = lifecycle.file_objection(company, rid, "wrong company", [], "rep:李四", on="2025-03-03")
    decided = lifecycle.decide_objection(case["id"], "uphold", "稽查文书所列主体有误", "tax:王五", on="2025-03-20",
                                         department="tax")
    assert (decided["state"], decided["decision"], decided["date"], decided["by"]) == (
        "upheld", "uphold", "2025-03-20", "tax:王五")
    stored = record_of(service, company, rid)
    assert (stored["status"], stored["status_on"]) == ("revoked", "2025-03-20")
    assert check(service, company, "2025-03-20")["eligible"] is True
    assert check(service, person, "2025-03-20", "senior_management")["eligible"] is True
    assert check(service, company, "2025-03-19")["eligible"] is False
    assert check(service, company, "2024-06-01")["eligible"] is False
    ban = [o for o in service.repository.obligations_for(company, "2025-03-19") if o["measure"] == "tax.procurement_ban"]
    assert ban[0]["valid_until"] == "2025-03-20"
    assert (ban[0]["provenance"]["ended_by"], ban[0]["provenance"]["ended_by_record"]) == ("revoked", rid)
    fails("not_pending", lifecycle.decide_objection, case["id"], "reject", "changed my mind", "tax:王五")
    assert [e["action"] for e in lifecycle.events(company)] == ["filed", "upheld"]
    # the explanation shows the decision and what it lifted
    (event,) = lifecycle.explanation_events(company)
    assert {"tax.procurement_ban", "tax.director_restriction"} <= {x["measure"] for x in event["lifted"]}
    assert lifecycle.cases_for(company)[rid][0]["reasons"] == "稽查文书所列主体有误"
    graph = explanation_graph(service.evaluation(company, "2025-06-30"), lifecycle=[event])
    node = f"lifecycle:objection:{case['id']}"
    assert graph.nodes[node]["decision"] == "uphold" and graph.nodes[node]["by"] == "tax:王五"
    assert graph.edges[node, f"record:{rid}"]["relation"] == "revoked"
    lifted = f"action:tax.procurement_ban:{company}:tax.major_violator.subject"
    assert graph.edges[node, lifted]["relation"] == "lifted" and graph.nodes[lifted]["status"] == "lifted"
    assert "tax:王五" in to_dot(graph) and to_node_link(graph)["nodes"]


def test_a_rejected_objection_restores_the_status_and_keeps_the_reasons(service, lifecycle):
    company, _, rid = listed(service, 503)
    case = lifecycle.file_objection(company, rid, "already paid", ["receipt"], "rep:赵六", on="2025-03-03")
    fails("not_your_case", lifecycle.decide_objection, case["id"], "reject", "no", "finance:x", department="finance")
    fails("invalid_decision", lifecycle.decide_objection, case["id"], "approve", "no", "tax:x")
    fails("missing_reasons", lifecycle.decide_objection, case["id"], "reject", " ", "tax:x")
    fails("invalid_decision_date", lifecycle.decide_objection, case["id"], "reject", "no", "tax:x", on="2025-03-02")
    decided = lifecycle.decide_objection(case["id"], "reject", "欠税未缴清", "tax:钱七", on="2025-03-10")
    assert decided["state"] == "rejected" and decided["reasons"] == "欠税未缴清"
    stored = record_of(service, company, rid)
    assert stored["status"] == "active" and "status_on" not in stored
    answer = check(service, company, "2025-06-30")
    assert answer["eligible"] is False and answer["restrictions"][0]["disputed"] is False
    graph = explanation_graph(service.evaluation(company, "2025-06-30"), lifecycle=lifecycle.explanation_events(company))
    assert graph.edges[f"lifecycle:objection:{case['id']}", f"record:{rid}"]["relation"] == "confirmed"
    assert [e["action"] for e in lifecycle.events(company)] == ["filed", "rejected"]


def test_an_upheld_objection_may_correct_the_record_instead(service, lifecycle):
    company, _, rid = listed(service, 504)
    case = lifecycle.file_objection(company, rid, "period too long", [], "rep:孙八", on="2025-03-03")
    fails("invalid_correction", lifecycle.decide_objection, case["id"], "uphold", "x", "tax:y", {"id": "other"})
    fails("invalid_date", lifecycle.decide_objection, case["id"], "uphold", "x", "tax:y", {"expires_on": "2025-13-01"})
    lifecycle.decide_objection(case["id"], "uphold", "期限更正", "tax:周九", {"expires_on": "2025-05-01",
                                                                         "document": "达税更〔2025〕2号"}, on="2025-03-20")
    stored = record_of(service, company, rid)
    assert (stored["status"], stored["expires_on"], stored["document"]) == ("active", "2025-05-01", "达税更〔2025〕2号")
    assert check(service, company, "2025-04-30")["eligible"] is False
    assert check(service, company, "2025-05-01")["eligible"] is True
    ban = [o for o in service.repository.obligations_for(company, "2025-04-30") if o["measure"] == "tax.procurement_ban"]
    assert ban[0]["provenance"]["ended_by"] == "expires_on" and ban[0]["provenance"]["records"][0]["document"] == "达税更〔2025〕2号"


def test_objections_refuse_bad_input_with_stable_codes(service, lifecycle):
    company, _, rid = listed(service, 505)
    fails("unknown_record", lifecycle.file_objection, company, "nope", "x", None, "rep")
    fails("unknown_subject", lifecycle.file_objection, org_code(599), "R1", "x", None, "rep")
    fails("invalid_subject_code", lifecycle.file_objection, "91511700000000000X", "R1", "x", None, "rep")
    fails("missing_grounds", lifecycle.file_objection, company, rid, "  ", None, "rep")
    fails("missing_actor", lifecycle.file_objection, company, rid, "x", None, None)
    fails("invalid_evidence", lifecycle.file_objection, company, rid, "x", {"a": 1}, "rep")
    fails("unknown_objection", lifecycle.decide_objection, 999, "reject", "x", "tax:y")
    fails("unknown_department", lifecycle.waiting, "taxx")
    fails("invalid_case_kind", lifecycle.decide, "appeal", 1, "reject", "x", "y")
    case = lifecycle.file_objection(company, rid, "x", None, "rep", on="2025-03-03")
    assert lifecycle.decide("objection", case["id"], "reject", "no grounds", "tax:y")["state"] == "rejected"
    gone, _, gone_rid = listed(service, 506, status="revoked", status_on="2025-01-01")
    fails("record_ended", lifecycle.file_objection, gone, gone_rid, "x", None, "rep")


# -- credit repair --------------------------------------------------------------------------------
def test_a_repair_before_the_minimum_publication_period_is_refused_with_the_date(service, lifecycle):
    company, _, rid = listed(service, 510)  # tax.major_violation: minimum P1Y from 2024-03-15
    error = fails("repair_too_early", lifecycle.apply_repair, company, rid, "rep:张三", "已补缴税款", on="2025-03-14")
    assert error.errors[0]["earliest"] == "2025-03-15" and "2025-03-15" in error.message
    case = lifecycle.apply_repair(company, rid, "rep:张三", "已补缴税款", on="2025-03-15")
    assert (case["state"], case["earliest"], case["department"]) == ("pending", "2025-03-15", "tax")
    assert lifecycle.waiting("tax", as_of="2025-03-15")["repairs"][0]["id"] == case["id"]
    fails("repair_exists", lifecycle.apply_repair, company, rid, "rep:张三", "again", on="2025-03-16")
    fails("repair_pending", lifecycle.file_objection, company, rid, "x", None, "rep")
    # a general penalty may be repaired after three months; a relation never
    penalty = {"id": "P1", "kind": "penalty", "severity": "general", "decided_on": "2025-01-10", "department": "market"}
    service.save([engine.parse_bundle(bundle(org_code(511), penalty))])
    assert fails("repair_too_early", lifecycle.apply_repair, org_code(511), "P1", "rep", "x",
                 on="2025-04-09").errors[0]["earliest"] == "2025-04-10"
    assert lifecycle.apply_repair(org_code(511), "P1", "rep", "x", on="2025-04-10")["department"] == "market"
    fails("repair_not_applicable", lifecycle.apply_repair, company, f"rel{510}", "rep", "x", on="2025-04-10")


def test_an_approved_repair_lifts_obligations_from_its_date_and_earlier_answers_are_unchanged(service, lifecycle):
    company, person, rid = listed(service, 512)

    def answer(code, as_of, activity=PROCUREMENT):
        a = check(service, code, as_of, activity)
        return a["eligible"], sorted((r["measure"], r["effect"], r["disputed"], r["valid_from"]) for r in a["restrictions"])
    earlier = {d: answer(company, d) for d in ("2024-03-15", "2025-01-01", "2025-04-09")}
    earlier_person = answer(person, "2025-04-09", "senior_management")
    case = lifecycle.apply_repair(company, rid, "rep:张三", "已补缴税款并缴纳滞纳金", on="2025-03-20")
    fails("invalid_decision_date", lifecycle.decide_repair, case["id"], "approve", "ok", "tax:x", on="2025-03-19")
    decided = lifecycle.decide_repair(case["id"], "approve", "符合修复条件", "tax:王五", on="2025-04-10")
    assert (decided["state"], decided["decision"], decided["date"]) == ("approved", "approve", "2025-04-10")
    assert record_of(service, company, rid)["status"] == "repaired"
    assert answer(company, "2025-04-10") == (True, [])
    assert answer(person, "2025-04-10", "senior_management") == (True, [])
    assert {d: answer(company, d) for d in earlier} == earlier  # earlier dates: the same answers
    assert answer(person, "2025-04-09", "senior_management") == earlier_person
    assert earlier["2025-04-09"][0] is False
    rows = [o for o in service.repository.obligations_for(company, "2025-04-09")]
    assert rows and all(o["valid_until"] == "2025-04-10" and o["provenance"]["ended_by"] == "repaired" for o in rows)
    (event,) = lifecycle.explanation_events(company)
    graph = explanation_graph(service.evaluation(company, "2025-06-30"), lifecycle=[event])
    assert graph.edges[f"lifecycle:repair:{case['id']}", f"record:{rid}"]["relation"] == "repaired"
    assert [e["action"] for e in lifecycle.events(company)] == ["applied", "approved"]
    fails("record_ended", lifecycle.apply_repair, company, rid, "rep", "again", on="2025-05-01")


def test_a_refused_repair_changes_nothing_but_keeps_the_reasons(service, lifecycle):
    company, _, rid = listed(service, 513)
    before = service.repository.obligations_for(company, "2025-06-30")
    case = lifecycle.apply_repair(company, rid, "rep", "please", on="2025-04-01")
    fails("missing_reasons", lifecycle.decide_repair, case["id"], "refuse", "", "tax:x")
    decided = lifecycle.decide("repair", case["id"], "refuse", "税款尚未补缴", "tax:x", on="2025-04-02")
    assert decided["state"] == "refused" and decided["reasons"] == "税款尚未补缴"
    assert record_of(service, company, rid)["status"] == "active"
    assert [o["valid_until"] for o in service.repository.obligations_for(company, "2025-06-30")] == \
        [o["valid_until"] for o in before]
    assert lifecycle.waiting("tax")["repairs"] == []


# -- publication periods -------------------------------------------------------------------------
def test_the_maximum_publication_period_ends_obligations_and_says_so(service):
    company, person, rid = listed(service, 520, listed_on="2020-01-10")  # tax list: publication max P3Y
    assert check(service, company, "2023-01-09")["eligible"] is False
    assert check(service, company, "2023-01-10")["eligible"] is True
    rows = service.repository.obligations_for(company, "2023-01-09") + service.repository.obligations_for(person, "2023-01-09")
    assert rows and {(o["valid_until"], o["provenance"]["ended_by"], o["provenance"]["ended_by_record"]) for o in rows} == {
        ("2023-01-10", "publication_max", rid)}


def test_a_disputed_record_with_a_filing_date_was_active_before_it(vocab):
    b = engine.parse_bundle(bundle(org_code(521), entry("tax.major_violation", "2024-01-01", status="disputed",
                                                        status_on="2025-02-01")))
    (rid,) = [r.id for r in b.records]
    assert record_states(b.records, "2025-01-31", vocab)[rid].status == "active"
    assert record_states(b.records, "2025-02-01", vocab)[rid].status == "disputed"


# -- feedback ------------------------------------------------------------------------------------
def keys_of(service, department, as_of, measure=None):
    rows = service.repository.obligations_for_department(department, as_of)
    return {r["target_code"]: r["obligation_key"] for r in rows if measure is None or r["measure"] == measure}


def test_feedback_matrix_and_overdue(service, feedback):
    for n, day in ((530, "2025-01-02"), (531, "2025-02-03"), (532, "2025-03-03"), (533, "2025-06-20")):
        listed(service, n, listed_on=day)
    bans = keys_of(service, "finance", "2025-06-30", "tax.procurement_ban")
    assert len(bans) == 4 and len(set(bans.values())) == 4
    feedback.mark(bans[org_code(530)], "finance", "applied", "已拒绝其投标", "finance:clerk")
    feedback.mark(bans[org_code(531)], "finance", "not_applicable", "该主体未参与采购", "finance:clerk")
    fails("missing_note", feedback.mark, bans[org_code(532)], "finance", "not_applicable", " ", "finance:clerk")
    fails("invalid_feedback_state", feedback.mark, bans[org_code(532)], "finance", "done", "", "finance:clerk")
    # marks are on the obligation, not on a row: they survive re-materialisation
    service.materialiser.refresh({org_code(530), org_code(531)})
    report = {d["code"]: d for d in feedback.report("2025-06-30")["departments"]}
    finance = report["finance"]
    # 532 listed 2025-03-03 is pending more than OVERDUE_DAYS; 533 listed 2025-06-20 is not yet overdue
    assert OVERDUE_DAYS == 30
    assert {k: finance[k] for k in ("pending", "applied", "not_applicable", "overdue", "total")} == {
        "pending": 2, "applied": 1, "not_applicable": 1, "overdue": 1, "total": 4}
    assert report["ndrc"]["pending"] == 8 and report["ndrc"]["overdue"] == 6  # funding + honours, per subject
    assert report["market"]["pending"] == 4  # the legal representatives' director restriction
    later = {d["code"]: d for d in feedback.report("2025-07-31")["departments"]}
    assert later["finance"]["overdue"] == 2
    work = {r["target_code"]: r for r in feedback.worklist("finance", "2025-06-30")["obligations"]
            if r["measure"] == "tax.procurement_ban"}
    assert work[org_code(530)]["feedback"]["state"] == "applied" and work[org_code(530)]["overdue"] is False
    assert work[org_code(532)]["feedback"] == {"state": "pending"} and work[org_code(532)]["overdue"] is True
    feedback.mark(bans[org_code(530)], "finance", "not_applicable", "撤回：误报", "finance:head")
    assert [m["state"] for m in feedback.history(bans[org_code(530)])] == ["applied", "not_applicable"]


def test_a_department_cannot_mark_another_departments_obligation(service, feedback):
    listed(service, 535)
    ban = keys_of(service, "finance", "2025-06-30", "tax.procurement_ban")[org_code(535)]
    error = fails("not_your_obligation", feedback.mark, ban, "tax", "applied", "", "tax:clerk")
    assert error.status == 403 and error.errors[0]["owners"] == ["finance"]
    fails("unknown_obligation", feedback.mark, "0" * 24, "finance", "applied", "", "finance:clerk")
    fails("unknown_department", feedback.mark, ban, "financ", "applied", "", "finance:clerk")
    assert feedback.history(ban) == []


# -- the change feed -----------------------------------------------------------------------------
def test_the_change_feed_after_a_record_push_and_after_an_objection_decision(service, lifecycle, feedback):
    start = now_iso()
    company, person, rid = listed(service, 540)
    first = feedback.changes("finance", since=start)
    (added,) = first["changes"]
    assert (added["change"], added["measure"], added["target_code"], added["effective"]) == (
        "added", "tax.procurement_ban", company, "2024-03-15")
    assert added["after"][0]["valid_until"] == "2027-03-15" and added["cause"] is None
    assert [c["measure"] for c in feedback.changes("market", since=start)["changes"]] == ["tax.director_restriction"]
    assert feedback.changes("customs", since=start[:10])["changes"]  # a date is a point in time too
    cursor = first["next"]["after"]
    service.save([service.repository.load_bundle(company)])  # the same push again: nothing changed
    assert feedback.changes("finance", after=cursor)["changes"] == []

    case = lifecycle.file_objection(company, rid, "wrong", [], "rep", on="2025-03-03")
    (filed,) = feedback.changes("finance", after=cursor)["changes"]
    assert (filed["change"], filed["effective"]) == ("changed", "2025-03-03")
    assert [i["status"] for i in filed["after"]] == ["active", "disputed"]
    assert filed["cause"] == {"kind": "objection", "id": case["id"], "action": "filed"}
    cursor = feedback.changes("finance", after=cursor)["next"]["after"]

    lifecycle.decide_objection(case["id"], "uphold", "错列", "tax:x", on="2025-04-01")
    (lifted,) = feedback.changes("finance", after=cursor)["changes"]
    assert (lifted["change"], lifted["effective"], lifted["ended_by"]) == ("lifted", "2025-04-01", "revoked")
    assert lifted["cause"] == {"kind": "objection", "id": case["id"], "action": "upheld"}
    assert lifted["obligation_key"] == added["obligation_key"]  # the same obligation throughout
    person_side = feedback.changes("market", after=0)["changes"]
    assert [c["change"] for c in person_side] == ["added", "changed", "lifted"] and person_side[0]["target_code"] == person
    fails("invalid_timestamp", feedback.changes, "finance", since="yesterday")
    fails("unknown_department", feedback.changes, "nobody")


def test_a_full_rebuild_reaches_the_feed_only_when_its_generation_answers(service, feedback):
    listed(service, 545)
    cursor = feedback.changes("finance", after=0)["next"]["after"]
    # a rebuild under a catalog where the ban also bars public bidding
    from store.editing import RulebookEditor

    editor = RulebookEditor(service)
    head = editor.head("taxation")
    bidding = "      - {activity: government_procurement, effect: deny}\n"
    draft = editor.save("taxation", head.text.replace(bidding, bidding + "      - {activity: public_bidding, effect: deny}\n"),
                        head.revision, "tax", "bar bidding too")
    new = service.repository.generation() + 1
    service.materialiser._refresh_batch([org_code(545)], new, {"kind": "rebuild", "generation": new})
    assert feedback.changes("finance", after=cursor)["changes"] == []  # nothing: the old generation still answers
    service.repository.switch_generation(new)
    assert feedback.changes("finance", after=cursor)["changes"] == []  # same catalog, same obligations
    editor.publish("taxation", draft.revision, date.today().isoformat(), "tax")
    changes = feedback.changes("finance", after=cursor)["changes"]
    assert [(c["change"], c["cause"]["kind"]) for c in changes] == [("changed", "rebuild")]
    assert changes[0]["effective"] == date.today().isoformat()


# -- the migration -------------------------------------------------------------------------------
def test_the_migration_gives_existing_obligations_their_keys(database_url):
    from alembic import command

    from store.changefeed import obligation_key
    from store.db import alembic_config, make_engine

    db = make_engine(database_url)
    config = alembic_config(db.url.render_as_string(hide_password=False))
    with db.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    with db.begin() as c:
        c.execute(text("insert into obligations (source_subject, target_code, measure, kind, department, department_name,"
                       " rule, rulebook, revision, status, effects, activities, provenance, valid_from, generation)"
                       " values ('S', 'T', 'm', 'punishment', 'finance', '市财政局', 'r', 'b', '1', 'active', '[]',"
                       " ',,', '{}', '2025-01-01', 0)"))
    with db.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with db.connect() as c:
        assert c.execute(text("select obligation_key from obligations")).scalar_one() == obligation_key("S", "T", "m", "r")
    with db.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
        command.upgrade(config, "head")
    db.dispose()
