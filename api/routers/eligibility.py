"""Eligibility checks by outside systems; every answer is logged under the caller's label."""
from __future__ import annotations

from fastapi import Request

from ..deps import CHECKER_ROLES, Checker, SentKey, ServiceDep, allow, known_principal
from ..keyed_route import KeyFirstJsonRoute, keyed_router
from ..schemas import BatchAnswer, BatchRequest, EligibilityAnswer, EligibilityRequest, error_responses

router = keyed_router(prefix="/eligibility", tags=["eligibility"], responses=error_responses(401, 403, 422))


async def check(body: EligibilityRequest, request: Request, key: SentKey):
    """May this subject take part in this activity on this date, and if not, why not."""
    service = request.app.state.service  # not ServiceDep: one dependency less on the hottest route
    # The key is looked up with the question's own reads (one round trip on a database server),
    # and the caller authorised before anything else is said; then the decision log's group
    # commit, awaited.
    found = await service.keyed_check(key, body.subject, body.activity, body.as_of)
    caller = allow(known_principal(found.principal), CHECKER_ROLES)
    if found.problem is not None:
        raise found.problem
    return await service.log_answer(found.answer, caller=caller.label)


# Declared like any route (OpenAPI, errors); plain JSON questions skip FastAPI's general handling.
router.add_api_route("", check, methods=["POST"], response_model=EligibilityAnswer, route_class_override=KeyFirstJsonRoute)


@router.post("/batch", response_model=BatchAnswer)
def check_batch(body: BatchRequest, service: ServiceDep, caller: Checker):
    """Several subjects at once; with consortium true, one barred member bars them all."""
    return service.eligibility_batch(body.subjects, body.activity, body.as_of, body.consortium,
                                     caller=caller.label)
