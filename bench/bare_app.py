"""The bare FastAPI app the service benchmark compares against: the stack's own ceiling.

    python -m uvicorn bench.bare_app:create_app --factory --host 127.0.0.1 --port 8001 ...

`POST /v1/eligibility` has the shape of the real route (a plain `def` handler, so it runs
in the thread pool as the real one does, and a strict pydantic body with the same fields),
but no authentication, no database and no decision log: it answers a fixed small JSON.
`POST /v1/eligibility-async` is the bare minimum on top of that: an `async def` handler
that reads no body, run on the event loop. `POST /v1/eligibility-deps` is the first with the
real route's dependency chain (service from the request, bearer credentials, principal, role
check), each a plain `def` doing nothing: what that chain costs the stack by itself.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict

__all__ = ["create_app", "ANSWER"]

ANSWER = {"subject": "91511702MA62X8Q157", "activity": "government_procurement", "as_of": "2025-06-30",
          "eligible": True, "known": True, "restrictions": [], "incentives": []}


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str
    activity: str
    as_of: str | None = None


_bearer = HTTPBearer(auto_error=False)


def _service(request: Request):
    return request.app


def _principal(service: Annotated[object, Depends(_service)],
               credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]):
    return "system"


def _check(principal: Annotated[str, Depends(_principal)]):
    return principal


def create_app() -> FastAPI:
    app = FastAPI(title="bare", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/v1/eligibility")
    def check(body: _Request):
        return ANSWER

    @app.post("/v1/eligibility-deps")
    def check_deps(body: _Request, service: Annotated[object, Depends(_service)],
                   caller: Annotated[str, Depends(_check)]):
        return ANSWER

    @app.post("/v1/eligibility-async")
    async def check_async():
        return ANSWER

    return app
