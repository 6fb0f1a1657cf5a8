"""Every error the API returns, as `{"code", "message", "errors": [...]}`, mapped in this one place.

    ServiceError (store)        its own .status and .code (invalid_subject_code, unknown_activity, ...)
    StoreUnavailable (store)    503 store_unavailable with Retry-After: the database dropped the
                                connection or stayed locked; nothing was done, retry
    BundleError (engine)        422 with its code (a bad bundle that reached the engine directly)
    other JointCreditError      422 for a caller's mistake (unknown_measure); 500 for a broken
                                catalog, rulebook or evaluation, which no request can fix
    RequestValidationError      422 invalid_request, one entry per bad field
    ApiError                    raised by the API itself; the status comes from STATUS below
    Starlette HTTPException     400 bad_request (a body FastAPI cannot read), 401 unauthorized,
                                403 forbidden, 404 not_found, 405 ...
    anything else               500 internal_error (logged; the message reveals nothing)

Routes never build HTTP responses for errors themselves: they raise, and this module answers
(the body limit, which answers before any route, calls error_response). Every error body passes
through `_body`, the one place that bounds what an error echoes: a bad value is shown by its
first ECHO_CHARS characters (a 200 MB bad code was echoed back twice, in the message and in
`errors`), and a text that cannot be encoded (an unpaired surrogate sent as `"\\ud800"`) is
shown escaped rather than failing the answer with a 500.
"""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import CatalogError, EvaluationError, JointCreditError, RulebookErrors
from store.driver import StoreUnavailable
from store.service import ServiceError

__all__ = ["ApiError", "STATUS", "ECHO_CHARS", "error_response", "install"]

log = logging.getLogger("jointcredit.api")

# The HTTP status of every code the API layer raises itself.
STATUS = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "unknown_subject": 404,
    "unknown_decision": 404,
    "method_not_allowed": 405,
    "body_too_large": 413,
    "invalid_request": 422,
    "internal_error": 500,
}
_CODE_OF_STATUS = {status: code for code, status in STATUS.items()
                   if code in ("bad_request", "unauthorized", "forbidden", "not_found", "method_not_allowed",
                               "internal_error")}
_SERVER_SIDE = (CatalogError, RulebookErrors, EvaluationError)


class ApiError(Exception):
    """An error the API raises on purpose; its HTTP status is looked up in STATUS by code."""

    def __init__(self, code: str, message: str, *, errors: list | None = None, headers: dict | None = None):
        super().__init__(message)
        self.code, self.message = code, message
        self.errors = errors or []
        self.headers = headers
        self.status = STATUS[code]


# How much of a bad value an error echoes, and how long its message may grow.
ECHO_CHARS = 64
_MESSAGE_CHARS = 1000


def _body(code: str, message: str, errors: list | None = None) -> dict:
    errors = errors or []
    values = _long_values(errors)
    return {"code": code, "message": _message(message, values), "errors": _clipped(errors, values)}


def _long_values(value) -> list[str]:
    """The texts in `errors` longer than ECHO_CHARS, messages aside."""
    if isinstance(value, str):
        return [value] if len(value) > ECHO_CHARS else []
    if isinstance(value, dict):
        return [t for k, v in value.items() if k != "message" for t in _long_values(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _long_values(v)]
    return []


def _message(text: str, values: list[str]) -> str:
    """A message with the long values it quotes shortened, and at most _MESSAGE_CHARS long."""
    for value in values:
        text = text.replace(value, _shortened(value))
    if len(text) > _MESSAGE_CHARS:
        text = text[:_MESSAGE_CHARS] + "…"
    return _encodable(text)


def _clipped(value, values: list[str]):
    """`errors` with every value shortened and every nested message treated as a message."""
    if isinstance(value, str):
        return _encodable(_shortened(value))
    if isinstance(value, dict):
        return {_clipped(k, values): _message(v, values) if k == "message" and isinstance(v, str)
                else _clipped(v, values) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clipped(v, values) for v in value]
    return value


def _shortened(text: str) -> str:
    return text if len(text) <= ECHO_CHARS else f"{text[:ECHO_CHARS]}…({len(text)} characters)"


def _encodable(text: str) -> str:
    """`text`, with unpaired surrogates (which UTF-8 cannot carry) escaped as `\\udXXX`."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_response(status: int, code: str, message: str, errors: list | None = None,
                   headers: dict | None = None) -> JSONResponse:
    """The HTTP answer of an error: `{"code", "message", "errors"}` under `status`."""
    return JSONResponse(_body(code, message, errors), status_code=status, headers=headers)


def _field_errors(exc: RequestValidationError) -> list[dict]:
    """Pydantic's errors without the raw input (it may be the whole body) or non-JSON context."""
    out = []
    for e in exc.errors():
        loc = [str(part) for part in e.get("loc", ())]
        where = loc[0] if loc and loc[0] in ("body", "query", "path", "header") else None
        field = ".".join(loc[1:] if where else loc)
        message = e.get("msg", "")
        if e.get("type") == "json_invalid":  # loc holds a character position, not a field
            field, message = "", f"the body is not valid JSON: {(e.get('ctx') or {}).get('error', message)} at {field}"
        out.append({"field": field, "in": where, "message": message, "type": e.get("type", "")})
    return out


async def _service_error(_: Request, exc: ServiceError):
    return error_response(exc.status, exc.code, exc.message, exc.errors)


async def _store_unavailable(_: Request, exc: StoreUnavailable):
    log.warning("store unavailable: %s", exc.message)
    return error_response(503, exc.code, exc.message, None, {"Retry-After": "1"})


async def _api_error(_: Request, exc: ApiError):
    return error_response(exc.status, exc.code, exc.message, exc.errors, exc.headers)


async def _engine_error(request: Request, exc: JointCreditError):
    if isinstance(exc, _SERVER_SIDE):
        return await _unexpected(request, exc)
    body = exc.to_dict()
    return error_response(422, body["code"], body["message"], body["errors"])


async def _validation_error(request: Request, exc: RequestValidationError):
    errors = _field_errors(exc)
    where = ", ".join(dict.fromkeys(e["field"] or e["in"] or "?" for e in errors))
    first = errors[0]["message"] if errors else ""
    if _body_not_sent_as_json(request, errors):
        first = (f"the body must be JSON sent with `Content-Type: application/json` (this one came as "
                 f"{request.headers.get('content-type') or 'no content type'})")
    return error_response(422, "invalid_request", f"the request is not valid ({where}): {first}", errors)


def _body_not_sent_as_json(request: Request, errors: list[dict]) -> bool:
    """FastAPI reads a body as JSON only when its content type says so; any other arrives as
    bytes and fails as 'not a valid dictionary', which does not tell a curl user (-d sends a
    form's type) what to change."""
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    is_json = content_type == "application/json" or content_type.endswith("+json")
    return (not is_json and bool(errors) and errors[0]["in"] == "body" and errors[0]["field"] == ""
            and errors[0]["type"] in ("model_attributes_type", "dict_type"))


async def _http_error(_: Request, exc: StarletteHTTPException):
    code = _CODE_OF_STATUS.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, None, getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception):
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "the server failed to answer; the error has been logged")


def install(app: FastAPI) -> None:
    """Register the handlers; the most specific class wins, so the order here does not matter."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_exception_handler(JointCreditError, _engine_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
