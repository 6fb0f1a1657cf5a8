"""The FastAPI application, built by `create_app(settings)` and never at import time.

The service (store, compiled catalog, evaluator) is made once per app in the lifespan and
kept on app.state, so tests build as many apps as they like, each on its own database, and
`uvicorn api.app:create_app --factory` reads JOINTCREDIT_* from the environment.
"""
from __future__ import annotations

import gc
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.concurrency import run_in_threadpool

from store.service import Service
from store.settings import Settings

from . import errors
from .body_limit import BodyLimit
from .deps import document_bearer
from .keyed_route import KeyFirstRoute
from .routers import ALL

__all__ = ["create_app"]

DESCRIPTION = """Joint reward and punishment (联合奖惩): whether a subject may take part in an activity,
the actions each department is obliged to take, and why.

Authenticate with `Authorization: Bearer <key>` (`jointcredit keys create --role ...`).
Errors are `{"code", "message", "errors"}` with a stable `code`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Migrating, compiling the rulebooks and loading the demo block: keep them off the event loop.
        service = await run_in_threadpool(Service, settings)
        await run_in_threadpool(service.load_demo_if_empty)
        service.watch_catalog()  # another process's publication compiled as soon as it commits
        app.state.service = service
        # The compiled catalogs and start-up data live as long as the process: move them out of the
        # collector's generations, so a full collection under load does not walk them again
        # (measured: the collections were the checks' p99 stalls).
        gc.freeze()
        try:
            yield
        finally:
            await service.close_loop_access()
            await run_in_threadpool(service.close)

    app = FastAPI(title="jointcredit", version="1", description=DESCRIPTION, lifespan=lifespan,
                  docs_url="/docs", openapi_url="/openapi.json", telemetry=_telemetry(settings.telemetry))
    app.state.settings = settings
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    for router in ALL:
        app.include_router(router, prefix="/v1")
    _every_route_asks_for_the_key_first(app)
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document_bearer(generate())
        return app.openapi_schema

    app.openapi = openapi
    return app


def _every_route_asks_for_the_key_first(app: FastAPI) -> None:
    """Refuse to build an app with a route that would read a body before knowing the caller."""
    plain = [f"{sorted(c.original_route.methods)} {c.path}" for c in iter_route_contexts(app.routes)
             if isinstance(c.original_route, APIRoute) and not isinstance(c.original_route, KeyFirstRoute)]
    if plain:
        raise TypeError(f"routes not declared with keyed_route.keyed_router: {', '.join(plain)}")


def _telemetry(on: bool) -> dict:
    """FastAPI's telemetry settings: its defaults when `on` (settings.telemetry), else none of it."""
    return {} if on else {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
