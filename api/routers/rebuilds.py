"""Progress of the rebuilds a publish, a rollback or a load of rulebooks starts, from any process."""
from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from ..deps import AnyCaller, ServiceDep
from ..errors import ApiError
from ..keyed_route import keyed_router
from ..schemas import error_responses

router = keyed_router(prefix="/rebuilds", tags=["rulebooks"], responses=error_responses(401, 403, 404, 422))


@router.get("")
def recent_rebuilds(service: ServiceDep, _: AnyCaller, limit: Annotated[int, Query(ge=1, le=200)] = 20):
    """The latest rebuilds, newest first: state, subjects done of total, the generation put in force."""
    return {"rebuilds": service.rebuilds.recent(limit)}


@router.get("/{rebuild_id}")
def rebuild(rebuild_id: Annotated[int, Path(ge=1, le=2**31 - 1)], service: ServiceDep, _: AnyCaller):
    """One rebuild and its progress."""
    found = service.rebuilds.get(rebuild_id)
    if found is None:
        raise ApiError("not_found", f"no rebuild {rebuild_id}")
    return found
