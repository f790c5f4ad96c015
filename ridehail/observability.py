"""Structured JSON logs (request, rider, driver and trip ids; secrets redacted), the adapters
that put the services' metrics on Prometheus (ridehail/metrics.py), and the ASGI edge middleware."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
import time
from http import HTTPStatus
from typing import Any

import pybreaker
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ridehail import log_context, tracing
from ridehail.metrics import (
    BREAKER_STATE,
    BREAKER_TRANSITIONS,
    FALLBACK_FARES,
    HTTP_LATENCY,
    HTTP_REQUESTS,
    LIMITER_DECISIONS,
    LOCATION_UPDATES,
    MATCH_SECONDS,
    OFFERS,
    PRICING_CALLS,
    TRIP_TRANSITIONS,
)
from ridehail.problems import problem


def count_decision(limit: str, allowed: bool) -> None:
    _decision_counter(limit, allowed).inc()


class PrometheusTripMetrics:
    """`trips.service.TripMetrics` on the process's Prometheus registry."""

    def transition(self, action: object) -> None:
        TRIP_TRANSITIONS.labels(str(action)).inc()

    def offer_outcome(self, outcome: str) -> None:
        OFFERS.labels(outcome).inc()

    def matched(self, seconds: float) -> None:
        MATCH_SECONDS.observe(seconds)


class PrometheusPricingMetrics:
    """`trips.pricing_client.PricingMetrics` on the process's Prometheus registry."""

    def pricing_call(self, outcome: str) -> None:
        PRICING_CALLS.labels(outcome).inc()

    def fallback(self, reason: str) -> None:
        FALLBACK_FARES.labels(reason).inc()

    def limiter(self, limit: str, allowed: bool) -> None:
        count_decision(limit, allowed)


_BREAKER_LEVEL = {"closed": 0, "half-open": 1, "open": 2}


class BreakerMetrics(pybreaker.CircuitBreakerListener):
    """Mirrors a pybreaker breaker's state into Prometheus."""

    def __init__(self, name: str) -> None:
        self.name = name
        BREAKER_STATE.labels(name).set(0)

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        BREAKER_STATE.labels(self.name).set(_BREAKER_LEVEL.get(new_state.name, 0))
        BREAKER_TRANSITIONS.labels(self.name, new_state.name).inc()
        log.warning(
            "breaker %s: %s -> %s", self.name, getattr(old_state, "name", None), new_state.name
        )


log = logging.getLogger(__name__)
_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Never logged on purpose (no header is ever logged); redacted anyway should one slip into a
# message or an exception: bearer credentials, ?access_token=, and our tokens `<id>.<secret>`.
# Cheap substring tests first: a line is written on every request when the access log is on.
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")
_ACCESS_TOKEN = re.compile(r"(?i)(access_token=)[^&\s\"',;]+")
_OUR_TOKEN = re.compile(r"(_[0-9a-f]{16}\.)[A-Za-z0-9_-]+")


def redact(text: str) -> str:
    lowered = text.lower()
    if "bearer" in lowered:
        text = _BEARER.sub(r"\1[redacted]", text)
    if "access_token" in lowered:
        text = _ACCESS_TOKEN.sub(r"\1[redacted]", text)
    return _OUR_TOKEN.sub(r"\1[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        context = log_context.current()
        if context is not None:
            entry.update(context.fields())
        ids = tracing.current_ids()
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_") and key != "color_message":
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


access_log = logging.getLogger("ridehail.access")


# Label lookups cost a lock and a dict per call; the children are few, so keep them.
@functools.cache
def _requests_counter(method: str, template: str, status: int) -> Any:
    return HTTP_REQUESTS.labels(method, template, str(status))


@functools.cache
def _latency_histogram(method: str, template: str) -> Any:
    return HTTP_LATENCY.labels(method, template)


@functools.cache
def _decision_counter(limit: str, allowed: bool) -> Any:
    return LIMITER_DECISIONS.labels(limit, "allowed" if allowed else "refused")


@functools.cache
def _location_counter(outcome: str) -> Any:
    return LOCATION_UPDATES.labels(outcome)


def count_locations(outcome: str, n: int = 1) -> None:
    """Location updates by outcome: applied, ignored, rejected, rate_limited."""
    if n:
        _location_counter(outcome).inc(n)


class EdgeMiddleware:
    """Request id, body size limit, access log and HTTP metrics, as one pure ASGI layer."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, access_log: bool) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or os.urandom(16).hex()  # 4x cheaper than uuid4
        token = log_context.begin(request_id)
        started = time.perf_counter()
        status = 500
        limit = self.max_body_bytes
        seen = 0
        too_large = _declared_length(scope) > limit

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # FastAPI re-raises an HTTPException from the body read as it is.
                    raise HTTPException(413, _too_large_detail(limit))
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            if too_large:
                await _send_too_large(send_with_id, limit)
            else:
                await self.app(scope, limited_receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            _requests_counter(method, template, status).inc()
            _latency_histogram(method, template).observe(elapsed)
            if self.access_log:
                access_log.info(
                    "request",
                    extra={
                        "method": method,
                        "route": template,
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                    },
                )
            log_context.end(token)


async def _send_too_large(send: Send, limit: int) -> None:
    """The same problem the HTTP layer gives when the body turns out too large while streaming."""
    response = problem(
        413,
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE.phrase,
        _too_large_detail(limit),
        headers={"Connection": "close"},
    )
    await response({"type": "http"}, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _too_large_detail(limit: int) -> str:
    return f"request bodies are limited to {limit} bytes"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _incoming_request_id(scope: Scope) -> str | None:
    raw = _header(scope, b"x-request-id")
    if raw is None:
        return None
    value = raw.decode("latin-1")
    return value if _REQUEST_ID.match(value) else None


def _declared_length(scope: Scope) -> int:
    raw = _header(scope, b"content-length")
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0
