"""What the store holds about a subject, the actions it is subject to, and why.

A system key sees citizen IDs and natural persons' names masked (privacy.py); the code it
asked about is shown as it is. Objection and repair cases in an explanation show their outline
to a caller that may not read them (privacy.case_outline).
"""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query

from engine.explain import explanation_graph, to_node_link, why
from store.lifecycle import Lifecycle

from ..deps import AnyCaller, ServiceDep
from ..keyed_route import keyed_router
from ..errors import ApiError
from ..privacy import case_outline, mask, mask_graph, masks_for, person_names
from ..render import dot_response, svg_response
from ..schemas import AsOf, SubjectActions, SubjectOut, error_responses

router = keyed_router(prefix="/subjects", tags=["subjects"], responses=error_responses(401, 403, 404, 422))

_GRAPH_TYPES = {
    200: {"description": "The explanation: node-link JSON (or the why() answer for `measure`), DOT, or SVG.",
          "content": {"application/json": {}, "text/vnd.graphviz": {}, "image/svg+xml": {}}},
}


@router.get("/{code}", response_model=SubjectOut)
def subject(code: str, service: ServiceDep, caller: AnyCaller):
    """The subject, its records and the subjects linked to it."""
    service.check_code(code)
    found = service.repository.subject(code)
    if found is None:
        raise ApiError("unknown_subject", f"subject {code} is not in the store")
    return mask(found, code, person_names(found)) if masks_for(caller.role) else found


@router.get("/{code}/actions", response_model=SubjectActions)
def actions(code: str, service: ServiceDep, caller: AnyCaller, as_of: AsOf = None):
    """Every obligation in force on as_of that targets the subject, with its provenance."""
    found = service.actions(code, as_of)
    return mask(found, code, _names(service, code)) if masks_for(caller.role) else found


@router.get("/{code}/explain", responses=_GRAPH_TYPES)
def explain(code: str, service: ServiceDep, caller: AnyCaller, as_of: AsOf = None,
            measure: Annotated[str | None, Query(description="Why (or why not) this measure applies.",
                                                 examples=["tax.procurement_ban"])] = None,
            fmt: Annotated[Literal["json", "dot", "svg"], Query(alias="format")] = "json"):
    """Why the subject is subject to what it is: records -> conditions -> rule -> measure -> department."""
    if measure is not None and fmt != "json":
        raise ApiError("invalid_request", "`measure` is answered as JSON only",
                       errors=[{"field": "format", "in": "query", "message": "use format=json with measure"}])
    evaluation = service.evaluation(code, as_of)
    private = masks_for(caller.role)
    names = _names(service, code) if private else ()
    if measure is not None:
        answer = why(evaluation, measure)
        return mask(answer, code, names) if private else answer
    # objections and repairs decided on the subject's records show as lifecycle nodes
    cases = [case_outline(caller, case) for case in Lifecycle(service).explanation_events(code)]
    graph = explanation_graph(evaluation, lifecycle=cases)
    if private:
        graph = mask_graph(graph, code, names)
    if fmt == "dot":
        return dot_response(graph)
    if fmt == "svg":
        return svg_response(graph)
    return to_node_link(graph)


def _names(service, code: str) -> list[str]:
    """The natural persons' names an answer about `code` may carry: its own, its linked persons'."""
    return person_names(service.repository.subject(code))
