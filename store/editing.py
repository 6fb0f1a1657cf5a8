"""Departments edit their own rulebooks: drafts checked like `jointcredit lint`, a dry run
that shows what a revision would do to every stored subject, publication with an effective
date (gated by the rulebook's own tests), rollback, diffs and the audit trail.

Publishing compiles the new era once, re-materialises every subject into a new generation
of obligations and switches to it in the transaction that writes the publication; checks
running meanwhile read the old generation. Publishes, rollbacks, imports and record pushes
are serialised by the cluster lock (store/cluster_lock.py), in whichever processes they
arrive, and each starts from the catalog the database says is in force.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date

from catalog.vocabulary import load_vocabulary
from engine.compiler import compile_texts
from engine.eligibility import BARRING_EFFECTS
from engine.errors import RulebookErrors
from engine.evaluator import Evaluator
from engine.lint import lint_texts
from engine.rulebook_diff import structural_diff, text_diff
from engine.testing import run_rulebook_tests

from .affected import subjects_reading
from .rulebook_store import StaleRevision
from .service import Publication, Service, ServiceError

__all__ = ["RulebookEditor"]

SAMPLES = 5
IMPACT_BATCH = 2000  # subjects read per batch by a dry run


def _diagnostics_error(diagnostics) -> ServiceError:
    return ServiceError("rulebook_invalid", f"{len(diagnostics)} error(s) in the rulebook",
                        errors=[d.to_dict() for d in diagnostics])


class RulebookEditor:
    def __init__(self, service: Service):
        self.service = service
        self.store = service.rulebook_store

    # -- reading ------------------------------------------------------------------------------
    def owner(self, name: str) -> str | None:
        era = self.service.current_history().latest
        if name in era.catalog.rulebooks:
            return era.catalog.rulebooks[name].owner
        head = self.store.head(name)
        if head is not None:
            import yaml

            try:
                return (yaml.safe_load(head.text) or {}).get("owner")
            except yaml.YAMLError:
                return None
        return None

    def list(self) -> list[dict]:
        era = self.service.current_history().at(date.today())
        out = []
        for name in self.store.names():
            head = self.store.head(name)
            rulebook = era.catalog.rulebooks.get(name)
            out.append({"name": name, "title": rulebook.title if rulebook else None, "owner": self.owner(name),
                        "revision": era.revisions.get(name), "head": head.revision if head else None,
                        "head_state": head.state if head else None})
        return out

    def head(self, name: str):
        head = self.store.head(name)
        if head is None:
            raise ServiceError("unknown_rulebook", f"no rulebook named {name!r}", status=404)
        return head

    def revision(self, name: str, revision: str):
        found = self.store.get(name, revision)
        if found is None:
            raise ServiceError("unknown_revision", f"rulebook {name!r} has no revision {revision!r}", status=404)
        return found

    # -- drafts -------------------------------------------------------------------------------
    def _texts_with(self, name: str, text: str) -> dict[str, str]:
        texts = dict(self.service.current_history().latest.texts)
        texts[name] = text
        return texts

    def check(self, name: str, text: str) -> list:
        """Every error `jointcredit lint` would report for this text among the rulebooks in force."""
        _, diagnostics = lint_texts({f"{n}.yaml": t for n, t in self._texts_with(name, text).items()}, load_vocabulary())
        return [d for d in diagnostics if d.severity == "error" and d.file == f"{name}.yaml"] or \
            [d for d in diagnostics if d.severity == "error"]

    def save(self, name: str, text: str, if_match: str | None, author: str, comment: str):
        if not comment or not comment.strip():
            raise ServiceError("missing_comment", "a change comment is required", errors=[{"field": "comment"}])
        errors = self.check(name, text)
        if errors:
            raise _diagnostics_error(errors)
        try:
            return self.store.save_draft(name, text, if_match, author, comment.strip())
        except StaleRevision as exc:
            raise ServiceError("stale_revision", str(exc), status=409,
                               errors=[{"head": exc.head, "your_base": if_match}])

    # -- dry run ------------------------------------------------------------------------------
    def _candidate(self, name: str, text: str):
        try:
            catalog = compile_texts(self._texts_with(name, text), load_vocabulary())
        except RulebookErrors as exc:
            raise _diagnostics_error(exc.diagnostics)
        return catalog

    def test(self, name: str, text: str):
        catalog = self._candidate(name, text)
        outcomes = run_rulebook_tests(catalog, only={name})
        return catalog, outcomes

    def dry_run(self, name: str, revision: str, as_of: str | None = None) -> dict:
        info = self.revision(name, revision)
        as_of = self.service.check_date(as_of)
        catalog, outcomes = self.test(name, info.text)
        tests = {"passed": sum(o.passed for o in outcomes), "failed": sum(not o.passed for o in outcomes),
                 "failures": [{"name": o.name, "failures": o.failures} for o in outcomes if not o.passed]}
        impact = self.impact(catalog, as_of, name)
        return {"rulebook": name, "revision": revision, "as_of": as_of, "tests": tests, **impact}

    def impact(self, catalog, as_of: str, name: str) -> dict:
        """Obligations that would appear, disappear or change on `as_of`, and eligibility that would
        flip, if `catalog` (with rulebook `name` changed) were in force. Only the subjects the change
        can affect are evaluated (store/affected.py), as a publish re-materialises only those."""
        old = self.service.current_history().at(as_of).evaluator
        new = Evaluator(catalog)
        codes = subjects_reading(self.service.repository, [old.catalog, catalog], {name})
        day = date.fromisoformat(as_of)
        per_department = defaultdict(lambda: {"appear": 0, "disappear": 0, "change": 0})
        per_measure = defaultdict(lambda: {"appear": 0, "disappear": 0, "change": 0, "samples": []})
        flips = defaultdict(lambda: {"became_ineligible": 0, "became_eligible": 0, "samples": []})
        subjects = 0
        repository = self.service.repository
        for start in range(0, len(codes), IMPACT_BATCH):
            for bundle in repository.load_bundles(codes[start:start + IMPACT_BATCH]).values():
                subjects += 1
                before = {self._key(a): a for a in old.evaluate(bundle, day).actions}
                after = {self._key(a): a for a in new.evaluate(bundle, day).actions}
                for key in set(before) | set(after):
                    a, b = before.get(key), after.get(key)
                    if a is None:
                        kind, action = "appear", b
                    elif b is None:
                        kind, action = "disappear", a
                    elif self._shape(a) != self._shape(b):
                        kind, action = "change", b
                    else:
                        continue
                    per_department[action.department.code][kind] += 1
                    entry = per_measure[action.measure.id]
                    entry[kind] += 1
                    if len(entry["samples"]) < SAMPLES:
                        entry["samples"].append({"subject": bundle.subject.code, "target": action.target_code,
                                                 "change": kind})
                self._flips(before.values(), after.values(), flips, bundle.subject.code)
        return {"subjects_evaluated": subjects, "departments": dict(per_department), "measures": dict(per_measure),
                "eligibility_flips": dict(flips)}

    @staticmethod
    def _key(action) -> tuple:
        return (action.measure.id, action.target_code, action.rule.id)

    @staticmethod
    def _shape(action) -> tuple:
        return (action.status, action.department.code, action.valid_from, action.valid_until, tuple(action.records),
                tuple((e.activity, e.effect) for e in action.measure.effects))

    @staticmethod
    def _barred(actions) -> set[tuple[str, str]]:
        return {(a.target_code, e.activity) for a in actions if a.measure.kind == "punishment" and a.status != "suspended"
                for e in a.measure.effects if e.effect in BARRING_EFFECTS}

    def _flips(self, before, after, flips, subject: str) -> None:
        old, new = self._barred(before), self._barred(after)
        for target, activity in new - old:
            flips[activity]["became_ineligible"] += 1
            if len(flips[activity]["samples"]) < SAMPLES:
                flips[activity]["samples"].append({"subject": target, "now": "ineligible", "via": subject})
        for target, activity in old - new:
            flips[activity]["became_eligible"] += 1
            if len(flips[activity]["samples"]) < SAMPLES:
                flips[activity]["samples"].append({"subject": target, "now": "eligible", "via": subject})

    # -- publish and roll back ----------------------------------------------------------------
    def publish(self, name: str, revision: str, effective_from: str | None, actor: str, comment: str = "",
                action: str = "publish", *, retroactive_reason: str | None = None, may_backdate: bool = False) -> dict:
        """Put `revision` in force from `effective_from` (default today). A date before today would
        change what answers already given for those days mean: refused (409
        retroactive_publish) unless `may_backdate` (an admin) and a `retroactive_reason`, which
        goes into the audit trail."""
        info = self.revision(name, revision)
        effective_from = self.service.check_date(effective_from, "effective_from")
        comment = comment or info.comment
        today = date.today().isoformat()
        if effective_from < today:
            reason = (retroactive_reason or "").strip()
            if not (may_backdate and reason):
                raise ServiceError("retroactive_publish",
                                   f"effective_from {effective_from} is before today ({today}): answers already given "
                                   "for those days would change their meaning. Only an admin may do that, with a "
                                   "`retroactive_reason`", status=409,
                                   errors=[{"field": "effective_from", "value": effective_from, "minimum": today}])
            comment = f"{comment} [retroactive from {effective_from}, by {actor}: {reason}]".strip()
        with self.service.writing(f"publishing {name}"):  # the catalog in force now, as the database says
            latest = self.service.history.latest
            if effective_from < latest.start:
                raise ServiceError("effective_from_too_early",
                                   f"effective_from {effective_from} is before the last publication's {latest.start}",
                                   errors=[{"field": "effective_from", "value": effective_from, "minimum": latest.start}])
            _, outcomes = self.test(name, info.text)
            failed = [o for o in outcomes if not o.passed]
            if failed:
                raise ServiceError("tests_failed", f"{len(failed)} of the rulebook's tests fail; not published",
                                   status=409, errors=[{"name": o.name, "failures": o.failures} for o in failed])
            rebuild = self.service.put_in_force([Publication(name, info.text, effective_from, actor, comment,
                                                             action=action)])
        return {"rulebook": name, "revision": revision, "effective_from": effective_from,
                "subjects_rematerialised": rebuild["done"], "rebuild": rebuild["id"],
                "tests": {"passed": len(outcomes), "failed": 0}}

    def rollback(self, name: str, to: str, effective_from: str | None, actor: str, comment: str = "", *,
                 retroactive_reason: str | None = None, may_backdate: bool = False) -> dict:
        self.revision(name, to)
        return self.publish(name, to, effective_from, actor, comment or f"rollback to {to}", action="rollback",
                            retroactive_reason=retroactive_reason, may_backdate=may_backdate)

    def diff(self, name: str, old: str, new: str) -> dict:
        a, b = self.revision(name, old), self.revision(name, new)
        return {"rulebook": name, "from": old, "to": new,
                "text": text_diff(a.text, b.text, f"{name}@{old}", f"{name}@{new}"),
                **structural_diff(a.text, b.text)}
