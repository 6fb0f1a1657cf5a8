"""Dependencies, as Annotated aliases so a route's signature says what it needs.

Authentication is a bearer API key looked up in the key store; authorisation is by role
(`require`), with `admin` allowed everywhere. Both fail with ApiError, answered in errors.py.

The key is looked up by the route itself before FastAPI reads the body (keyed_route.py
KeyFirstRoute), so a caller without a valid key is answered 401 with its body unread; `require`
then only authorises the principal that lookup found (PRINCIPAL in the request's scope).

The dependencies are `async def`: FastAPI runs a plain `def` dependency in the thread pool,
and those hops (one per dependency, four on every route) cost more than the work they do.
The key lookup is one indexed read of a unique hash, on the event loop (store/loop_access.py);
every request reads it afresh, so a revoked key stops working at once, in every server process.
"""
from __future__ import annotations

from typing import Annotated, Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from store.keys import ROLES, Principal
from store.service import Service

from .errors import ApiError

__all__ = ["ServiceDep", "document_bearer", "require", "sent_key", "bearer_key", "SentKey", "known_principal", "allow",
           "PRINCIPAL", "authenticate", "caller_of",
           "allowed_roles", "CHECKER_ROLES", "AnyCaller", "Checker", "Writer", "Reader", "Auditor",
           "DecisionReader"]

# Only documented (document_bearer): the key is read by sent_key, and a missing one is answered by
# our handler (code, WWW-Authenticate), not FastAPI's.
_bearer = HTTPBearer(auto_error=False, description="An API key made with `jointcredit keys create`.")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
# Where the route's key lookup leaves the caller's principal, in the request's ASGI scope.
PRINCIPAL = "jointcredit.principal"


async def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]


def sent_key(request: Request) -> str:
    """The key sent as `Authorization: Bearer <key>`, not yet looked up, or 401 when there is
    none. A plain call, not a dependency: FastAPI's resolution of a dependency (and HTTPBearer's
    own) cost more a request than reading one header. document_bearer() puts the scheme in the
    OpenAPI, as `Depends(HTTPBearer())` would."""
    scheme, key = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not key:
        raise ApiError("unauthorized", "an API key is required: send `Authorization: Bearer <key>`",
                       headers=_CHALLENGE)
    return key


def known_principal(principal: Principal | None) -> Principal:
    """The principal a key lookup found, or 401 (unknown or revoked key)."""
    if principal is None:
        raise ApiError("unauthorized", "the API key is not valid or has been revoked", headers=_CHALLENGE)
    return principal


async def authenticate(request: Request) -> Principal:
    """Look the request's key up and keep its principal in the scope, or 401 (no, unknown or
    revoked key). Called by the route before the body is read."""
    principal = known_principal(await request.app.state.service.principal(sent_key(request)))
    request.scope[PRINCIPAL] = principal
    return principal


async def caller_of(request: Request) -> Principal:
    """The principal the route looked up before the body (authenticate), else looked up now."""
    return request.scope.get(PRINCIPAL) or await authenticate(request)


def allow(principal: Principal, allowed: frozenset[str]) -> Principal:
    """`principal` if its role is among `allowed`, or 403."""
    if principal.role not in allowed:
        raise ApiError("forbidden", f"a {principal.role} key may not do this; allowed: {', '.join(sorted(allowed))}")
    return principal


def allowed_roles(*roles: str) -> frozenset[str]:
    """`roles` and admin; a name that is not a role is refused here, at import, not by locking
    everybody but admin out at run time."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {sorted(unknown)}: one of {ROLES}")
    return frozenset(roles) | {"admin"}


def document_bearer(schema: dict) -> dict:
    """The OpenAPI document with the bearer scheme, required by every operation that can answer
    401 (all of them): what FastAPI writes itself for a `Depends(HTTPBearer())`."""
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["HTTPBearer"] = {"type": "http", "scheme": "bearer", "description": _bearer.model.description}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if "401" in operation.get("responses", {}):
                operation["security"] = [{"HTTPBearer": []}]
    return schema


def require(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the caller and lets through the given roles and admin,
    refusing everyone else with 403. One dependency, not a chain (service -> principal -> role):
    each link of a chain costs FastAPI's dependency machinery more than the key lookup itself."""
    allowed = allowed_roles(*roles)

    async def check(request: Request) -> Principal:
        return allow(await caller_of(request), allowed)

    check.__name__ = f"require_{'_'.join(sorted(allowed))}"
    return check


async def bearer_key(request: Request) -> str:
    """sent_key as a dependency (see SentKey)."""
    return sent_key(request)


# The eligibility route's key, as a dependency: FastAPI solves dependencies before it validates
# the body, so a caller without a key hears 401 before anything about its question. The route
# (api/keyed_route.py) reads it itself, before the body, on its direct path; FastAPI's handler,
# which answers everything else, solves it as declared here.
SentKey = Annotated[str, Depends(bearer_key)]
AnyCaller = Annotated[Principal, Depends(require(*ROLES))]
CHECKER_ROLES = allowed_roles("system", "auditor")  # ask eligibility questions
Checker = Annotated[Principal, Depends(require(*CHECKER_ROLES))]
Writer = Annotated[Principal, Depends(require("department"))]  # pushes records
Reader = Annotated[Principal, Depends(require("department", "auditor"))]  # reads department worklists
Auditor = Annotated[Principal, Depends(require("auditor"))]
DecisionReader = Annotated[Principal, Depends(require("system", "auditor"))]  # system: only its own
