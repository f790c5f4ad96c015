"""OpenTelemetry traces of a trip request: the service call, matching, the lock, pricing, Redis.

Off by default (`RIDEHAIL_TRACING=off`): no tracer is installed and every helper here is one
`if` and the call itself, so the hot paths pay nothing measurable. `console` prints one JSON
line per span to stdout; `otlp` sends them over OTLP/HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT`
(the optional `opentelemetry-exporter-otlp-proto-http`, `pip install 'ridehail[otlp]'`).

The spans (see docs/operations.md):

    trip.request                    TripService.request_trip
    ├── trip.precheck               idempotency, the rider's bucket, its live trip
    ├── trip.surge                  demand and supply around the pickup
    ├── pricing.quote               fare.source, breaker.state, fallback.reason
    ├── trip.create
    └── trip.dispatch
        ├── match.lock              acquire → release
        │   ├── match.nearest
        │   └── match.claim
        └── trip.transition         action
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

if TYPE_CHECKING:  # the SDK is imported only when tracing is turned on
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

MODES = ("off", "console", "otlp")
OTLP_MISSING = "needs opentelemetry-exporter-otlp-proto-http: pip install 'ridehail[otlp]'"

P = ParamSpec("P")
R = TypeVar("R")

_tracer: trace.Tracer | None = None  # None: tracing is off
_OFF: contextlib.nullcontext[trace.Span] = contextlib.nullcontext(trace.INVALID_SPAN)


def enable(provider: trace.TracerProvider) -> None:
    """Record spans on `provider` from now on (tests pass an SDK provider with an in-memory
    exporter). Only this module's tracer is set: the process-wide OpenTelemetry global is not."""
    global _tracer
    _tracer = provider.get_tracer("ridehail")


def disable() -> None:
    global _tracer
    _tracer = None


def is_on() -> bool:
    return _tracer is not None


def otlp_available() -> bool:
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
    except ImportError:
        return False
    return True


def configure(mode: str) -> TracerProvider | None:
    """Set tracing up as `RIDEHAIL_TRACING` says; the provider to shut down at exit (None: off).

    `off` leaves whatever is enabled alone, so a test's provider survives an app's start."""
    if mode == "off":
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    exporter: SpanExporter
    if mode == "console":
        exporter = ConsoleSpanExporter(out=sys.stdout, formatter=_one_line)
    elif mode == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # endpoint, headers: the OTEL_EXPORTER_OTLP_* variables
    else:
        raise ValueError(f"tracing must be one of {', '.join(MODES)}")
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "ridehail"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    enable(provider)
    return provider


def _one_line(span: ReadableSpan) -> str:
    line: str = span.to_json(indent=None)
    return line + "\n"


def span(
    name: str, attributes: Mapping[str, AttributeValue] | None = None
) -> contextlib.AbstractContextManager[trace.Span]:
    """`with span("match.nearest"):` a child of the current span; a shared no-op when off."""
    if _tracer is None:
        return _OFF
    return _tracer.start_as_current_span(name, attributes=attributes)


def traced(
    name: str,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Run an async function or method inside a span `name` (when tracing is on)."""

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        @functools.wraps(fn)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            if _tracer is None:
                return await fn(*args, **kwargs)
            with _tracer.start_as_current_span(name):
                return await fn(*args, **kwargs)

        return run

    return decorate


def annotate(attributes: Mapping[str, AttributeValue]) -> None:
    """Set attributes on the current span (nothing when tracing is off)."""
    if _tracer is not None:
        trace.get_current_span().set_attributes(attributes)


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the span being recorded now, for log lines; None if none."""
    if _tracer is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
