"""Every error answer is `application/problem+json` (RFC 9457). The one place errors meet HTTP."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ridehail.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    RidehailError,
    StoreUnavailable,
    Unauthorized,
    Unprocessable,
)
from ridehail.metrics import REDIS_UNAVAILABLE

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_S = 1

_STATUS: list[tuple[type[RidehailError], int]] = [
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Unprocessable, 422),
    (RateLimited, 429),
    (StoreUnavailable, 503),
]


class InvalidInput(Unprocessable):
    """Input that passed the schema but not a rule checked later (e.g. a time in the future)."""

    title = "Invalid input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    slug = title.lower().replace(" ", "-")
    body = {"type": f"urn:ridehail:problem:{slug}", "title": title, "status": status}
    body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_of(exc: RidehailError) -> int:
    return next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


async def _on_ridehail_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RidehailError)
    if isinstance(exc, InvalidInput):
        errors = [{"field": exc.field, "message": exc.message}]
        return problem(422, "Validation failed", exc.message, errors=errors)
    status = status_of(exc)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, RateLimited):
        headers = exc.headers
    if status == 503:
        REDIS_UNAVAILABLE.inc()
        log.warning("store unavailable", extra={"error": str(exc), "path": request.url.path})
    extra = getattr(exc, "extra", {})
    return problem(status, exc.title, str(exc) or exc.title, headers=headers, **extra)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem(422, "Validation failed", detail, errors=errors)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    from http import HTTPStatus

    title = HTTPStatus(exc.status_code).phrase
    return problem(exc.status_code, title, str(exc.detail), headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"path": request.url.path})
    return problem(500, "Internal error", "an unexpected error; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RidehailError, _on_ridehail_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
