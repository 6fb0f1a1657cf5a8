"""A department's worklist: the obligations it must act on, on a date."""
from __future__ import annotations

from typing import Annotated

from fastapi import Query

from ..deps import Reader, ServiceDep
from ..keyed_route import keyed_router
from ..errors import ApiError
from ..schemas import AsOf, DepartmentActions, Offset, error_responses

router = keyed_router(prefix="/departments", tags=["departments"], responses=error_responses(401, 403, 404, 422))


@router.get("/{code}/actions", response_model=DepartmentActions)
def actions(code: str, service: ServiceDep, caller: Reader, as_of: AsOf = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Offset = 0):
    """The obligations in force for a department on as_of, by subject and measure, a page at a time."""
    if caller.role == "department" and caller.department != code:
        raise ApiError("forbidden", f"a key of department {caller.department!r} may read only its own worklist")
    return service.department_actions(code, as_of, limit, offset)
