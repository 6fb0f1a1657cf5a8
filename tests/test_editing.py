"""Departments edit rulebooks: drafts, conflicts, dry runs, test-gated publication with an
effective date, rollback, and no half-applied catalog while checks run."""
import threading
from datetime import date, timedelta

import pytest

import engine
from store.editing import RulebookEditor
from store.service import Service, ServiceError
from store.settings import Settings

from conftest import TEST_RULEBOOKS, bundle, entry, org_code

TODAY = date.today()
RECENT = (TODAY - timedelta(days=30)).isoformat()
BIDDING = "      - {activity: government_procurement, effect: deny}\n"


@pytest.fixture
def editor(database_url):
    service = Service(Settings(database_url=database_url, load_demo=False, rulebooks=str(TEST_RULEBOOKS)))
    service.save([engine.parse_bundle(bundle(org_code(400 + i), entry("tax.major_violation", RECENT))) for i in range(3)]
                 + [engine.parse_bundle(bundle(org_code(410), entry("safety.dishonest", RECENT)))])
    yield RulebookEditor(service)
    service.close()


def with_bidding_ban(text):
    assert BIDDING in text
    return text.replace(BIDDING, BIDDING + "      - {activity: public_bidding, effect: deny}\n", 1)


def test_draft_needs_the_current_etag_and_a_comment(editor):
    head = editor.head("taxation")
    new = with_bidding_ban(head.text)
    with pytest.raises(ServiceError) as info:
        editor.save("taxation", new, head.revision, "tax", "  ")
    assert info.value.code == "missing_comment"
    draft = editor.save("taxation", new, head.revision, "tax", "bar bidding too")
    assert draft.state == "draft" and draft.parent == head.revision
    with pytest.raises(ServiceError) as info:  # someone edits from the old copy
        editor.save("taxation", new.replace("依法限制", "限制"), head.revision, "other", "mine")
    assert info.value.status == 409 and info.value.errors[0]["head"] == draft.revision
    assert editor.head("taxation").revision == draft.revision  # the first edit is not lost


def test_a_draft_with_errors_gets_every_error_with_its_position(editor):
    head = editor.head("taxation")
    bad = head.text.replace("department: finance", "department: financ").replace("list: tax.major_violation", "list: tax.nope", 1)
    with pytest.raises(ServiceError) as info:
        editor.save("taxation", bad, head.revision, "tax", "typo")
    codes = sorted(e["code"] for e in info.value.errors)
    assert info.value.code == "rulebook_invalid" and codes == ["unknown_department", "unknown_list"]
    assert all(e["line"] > 1 and e["column"] >= 1 for e in info.value.errors)
    assert editor.head("taxation").revision == head.revision


def test_dry_run_reports_tests_impact_and_flips(editor):
    head = editor.head("taxation")
    draft = editor.save("taxation", with_bidding_ban(head.text), head.revision, "tax", "bar bidding too")
    result = editor.dry_run("taxation", draft.revision)
    assert result["tests"] == {"passed": 4, "failed": 0, "failures": []}
    assert result["measures"]["tax.procurement_ban"]["change"] == 3
    assert result["departments"]["finance"]["change"] == 3
    assert result["eligibility_flips"]["public_bidding"]["became_ineligible"] == 3
    assert "safety" not in str(result["eligibility_flips"])


def test_publish_is_refused_when_the_rulebooks_tests_fail(editor):
    head = editor.head("taxation")
    broken = head.text.replace("{measure: tax.procurement_ban, status: disputed}", "{measure: tax.procurement_ban, status: active}")
    draft = editor.save("taxation", broken, head.revision, "tax", "breaks a test")
    assert editor.dry_run("taxation", draft.revision)["tests"]["failed"] == 1
    with pytest.raises(ServiceError) as info:
        editor.publish("taxation", draft.revision, None, "tax")
    assert info.value.code == "tests_failed" and info.value.status == 409


def test_publish_takes_effect_from_its_date_and_can_be_rolled_back(editor):
    service = editor.service
    head = editor.head("taxation")
    draft = editor.save("taxation", with_bidding_ban(head.text), head.revision, "tax", "bar bidding too")
    start = (TODAY + timedelta(days=10)).isoformat()
    before, after = (TODAY + timedelta(days=9)).isoformat(), (TODAY + timedelta(days=11)).isoformat()
    assert service.eligibility(org_code(400), "public_bidding", after, "t")["eligible"] is True
    editor.publish("taxation", draft.revision, start, "tax")
    assert service.eligibility(org_code(400), "public_bidding", before, "t")["eligible"] is True
    assert service.eligibility(org_code(400), "public_bidding", after, "t")["eligible"] is False
    assert service.decisions.get(service.eligibility(org_code(400), "public_bidding", after, "t")["decision_id"])[
        "revisions"]["taxation"] == draft.revision
    later = (TODAY + timedelta(days=20)).isoformat()
    editor.rollback("taxation", head.revision, later, "admin", "undo")
    assert service.eligibility(org_code(400), "public_bidding", after, "t")["eligible"] is False
    assert service.eligibility(org_code(400), "public_bidding", (TODAY + timedelta(days=21)).isoformat(), "t")["eligible"] is True
    actions = [c["action"] for c in editor.store.changes("taxation")]
    assert actions[:3] == ["rollback", "publish", "draft"]
    with pytest.raises(ServiceError) as info:
        editor.publish("taxation", draft.revision, TODAY.isoformat(), "tax")
    assert info.value.code == "effective_from_too_early"


def test_diff_lists_changed_measures(editor):
    head = editor.head("taxation")
    draft = editor.save("taxation", with_bidding_ban(head.text), head.revision, "tax", "bar bidding too")
    diff = editor.diff("taxation", head.revision, draft.revision)
    assert diff["measures"] == {"added": [], "removed": [], "changed": ["tax.procurement_ban"]}
    assert "+      - {activity: public_bidding, effect: deny}" in diff["text"]


def test_checks_during_publishes_never_see_a_half_applied_catalog(editor, monkeypatch):
    from store.materialise import Materialiser

    monkeypatch.setattr(Materialiser, "BATCH", 1)  # a rebuild in many small steps
    service = editor.service
    day = TODAY.isoformat()
    old = {i: service.eligibility(org_code(400 + i), "public_bidding", day, "t", log=False)["eligible"] for i in range(3)}
    tax_head = editor.head("taxation")
    tax = editor.save("taxation", with_bidding_ban(tax_head.text), tax_head.revision, "tax", "bidding")
    rew_head = editor.head("rewards")
    rewards = editor.save("rewards", rew_head.text.replace("action: 行政审批绿色通道", "action: 行政审批绿色通道（修订）"),
                          rew_head.revision, "ndrc", "wording")
    seen, errors, stop = [], [], threading.Event()

    def check():
        # one read (the finance department's worklist) covers all three subjects
        while not stop.is_set():
            rows = service.repository.obligations_for_department("finance", day)
            bans = {r["target_code"]: any(e["activity"] == "public_bidding" for e in r["effects"])
                    for r in rows if r["measure"] == "tax.procurement_ban"}
            seen.append(tuple(bans.get(org_code(400 + i)) for i in range(3)))

    def publish(name, revision):
        try:
            editor.publish(name, revision, day, name)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)
    checker = threading.Thread(target=check)
    checker.start()
    publishers = [threading.Thread(target=publish, args=("taxation", tax.revision)),
                  threading.Thread(target=publish, args=("rewards", rewards.revision))]
    [p.start() for p in publishers]
    [p.join() for p in publishers]
    stop.set()
    checker.join()
    assert errors == []
    assert set(seen) <= {(False, False, False), (True, True, True)}  # all three flip together, or none
    assert old == {0: True, 1: True, 2: True}
    latest = service.history.latest.revisions
    assert latest["taxation"] == tax.revision and latest["rewards"] == rewards.revision
    assert all(not service.eligibility(org_code(400 + i), "public_bidding", day, "t")["eligible"] for i in range(3))
