"""Objections (异议) and credit repair (信用修复): how a record stops counting before its time.

An objection marks the record disputed from the day it is filed (earlier answers keep saying
what they said) and waits in the listing department's queue with a deadline. Upholding it
revokes the record from the decision date (or corrects it); rejecting it restores the status
the record had, and the reasons are kept. A repair application is accepted only once the
minimum publication period of the record's list or severity has run (国家发展改革委令第58号);
approval repairs the record from the decision date. Either way the subject's obligations are
re-materialised at once, and lifted ones carry `ended_by` revoked/repaired with the record.

Every step is a row in `lifecycle_events`, written in the transaction that takes it.

Errors are ServiceError with these codes: unknown_subject, unknown_record, unknown_objection,
unknown_repair, unknown_department (404); not_your_case (403); objection_exists,
repair_exists, objection_pending, repair_pending, record_ended, record_changed, not_pending
(409); missing_grounds, missing_statement, missing_reasons, missing_actor, invalid_evidence,
invalid_decision, invalid_decision_date, invalid_correction, repair_not_applicable,
repair_too_early, invalid_date and the bundle codes of a bad correction (422).
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from sqlalchemy import exc as sa_exc, select, update

import engine
from engine.bundle import Bundle, Record
from engine.temporal import ENDING_STATUSES, record_state, shift

from .models import LifecycleEvent, ObligationRow, Objection, RecordRow, RepairApplication
from .repository import _RECORD_FIELDS, Repository, now_iso
from .service import Service, ServiceError

__all__ = ["Lifecycle", "unknown_case", "add_working_days", "OBJECTION_DEADLINE_WORKING_DAYS", "REPAIR_DEADLINE_WORKING_DAYS",
           "CORRECTABLE_FIELDS"]

# The listing department answers an objection within 15 working days of filing (the usual
# rule in local 公共信用信息异议处理 procedures). Repairs get the same allowance here; local
# rules vary, so both are constants. Working days are Monday to Friday: public holidays and
# the weekends worked in exchange for them are not modelled.
OBJECTION_DEADLINE_WORKING_DAYS = 15
REPAIR_DEADLINE_WORKING_DAYS = 15

# What an upheld objection may correct in a record (bundle field names).
CORRECTABLE_FIELDS = ("list", "severity", "scheme", "grade", "category", "type", "department", "document",
                      "listed_on", "decided_on", "expires_on", "status", "status_on")

_DECISIONS = {"objection": {"uphold": "upheld", "reject": "rejected"},
              "repair": {"approve": "approved", "refuse": "refused"}}
_DECISION_OF = {state: decision for kinds in _DECISIONS.values() for decision, state in kinds.items()}
# The national coordinating body (市发展改革委) takes cases whose record names no department.
_FALLBACK_DEPARTMENT = "ndrc"


def add_working_days(day: str, n: int) -> str:
    """`day` plus `n` working days (Monday to Friday)."""
    current = date.fromisoformat(day)
    while n > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            n -= 1
    return current.isoformat()


def _required(value, field: str, code: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ServiceError(code, f"`{field}` must be a non-empty text", errors=[{"field": field, "value": value}])
    return value.strip()


def _evidence(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v for v in value if v.strip()]
    raise ServiceError("invalid_evidence", "`evidence` must be a text or a list of texts (document references)",
                       errors=[{"field": "evidence", "value": value}])


def unknown_case(kind: str, case_id) -> ServiceError:
    """The error for an objection or repair that does not exist (or that the caller may not read:
    the API answers both alike)."""
    return ServiceError(f"unknown_{kind}", f"no {kind} {case_id!r}", status=404, errors=[{"field": "id", "value": case_id}])


class Lifecycle:
    """Objections and repairs over a Service: filing, the departments' queues, decisions."""

    def __init__(self, service: Service):
        self.service = service
        self.engine = service.engine
        self.repository: Repository = service.repository

    # -- objections ----------------------------------------------------------------------------
    def file_objection(self, subject: str, record_id: str, grounds: str, evidence=None, filed_by: str | None = None,
                       *, on: str | None = None) -> dict:
        """File an objection: the record is disputed from `on` (default today) until a decision."""
        svc = self.service
        svc.check_code(subject)
        on = svc.check_date(on, "on")
        grounds = _required(grounds, "grounds", "missing_grounds")
        filed_by = _required(filed_by, "filed_by", "missing_actor")
        evidence = _evidence(evidence)
        with svc.writing("filing an objection"):
            bundle, record = self._record(subject, record_id)
            if self._pending(Objection, subject, record.id):
                raise ServiceError("objection_exists", f"record {record.id} already has an objection pending",
                                   status=409, errors=[{"field": "record", "value": record.id}])
            if self._pending(RepairApplication, subject, record.id):
                raise ServiceError("repair_pending", f"record {record.id} has a repair application pending; "
                                   "it is decided first", status=409, errors=[{"field": "record", "value": record.id}])
            if record.status in ENDING_STATUSES:
                raise ServiceError("record_ended", f"record {record.id} is {record.status}"
                                   + (f" since {record.status_on}" if record.status_on else "")
                                   + ": there is nothing left to object to", status=409,
                                   errors=[{"field": "record", "value": record.id, "status": record.status}])
            department = self._listing_department(record, on)
            row = {"subject_code": subject, "record_id": record.id, "grounds": grounds, "evidence": evidence,
                   "filed_by": filed_by, "filed_on": on, "filed_at": now_iso(), "department": department,
                   "deadline": add_working_days(on, OBJECTION_DEADLINE_WORKING_DAYS), "state": "pending",
                   "previous_status": record.status, "previous_status_on": record.status_on}
            try:
                with self.engine.begin() as c:
                    case_id = c.execute(Objection.__table__.insert().values(**row)).inserted_primary_key[0]
                    self._write_record(c, subject, record, replace(record, status="disputed", status_on=on))
                    self._log(c, "objection", case_id, subject, record.id, "filed", filed_by, department,
                              {"grounds": grounds, "evidence": evidence, "deadline": row["deadline"], "on": on,
                               "previous_status": record.status})
            except sa_exc.IntegrityError:  # another worker filed one for the same record first
                raise ServiceError("objection_exists", f"record {record.id} already has an objection pending",
                                   status=409, errors=[{"field": "record", "value": record.id}]) from None
            svc.materialiser.refresh({subject}, cause={"kind": "objection", "id": case_id, "action": "filed"})
        return self.objection(case_id)

    def decide_objection(self, objection_id: int, decision: str, reasons: str, decided_by: str,
                         correction: dict | None = None, *, on: str | None = None,
                         department: str | None = None) -> dict:
        """Uphold (revoke from `on`, or apply `correction`) or reject (restore the status) an objection.

        `department`, when given, must be the department whose queue holds the objection."""
        svc = self.service
        with svc.writing("deciding a case"):
            case = self._case(Objection, objection_id, department)
            state = self._decision(case, "objection", decision)
            reasons = _required(reasons, "reasons", "missing_reasons")
            decided_by = _required(decided_by, "decided_by", "missing_actor")
            on = self._decision_date(on, case.filed_on, "filed")
            if correction is not None and decision != "uphold":
                raise ServiceError("invalid_correction", "only an upheld objection corrects the record",
                                   errors=[{"field": "correction"}])
            bundle, record = self._record(case.subject_code, case.record_id)
            new: Record | None
            if decision == "uphold" and correction:
                new = self._corrected(bundle, record, correction, case, on)
            elif decision == "uphold":
                already = record.status in ENDING_STATUSES and record.status_on and record.status_on <= on
                new = None if already else replace(record, status="revoked", status_on=on)
            elif record.status == "disputed":
                new = replace(record, status=case.previous_status, status_on=case.previous_status_on)
            else:
                new = None  # its source changed the record meanwhile: that status stands
            with self.engine.begin() as c:
                self._close(c, Objection, case.id, state, decided_by, on, reasons,
                            {"correction": correction} if correction else {})
                if new is not None:
                    self._write_record(c, case.subject_code, record, new)
                self._log(c, "objection", case.id, case.subject_code, case.record_id, state, decided_by,
                          case.department, {"decision": decision, "reasons": reasons, "on": on,
                                            "correction": correction, "record_status": (new or record).status,
                                            "record_changed": new is not None})
            svc.materialiser.refresh({case.subject_code}, cause={"kind": "objection", "id": case.id, "action": state})
        return self.objection(case.id)

    def objection(self, objection_id: int) -> dict:
        return self._as_dict("objection", self._case(Objection, objection_id))

    # -- credit repair -------------------------------------------------------------------------
    def apply_repair(self, subject: str, record_id: str, applied_by: str, statement: str, *,
                     on: str | None = None) -> dict:
        """Apply for credit repair on `on` (default today): refused before start + publication_min."""
        svc = self.service
        svc.check_code(subject)
        on = svc.check_date(on, "on")
        applied_by = _required(applied_by, "applied_by", "missing_actor")
        statement = _required(statement, "statement", "missing_statement")
        with svc.writing("deciding a case"):
            bundle, record = self._record(subject, record_id)
            vocab = svc.vocab
            minimum = vocab.publication_min(record.kind, record.key)
            red = record.kind == "list_entry" and vocab.lists[record.list].polarity == "red"
            if minimum is None or red or not record.start:
                raise ServiceError("repair_not_applicable", f"record {record.id} ({record.kind}"
                                   f"{' ' + record.key if record.key else ''}) is not one credit repair applies to",
                                   errors=[{"field": "record", "value": record.id}])
            earliest = shift(record.start, minimum)
            if on < earliest:
                raise ServiceError("repair_too_early", f"record {record.id} may be repaired from {earliest} "
                                   f"(listed {record.start}, minimum publication {minimum}), not on {on}",
                                   errors=[{"field": "record", "value": record.id, "earliest": earliest,
                                            "publication_min": minimum}])
            if self._pending(RepairApplication, subject, record.id):
                raise ServiceError("repair_exists", f"record {record.id} already has a repair application pending",
                                   status=409, errors=[{"field": "record", "value": record.id}])
            if self._pending(Objection, subject, record.id):
                raise ServiceError("objection_pending", f"record {record.id} has an objection pending; it is "
                                   "decided first", status=409, errors=[{"field": "record", "value": record.id}])
            state = record_state(record, on, vocab)
            if record.status != "active" or not state.live:
                raise ServiceError("record_ended", f"record {record.id} is {state.status} on {on}"
                                   + (f" ({state.ended_by} {state.valid_until})" if state.valid_until else "")
                                   + ": there is nothing to repair", status=409,
                                   errors=[{"field": "record", "value": record.id, "status": state.status}])
            department = self._listing_department(record, on)
            row = {"subject_code": subject, "record_id": record.id, "statement": statement, "applied_by": applied_by,
                   "applied_on": on, "applied_at": now_iso(), "earliest": earliest, "department": department,
                   "deadline": add_working_days(on, REPAIR_DEADLINE_WORKING_DAYS), "state": "pending"}
            try:
                with self.engine.begin() as c:
                    case_id = c.execute(RepairApplication.__table__.insert().values(**row)).inserted_primary_key[0]
                    self._log(c, "repair", case_id, subject, record.id, "applied", applied_by, department,
                              {"statement": statement, "earliest": earliest, "deadline": row["deadline"], "on": on})
            except sa_exc.IntegrityError:
                raise ServiceError("repair_exists", f"record {record.id} already has a repair application pending",
                                   status=409, errors=[{"field": "record", "value": record.id}]) from None
        return self.repair(case_id)

    def decide_repair(self, repair_id: int, decision: str, reasons: str, decided_by: str, *, on: str | None = None,
                      department: str | None = None) -> dict:
        """Approve (the record is repaired from `on`, default today) or refuse a repair application."""
        svc = self.service
        with svc.writing("deciding a case"):
            case = self._case(RepairApplication, repair_id, department)
            state = self._decision(case, "repair", decision)
            reasons = _required(reasons, "reasons", "missing_reasons")
            decided_by = _required(decided_by, "decided_by", "missing_actor")
            on = self._decision_date(on, case.applied_on, "applied for")
            new = None
            if decision == "approve":
                _, record = self._record(case.subject_code, case.record_id)
                if record.status != "active":
                    raise ServiceError("record_changed", f"record {record.id} is now {record.status}: decide again "
                                       "after checking it", status=409,
                                       errors=[{"field": "record", "value": record.id, "status": record.status}])
                new = replace(record, status="repaired", status_on=on)
            with self.engine.begin() as c:
                self._close(c, RepairApplication, case.id, state, decided_by, on, reasons, {})
                if new is not None:
                    self._write_record(c, case.subject_code, record, new)
                self._log(c, "repair", case.id, case.subject_code, case.record_id, state, decided_by, case.department,
                          {"decision": decision, "reasons": reasons, "on": on})
            if new is not None:
                svc.materialiser.refresh({case.subject_code}, cause={"kind": "repair", "id": case.id, "action": state})
        return self.repair(case.id)

    def repair(self, repair_id: int) -> dict:
        return self._as_dict("repair", self._case(RepairApplication, repair_id))

    # -- what the API and the CLI call -----------------------------------------------------------
    def waiting(self, department: str, *, as_of: str | None = None) -> dict:
        """Objections and repair applications pending in `department`'s queue, earliest deadline first."""
        self._check_department(department)
        as_of = self.service.check_date(as_of)
        with self.engine.connect() as c:
            objections = c.execute(select(Objection).where(Objection.department == department,
                                                           Objection.state == "pending")
                                   .order_by(Objection.deadline, Objection.id)).all()
            repairs = c.execute(select(RepairApplication).where(RepairApplication.department == department,
                                                                RepairApplication.state == "pending")
                                .order_by(RepairApplication.deadline, RepairApplication.id)).all()
        return {"department": department, "as_of": as_of,
                "objections": [self._as_dict("objection", r, as_of) for r in objections],
                "repairs": [self._as_dict("repair", r, as_of) for r in repairs]}

    def decide(self, kind: str, case_id: int, decision: str, reasons: str, decided_by: str, *,
               correction: dict | None = None, on: str | None = None, department: str | None = None) -> dict:
        """One entry point for a desk clerk: decide an objection or a repair application."""
        if kind == "objection":
            return self.decide_objection(case_id, decision, reasons, decided_by, correction, on=on,
                                         department=department)
        if kind == "repair":
            if correction is not None:
                raise ServiceError("invalid_correction", "a repair decision corrects nothing",
                                   errors=[{"field": "correction"}])
            return self.decide_repair(case_id, decision, reasons, decided_by, on=on, department=department)
        raise ServiceError("invalid_case_kind", f"unknown case kind {kind!r}: objection or repair",
                           errors=[{"field": "kind", "value": kind, "allowed": ["objection", "repair"]}])

    def cases_for(self, subject: str) -> dict[str, list[dict]]:
        """Objections and repairs of a subject's records, per record id, oldest first."""
        self.service.check_code(subject)
        out: dict[str, list[dict]] = {}
        for item in self._cases_of(subject):
            out.setdefault(item["record"], []).append(item)
        return out

    def explanation_events(self, subject: str) -> list[dict]:
        """The subject's objections and repairs, each with the obligations its decision lifted, for
        engine.explain.explanation_graph(evaluation, lifecycle=...)."""
        cases = self._cases_of(subject)
        if not cases:
            return []
        with self.engine.connect() as c:
            rows = [dict(r._mapping) for r in c.execute(
                select(ObligationRow.measure, ObligationRow.target_code, ObligationRow.rule, ObligationRow.department,
                       ObligationRow.valid_from, ObligationRow.valid_until, ObligationRow.provenance,
                       ObligationRow.obligation_key)
                .where(Repository.answering_now(),
                       ObligationRow.source_subject == subject, ObligationRow.valid_until.is_not(None)))]
        for case in cases:
            case["lifted"] = []
            if case["decision"] not in ("uphold", "approve"):
                continue
            for r in rows:
                p = r["provenance"] or {}
                if (p.get("ended_by_record") == case["record"] and r["valid_until"] == case["date"]
                        and p.get("ended_by") not in (None, "continued")):
                    case["lifted"].append({"measure": r["measure"], "target_code": r["target_code"], "rule": r["rule"],
                                           "department": r["department"], "valid_from": r["valid_from"],
                                           "valid_until": r["valid_until"], "ended_by": p.get("ended_by"),
                                           "obligation_key": r["obligation_key"]})
        return cases

    def events(self, subject: str | None = None, *, case_kind: str | None = None,
               case_id: int | None = None) -> list[dict]:
        """The step log, oldest first, filtered by subject and/or case."""
        query = select(LifecycleEvent).order_by(LifecycleEvent.id)
        if subject is not None:
            query = query.where(LifecycleEvent.subject_code == subject)
        if case_kind is not None:
            query = query.where(LifecycleEvent.case_kind == case_kind)
        if case_id is not None:
            query = query.where(LifecycleEvent.case_id == case_id)
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(query)]

    # -- internals -------------------------------------------------------------------------------
    def _record(self, subject: str, record_id) -> tuple[Bundle, Record]:
        bundle = self.repository.load_bundle(subject)
        if bundle is None:
            raise ServiceError("unknown_subject", f"subject {subject} is not in the store", status=404,
                               errors=[{"field": "subject", "value": subject}])
        for record in bundle.records:
            if record.id == str(record_id):
                return bundle, record
        raise ServiceError("unknown_record", f"subject {subject} has no record {record_id!r}", status=404,
                           errors=[{"field": "record", "value": record_id,
                                    "known": [r.id for r in bundle.records][:50]}])

    def _pending(self, model, subject: str, record_id: str) -> bool:
        with self.engine.connect() as c:
            return c.execute(select(model.id).where(model.subject_code == subject, model.record_id == record_id,
                                                    model.state == "pending")).first() is not None

    def _case(self, model, case_id, department: str | None = None):
        kind = "objection" if model is Objection else "repair"
        try:
            case_id = int(case_id)
        except (TypeError, ValueError):
            case_id = None
        row = None
        if case_id is not None:
            with self.engine.connect() as c:
                row = c.execute(select(model).where(model.id == case_id)).first()
        if row is None:
            raise unknown_case(kind, case_id)
        if department is not None and row.department != department:
            raise ServiceError("not_your_case", f"{kind} {row.id} waits in {row.department}'s queue, not {department}'s",
                               status=403, errors=[{"field": "department", "value": department,
                                                    "owner": row.department}])
        return row

    @staticmethod
    def _decision(case, kind: str, decision: str) -> str:
        allowed = _DECISIONS[kind]
        if decision not in allowed:
            raise ServiceError("invalid_decision", f"a {kind} is decided {' or '.join(allowed)}, not {decision!r}",
                               errors=[{"field": "decision", "value": decision, "allowed": list(allowed)}])
        if case.state != "pending":
            raise ServiceError("not_pending", f"{kind} {case.id} was already {case.state} on {case.decided_on}",
                               status=409, errors=[{"field": "id", "value": case.id, "state": case.state}])
        return allowed[decision]

    def _decision_date(self, on: str | None, opened: str, verb: str) -> str:
        on = self.service.check_date(on, "on")
        if on < opened:
            raise ServiceError("invalid_decision_date", f"a decision on {on} comes before the case was {verb} "
                               f"({opened})", errors=[{"field": "on", "value": on, "earliest": opened}])
        return on

    def _check_department(self, department: str) -> None:
        self.service.check_department(department)

    def _listing_department(self, record: Record, on: str) -> str:
        """Who decides: the department on the record, else the list's listing authority (or the
        scheme's rater), else the coordinating body; then whoever inherited its duties by `on`."""
        vocab = self.service.vocab
        code = record.department if record.department in vocab.departments else None
        if code is None and record.kind == "list_entry" and record.list in vocab.lists:
            code = vocab.lists[record.list].listed_by
        if code is None and record.kind == "rating" and record.scheme in vocab.schemes:
            code = vocab.schemes[record.scheme].rated_by
        code = code or _FALLBACK_DEPARTMENT
        return vocab.department_chain(code, date.fromisoformat(on))[-1].code

    def _corrected(self, bundle: Bundle, record: Record, correction: dict, case, on: str) -> Record:
        if not isinstance(correction, dict) or not correction:
            raise ServiceError("invalid_correction", "`correction` must be an object of record fields",
                               errors=[{"field": "correction", "value": correction}])
        unknown = sorted(set(correction) - set(CORRECTABLE_FIELDS))
        if unknown:
            raise ServiceError("invalid_correction", f"these fields cannot be corrected: {', '.join(unknown)}",
                               errors=[{"field": f"correction.{k}", "allowed": list(CORRECTABLE_FIELDS)}
                                       for k in unknown])
        data = record.to_dict()
        data["status"], data["status_on"] = case.previous_status, case.previous_status_on
        data.update(correction)
        if data["status"] in ENDING_STATUSES and not data.get("status_on"):
            data["status_on"] = on
        data = {k: v for k, v in data.items() if v is not None}
        try:
            parsed = engine.parse_bundle({"subject": bundle.subject.to_dict(), "records": [data]},
                                         vocab=self.service.vocab, source=f"objection {case.id} correction")
        except engine.BundleError as exc:
            raise ServiceError(exc.code, exc.message, errors=[{"field": exc.field, "value": exc.value}]) from None
        return parsed.records[0]

    def _write_record(self, c, subject: str, before: Record, after: Record) -> None:
        """Overwrite one record, provided nobody changed its status since it was read."""
        values = {f: getattr(after, f) for f in _RECORD_FIELDS}
        values["raw"] = after.to_dict()
        same_date = (RecordRow.status_on.is_(None) if before.status_on is None
                     else RecordRow.status_on == before.status_on)
        result = c.execute(update(RecordRow).where(RecordRow.subject_code == subject, RecordRow.record_id == before.id,
                                                   RecordRow.status == before.status, same_date).values(**values))
        if result.rowcount != 1:
            raise ServiceError("record_changed", f"record {before.id} changed while this was decided; try again",
                               status=409, errors=[{"field": "record", "value": before.id}])

    @staticmethod
    def _close(c, model, case_id: int, state: str, decided_by: str, on: str, reasons: str, extra: dict) -> None:
        result = c.execute(update(model).where(model.id == case_id, model.state == "pending").values(
            state=state, decided_by=decided_by, decided_on=on, decided_at=now_iso(), reasons=reasons, **extra))
        if result.rowcount != 1:
            raise ServiceError("not_pending", f"case {case_id} was decided meanwhile", status=409,
                               errors=[{"field": "id", "value": case_id}])

    @staticmethod
    def _log(c, kind: str, case_id: int, subject: str, record_id: str, action: str, actor: str, department: str,
             details: dict) -> None:
        c.execute(LifecycleEvent.__table__.insert().values(
            at=now_iso(), case_kind=kind, case_id=case_id, subject_code=subject, record_id=record_id, action=action,
            actor=actor, department=department, details=details))

    def _cases_of(self, subject: str) -> list[dict]:
        with self.engine.connect() as c:
            objections = c.execute(select(Objection).where(Objection.subject_code == subject)).all()
            repairs = c.execute(select(RepairApplication).where(RepairApplication.subject_code == subject)).all()
        cases = [self._as_dict("objection", r) for r in objections] + [self._as_dict("repair", r) for r in repairs]
        return sorted(cases, key=lambda x: (x["opened_on"], x["kind"], x["id"]))

    @staticmethod
    def _as_dict(kind: str, row, as_of: str | None = None) -> dict:
        as_of = as_of or date.today().isoformat()
        common = {"kind": kind, "id": row.id, "subject": row.subject_code, "record": row.record_id,
                  "department": row.department, "deadline": row.deadline, "state": row.state,
                  "overdue": row.state == "pending" and row.deadline < as_of,
                  "decision": _DECISION_OF.get(row.state), "date": row.decided_on, "by": row.decided_by,
                  "reasons": row.reasons}
        if kind == "objection":
            common.update({"opened_on": row.filed_on, "filed_on": row.filed_on, "filed_by": row.filed_by,
                           "grounds": row.grounds, "evidence": row.evidence, "previous_status": row.previous_status,
                           "correction": row.correction})
        else:
            common.update({"opened_on": row.applied_on, "applied_on": row.applied_on, "applied_by": row.applied_by,
                           "statement": row.statement, "earliest": row.earliest})
        return common
