"""The one JSON error shape of the API, `{error, detail, hint}`, and the handlers producing it.

`error` is a stable machine code, `detail` says what went wrong, `hint` what to do about it.
Every failure — our own, Starlette's 404/405, validation, the store, a crash — leaves as this
shape, with the security headers, because the 500 path bypasses the header middleware.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from haloy.daemon.refusals import Refused
from haloy.errors import ApiError, HaloyError, StoreError

log = logging.getLogger(__name__)

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    # Answers carry deployment state and tokens' effects; no cache may keep them.
    ("cache-control", "no-store"),
)

_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "content_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
    507: "insufficient_storage",
}


class ApiProblem(ApiError):
    """An error answer of the API: status, machine code, message (detail) and hint."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        hint: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail, hint=hint, status=status)
        self.code = code or _CODES.get(status, "error")
        self.headers = dict(headers or {})


def problem_response(
    status: int,
    detail: str,
    *,
    hint: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A JSON error answer in the API's one shape."""
    body = {"error": code or _CODES.get(status, "error"), "detail": detail, "hint": hint}
    all_headers = dict(SECURITY_HEADERS)
    all_headers.update(headers or {})
    return JSONResponse(body, status_code=status, headers=all_headers)


def to_response(exc: ApiProblem) -> JSONResponse:
    """Render an ApiProblem."""
    assert exc.status is not None  # ApiProblem always sets it
    return problem_response(
        exc.status, exc.message, hint=exc.hint, code=exc.code, headers=exc.headers
    )


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    return to_response(exc)


async def _on_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return problem_response(exc.status, exc.message, hint=exc.hint, code=exc.code)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    hints = {
        404: "see /v1/openapi.json for the endpoints this haloyd serves",
        405: "see /v1/openapi.json for the methods each endpoint accepts",
    }
    return problem_response(
        exc.status_code, exc.detail, hint=hints.get(exc.status_code), headers=exc.headers
    )


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
    )
    return problem_response(
        422,
        f"the request body is not valid: {problems}",
        hint="see /v1/openapi.json for the request schema",
    )


async def _on_store(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HaloyError)
    log.error("store failure on %s %s: %s", request.method, request.url.path, exc)
    return problem_response(503, exc.message, hint=exc.hint, code="store_unavailable")


async def _on_disconnect(request: Request, exc: Exception) -> Response:
    # The client left mid-body (e.g. an aborted upload); nobody will read this answer.
    log.info("client left during %s %s", request.method, request.url.path)
    return problem_response(400, "the client disconnected before sending the whole body")


async def _on_crash(request: Request, exc: Exception) -> Response:
    # Details stay in haloyd's log (uvicorn logs the traceback when Starlette re-raises);
    # the client learns only that it was our fault.
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return problem_response(
        500,
        "haloyd failed while answering this request",
        hint="see haloyd's log (haloy server logs) for the cause",
    )


EXCEPTION_HANDLERS = {
    ApiProblem: _on_problem,
    Refused: _on_refused,
    HTTPException: _on_http,
    ValidationError: _on_validation,
    StoreError: _on_store,
    ClientDisconnect: _on_disconnect,
    Exception: _on_crash,
}
