"""Departments push records; obligations are current for the subjects touched when this returns."""
from __future__ import annotations

from store.service import bundles_from

from ..deps import ServiceDep, Writer
from ..keyed_route import keyed_router
from ..schemas import RecordsRequest, RecordsResult, error_responses

router = keyed_router(prefix="/records", tags=["records"], responses=error_responses(401, 403, 422))


@router.post("", response_model=RecordsResult)
def push(body: RecordsRequest, service: ServiceDep, _: Writer):
    """Store subject bundles (idempotent by record id); none is stored if any is invalid."""
    return service.save(bundles_from(body.bundles, service.vocab))
