"""Departments edit their own rulebooks: drafts with If-Match, dry runs, publication, rollback."""
from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query, Response

from engine.yamlsource import load_located

from store.editing import RulebookEditor
from store.keys import Principal
from store.service import ServiceError

from ..deps import AnyCaller, ServiceDep
from ..keyed_route import keyed_router
from ..errors import ApiError
from ..rulebook_schemas import DraftRequest, DryRunRequest, PublishRequest, RollbackRequest
from ..schemas import error_responses

router = keyed_router(prefix="/rulebooks", tags=["rulebooks"], responses=error_responses(401, 403, 404, 409, 422, 428))


def _etag(revision: str) -> str:
    return f'"{revision}"'


def _unquote(tag: str | None) -> str | None:
    if tag is None:
        return None
    tag = tag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    return tag.strip('"')


def _declared_owner(text: str) -> str | None:
    # parsed with the rulebook's bounds: a text past them has no owner, and the save refuses it with 422
    data = load_located(text).data
    return data.get("owner") if isinstance(data, dict) else None


def _must_own(editor: RulebookEditor, name: str, principal: Principal) -> None:
    """Only the owning department (or admin) may change a rulebook."""
    if principal.role == "admin":
        return
    owner = editor.owner(name)
    if principal.role != "department" or principal.department != owner:
        raise ApiError("forbidden", f"only the owning department ({owner}) or an admin may change rulebook {name!r}")


def _may_read_history(editor: RulebookEditor, name: str, principal: Principal) -> None:
    if principal.role in ("admin", "auditor"):
        return
    if principal.role == "department" and principal.department == editor.owner(name):
        return
    raise ApiError("forbidden", "the change history is for auditors and the owning department")


@router.get("")
def list_rulebooks(service: ServiceDep, _: AnyCaller):
    """Every rulebook with its revision in force today, its head and its owner."""
    return {"rulebooks": RulebookEditor(service).list()}


@router.get("/{name}")
def get_rulebook(name: str, service: ServiceDep, _: AnyCaller, response: Response):
    """The rulebook's head revision (YAML text); its ETag is the revision to send back in If-Match."""
    head = RulebookEditor(service).head(name)
    response.headers["ETag"] = _etag(head.revision)
    return head.to_dict(with_text=True)


@router.put("/{name}", status_code=201)
def save_draft(name: str, body: DraftRequest, service: ServiceDep, principal: AnyCaller, response: Response,
               if_match: Annotated[str | None, Header(description="The ETag of the revision you edited.")] = None):
    """Save a draft revision; refused with 409 if the rulebook changed since your copy."""
    editor = RulebookEditor(service)
    exists = service.rulebook_store.head(name) is not None
    if exists:
        _must_own(editor, name, principal)
        if if_match is None:
            raise ServiceError("precondition_required", "send If-Match with the ETag of the revision you edited",
                               status=428)
    elif principal.role not in ("admin", "department"):
        raise ApiError("forbidden", "only a department or an admin may create a rulebook")
    elif principal.role == "department" and _declared_owner(body.text) not in (None, principal.department):
        raise ApiError("forbidden", "a new rulebook's owner must be your own department")
    draft = editor.save(name, body.text, _unquote(if_match), principal.label, body.comment)
    response.headers["ETag"] = _etag(draft.revision)
    return draft.to_dict()


@router.post("/{name}/dry-run")
def dry_run(name: str, body: DryRunRequest, service: ServiceDep, principal: AnyCaller):
    """Run the revision's tests and show what it would change for every stored subject."""
    editor = RulebookEditor(service)
    _may_read_history(editor, name, principal)
    return editor.dry_run(name, body.revision, body.as_of)


@router.post("/{name}/publish")
def publish(name: str, body: PublishRequest, service: ServiceDep, principal: AnyCaller):
    """Put a revision in force from effective_from; refused unless its tests pass."""
    editor = RulebookEditor(service)
    _must_own(editor, name, principal)
    return editor.publish(name, body.revision, body.effective_from, principal.label, body.comment,
                          retroactive_reason=body.retroactive_reason, may_backdate=principal.role == "admin")


@router.post("/{name}/rollback")
def rollback(name: str, body: RollbackRequest, service: ServiceDep, principal: AnyCaller):
    """Put an earlier revision back in force from effective_from."""
    editor = RulebookEditor(service)
    _must_own(editor, name, principal)
    return editor.rollback(name, body.to, body.effective_from, principal.label, body.comment,
                           retroactive_reason=body.retroactive_reason, may_backdate=principal.role == "admin")


@router.get("/{name}/revisions")
def revisions(name: str, service: ServiceDep, _: AnyCaller):
    """Every revision of the rulebook, newest first."""
    editor = RulebookEditor(service)
    editor.head(name)
    return {"rulebook": name, "revisions": [r.to_dict() for r in service.rulebook_store.revisions(name)]}


@router.get("/{name}/diff")
def diff(name: str, service: ServiceDep, _: AnyCaller,
         from_: Annotated[str, Query(alias="from")], to: Annotated[str, Query()]):
    """Text diff between two revisions, and the measures and rules added, removed and changed."""
    return RulebookEditor(service).diff(name, from_, to)


@router.get("/{name}/changes")
def changes(name: str, service: ServiceDep, principal: AnyCaller):
    """Who changed the rulebook, when, how and why (for auditors and the owner)."""
    editor = RulebookEditor(service)
    editor.head(name)
    _may_read_history(editor, name, principal)
    return {"rulebook": name, "changes": service.rulebook_store.changes(name)}
