"""The lifecycle of a record: objections (异议), credit repair (信用修复), departments'
feedback on their obligations, their change feed, and the feedback report."""
from __future__ import annotations

from typing import Annotated

from fastapi import Query

from store.feedback import Feedback
from store.keys import Principal
from store.lifecycle import Lifecycle, unknown_case

from ..deps import AnyCaller, ServiceDep
from ..keyed_route import keyed_router
from ..errors import ApiError
from ..lifecycle_schemas import FeedbackRequest, ObjectionDecision, ObjectionRequest, RepairDecision, RepairRequest
from ..privacy import may_read_case
from ..schemas import CaseId, ChangeId, error_responses

router = keyed_router(tags=["lifecycle"], responses=error_responses(401, 403, 404, 409, 422))


def _desk(principal: Principal) -> None:
    """Cases are filed by a department's desk (for the subject's representative) or an admin."""
    if principal.role not in ("department", "admin"):
        raise ApiError("forbidden", "objections and repair applications are filed through a department desk")


def _own_department(principal: Principal, code: str) -> None:
    if principal.role in ("admin", "auditor"):
        return
    if principal.role == "department" and principal.department == code:
        return
    raise ApiError("forbidden", f"only department {code!r}, auditors and admins may read this")


def _deciding_department(principal: Principal) -> str | None:
    if principal.role == "admin":
        return None  # an admin may decide any department's case
    if principal.role != "department":
        raise ApiError("forbidden", "cases are decided by the listing department")
    return principal.department


def _readable(case: dict, principal: Principal) -> dict:
    """The case, if `principal` may read it (privacy.may_read_case); else the very answer a case
    that does not exist gets (404 unknown_objection / unknown_repair). Not 403: case ids are
    sequential, and a 403 would confirm to anyone walking them that a case exists and when it
    was filed; a case holds a person's ID, grounds and representative."""
    if not may_read_case(principal, case):
        raise unknown_case(case["kind"], case["id"])
    return case


def _decider(principal: Principal, case_of, case_id: int) -> str | None:
    """The department whose case `principal` may decide (None: an admin, any case). A department
    that may not even read the case hears that it does not exist, as when reading it; the desk
    that filed it may read it, and hears 403 not_your_case."""
    department = _deciding_department(principal)
    _readable(case_of(case_id), principal)
    return department


def _filed_by(principal: Principal, on_behalf_of: str | None) -> str:
    return principal.label + (f" for {on_behalf_of}" if on_behalf_of else "")


@router.post("/objections", status_code=201)
def file_objection(body: ObjectionRequest, service: ServiceDep, principal: AnyCaller):
    """File an objection: the record is disputed at once and the listing department gets the case."""
    _desk(principal)
    return Lifecycle(service).file_objection(body.subject, body.record, body.grounds, body.evidence,
                                             _filed_by(principal, body.on_behalf_of))


@router.get("/objections/{case_id}", responses=error_responses(404))
def objection(case_id: CaseId, service: ServiceDep, principal: AnyCaller):
    """One objection with its state, deadline and decision."""
    return _readable(Lifecycle(service).objection(case_id), principal)


@router.post("/objections/{case_id}/decision")
def decide_objection(case_id: CaseId, body: ObjectionDecision, service: ServiceDep, principal: AnyCaller):
    """Uphold (record corrected or revoked, obligations lifted) or reject (dispute mark removed)."""
    lifecycle = Lifecycle(service)
    department = _decider(principal, lifecycle.objection, case_id)
    return lifecycle.decide_objection(case_id, body.decision, body.reasons, principal.label, body.correction,
                                      on=body.on, department=department)


@router.post("/repairs", status_code=201)
def apply_repair(body: RepairRequest, service: ServiceDep, principal: AnyCaller):
    """Apply for credit repair; accepted only after the record's minimum publication period."""
    _desk(principal)
    return Lifecycle(service).apply_repair(body.subject, body.record, _filed_by(principal, body.on_behalf_of),
                                           body.statement)


@router.get("/repairs/{case_id}", responses=error_responses(404))
def repair(case_id: CaseId, service: ServiceDep, principal: AnyCaller):
    """One repair application with its state and decision."""
    return _readable(Lifecycle(service).repair(case_id), principal)


@router.post("/repairs/{case_id}/decision")
def decide_repair(case_id: CaseId, body: RepairDecision, service: ServiceDep, principal: AnyCaller):
    """Approve (the record is repaired from that date) or refuse, with reasons."""
    lifecycle = Lifecycle(service)
    department = _decider(principal, lifecycle.repair, case_id)
    return lifecycle.decide_repair(case_id, body.decision, body.reasons, principal.label, on=body.on,
                                   department=department)


@router.get("/departments/{code}/queue")
def queue(code: str, service: ServiceDep, principal: AnyCaller, as_of: str | None = None):
    """Objections and repair applications waiting for the department, with deadlines."""
    _own_department(principal, code)
    return Lifecycle(service).waiting(code, as_of=as_of)


@router.get("/departments/{code}/changes")
def changes(code: str, service: ServiceDep, principal: AnyCaller, since: str | None = None,
            after: ChangeId = None, limit: Annotated[int, Query(ge=1, le=1000)] = 1000):
    """Obligations added, lifted or changed since a point, for a department's system to poll."""
    _own_department(principal, code)
    return Feedback(service).changes(code, since, after=after, limit=limit)


@router.post("/obligations/{key}/feedback")
def feedback(key: str, body: FeedbackRequest, service: ServiceDep, principal: AnyCaller):
    """The department reports what it did with an obligation: applied, or not applicable (with a note)."""
    if principal.role != "department":
        raise ApiError("forbidden", "feedback is given by the department the obligation is addressed to")
    return Feedback(service).mark(key, principal.department, body.state, body.note, principal.label)


@router.get("/reports/feedback")
def feedback_report(service: ServiceDep, principal: AnyCaller, as_of: str | None = None):
    """Per department: obligations pending, applied, not applicable and overdue."""
    if principal.role not in ("auditor", "admin", "department"):
        raise ApiError("forbidden", "the feedback report is for departments, auditors and admins")
    return Feedback(service).report(as_of)
