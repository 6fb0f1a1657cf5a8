"""Routes that ask for the key before they read the body.

KeyFirstRoute (every route of the API): the key is looked up, and a caller without a valid one
answered 401, before FastAPI reads the body, which it does before it solves any dependency. A
caller without a key cannot make the server read, hold and parse a body it will refuse anyway
(four 200 MB pushes without a key grew the server to 1.54 GB). The principal found is kept in
the scope for the route's role check (deps.require), so this costs no second lookup.

KeyFirstJsonRoute (the eligibility check) parses a plain JSON body straight into its model.

The eligibility check is the hottest route by far, and most of its server time was FastAPI's
general request handling rather than the check: the content type parsed with the email package,
the body decoded with `json.loads` and then validated as a dict, the dependency machinery solved
for one header, the answer validated and serialised through FastAPI's field wrappers. For the one
shape of request that callers send (`Content-Type: application/json` and a body the model
accepts) this route does the same work directly:

1. the bearer key is read first, so a caller without one hears 401 before anything about its
   question (FastAPI's own order answers a malformed JSON body with 422 first);
2. the body, when it declares at most QUESTION_BYTES, goes through pydantic's JSON parser into
   the model in one step, and the key is looked up with the question's own reads (one
   statement): a caller with an unknown key makes the server read at most QUESTION_BYTES, which
   arrive with the headers anyway;
3. the endpoint is awaited with the values FastAPI would have given it;
4. the answer is validated and serialised with the response model's TypeAdapter, as FastAPI
   does for a `response_model`.

Anything else (another or no content type, a longer or unsized body, a body that is not valid
JSON or not a valid question) is handed to KeyFirstRoute's handler for the same route, on the
same request (Starlette keeps the body it read): the key is looked up first, then FastAPI's
handler answers, so an unknown key hears 401 before anything about the question, and every
error keeps FastAPI's exact wording, locations and status. OpenAPI is FastAPI's own, since the
route is declared like any other.

The endpoint must take the body model, the Request and one dependency giving the key
(`deps.SentKey`), and nothing else; the route checks that when it is built, not when the
first call comes.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Coroutine

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError

from .deps import authenticate, bearer_key, sent_key
from .schemas import error_responses

__all__ = ["KeyFirstRoute", "KeyFirstJsonRoute", "QUESTION_BYTES", "keyed_router"]

_JSON = "application/json"
# The longest body KeyFirstJsonRoute reads before the key is known (a question is ~100 bytes).
QUESTION_BYTES = 1024

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class KeyFirstRoute(APIRoute):
    """An APIRoute that looks the key up (deps.authenticate) before FastAPI reads the body. A
    route that takes a body also declares what reading one can answer: 400 (not UTF-8 JSON,
    FastAPI's own answer) and 413 (over the limit, body_limit.py)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any):
        super().__init__(path, endpoint, **kwargs)
        if self.body_field is not None:
            self.responses = {**error_responses(400, 413), **self.responses}

    def get_route_handler(self) -> Handler:
        fastapi_handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            await authenticate(request)
            return await fastapi_handler(request)

        return handle


def keyed_router(**kwargs) -> APIRouter:
    """An APIRouter whose routes are KeyFirstRoutes (create_app refuses any other route)."""
    return APIRouter(route_class=KeyFirstRoute, **kwargs)


class KeyFirstJsonRoute(KeyFirstRoute):
    """A KeyFirstRoute whose short plain-JSON requests skip FastAPI's general request handling
    (see the module docstring); every other request is KeyFirstRoute's, unchanged."""

    def get_route_handler(self) -> Handler:
        keyed_handler = super().get_route_handler()
        body_name, body_model, request_name, key_name = self._endpoint_parameters()
        answer = TypeAdapter(self.response_model)
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            key = sent_key(request)
            headers = request.headers
            if headers.get("content-type") != _JSON or not _short(headers.get("content-length")):
                return await keyed_handler(request)
            try:
                body = body_model.model_validate_json(await request.body())
            except (ValidationError, ValueError):  # FastAPI's handler words the error, after the key
                return await keyed_handler(request)
            content = await endpoint(**{body_name: body, request_name: request, key_name: key})
            return Response(answer.dump_json(answer.validate_python(content), by_alias=True),
                            status_code=self.status_code or 200, media_type=_JSON)

        return handle

    def _endpoint_parameters(self) -> tuple[str, type[BaseModel], str, str]:
        """(body parameter, its model, Request parameter, key parameter) of the endpoint, or a
        TypeError naming what is missing."""
        dependant = self.dependant
        body = dependant.body_params
        model = body[0].field_info.annotation if len(body) == 1 else None
        keys = [d for d in dependant.dependencies if d.call is not None and d.name]
        problems = []
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            problems.append("one body parameter typed with a pydantic model")
        if not dependant.request_param_name:
            problems.append("a Request parameter")
        if len(keys) != 1 or keys[0].call is not bearer_key:
            problems.append("exactly one dependency, the key (deps.SentKey)")
        if not self.response_model:
            problems.append("a response_model")
        if dependant.query_params or dependant.path_params or dependant.header_params or dependant.cookie_params:
            problems.append("no query, path, header or cookie parameters")
        named = {body[0].name if body else None, dependant.request_param_name, keys[0].name if keys else None}
        if not problems and set(inspect.signature(self.endpoint).parameters) != named:
            problems.append("no other parameters (the direct path passes only those three)")
        if problems:
            raise TypeError(f"{self.path}: a KeyFirstJsonRoute endpoint needs {', '.join(problems)}")
        return body[0].name, model, dependant.request_param_name, keys[0].name


def _short(content_length: str | None) -> bool:
    """Whether a body declares at most QUESTION_BYTES (an unsized body is not short)."""
    return content_length is not None and content_length.isdigit() and int(content_length) <= QUESTION_BYTES
