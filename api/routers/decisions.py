"""The decision log: one logged answer, and a walk of the hash chain that shows tampering."""
from __future__ import annotations

import uuid

from ..deps import Auditor, DecisionReader, ServiceDep
from ..keyed_route import keyed_router
from ..errors import ApiError
from ..privacy import mask, masks_for
from ..schemas import Decision, Verification, error_responses

router = keyed_router(prefix="/decisions", tags=["decisions"], responses=error_responses(401, 403))


# Declared before /{decision_id}, or "verify" would be taken for a decision id.
@router.get("/verify", response_model=Verification)
def verify(service: ServiceDep, _: Auditor):
    """Walk the whole chain and name the first entry whose link or content was altered."""
    return service.decisions.verify()


@router.get("/{decision_id}", response_model=Decision, responses=error_responses(404))
def decision(decision_id: str, service: ServiceDep, caller: DecisionReader):
    """One logged answer: caller, request, answer, rulebook revisions and its place in the chain."""
    entry = service.decisions.get(decision_id) if _is_uuid(decision_id) else None
    if entry is None:
        raise ApiError("unknown_decision", f"no decision {decision_id!r} in the log")
    if caller.role == "system" and entry["caller"] != caller.label:
        raise ApiError("forbidden", "a system key may read only the decisions made for it")
    if masks_for(caller.role):  # what it was answered, as it was answered: the codes it asked about kept
        request = entry["request"]
        return mask(entry, [request["subject"]] if "subject" in request else request.get("subjects", []))
    return entry


def _is_uuid(text: str) -> bool:
    """Decision ids are UUIDs; anything else cannot name one (and never reaches the database)."""
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False
