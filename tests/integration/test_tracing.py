"""OpenTelemetry spans of a trip request, recorded by the SDK's in-memory exporter.

The app runs as in production over both Redis backends; only the tracer provider is the test's
(`ridehail.tracing.enable`), with a SimpleSpanProcessor so every span is exported as it ends.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest
import redis.asyncio as aioredis
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

from ridehail import tracing
from ridehail.settings import describe_error
from tests.conftest import make_settings
from tests.fleet import HELSINKI, available_at, offset, ping
from tests.integration.trip_helpers import acted, register_rider, request_trip, running_app

QUIET = {"sweep_interval_s": 3600, "worker_interval_s": 3600}  # no background spans

TRIP_REQUEST_TREE = {
    ("trip.request", "trip.precheck"),
    ("trip.request", "trip.surge"),
    ("trip.request", "pricing.quote"),
    ("trip.request", "trip.create"),
    ("trip.request", "trip.dispatch"),
    ("trip.dispatch", "match.lock"),
    ("match.lock", "match.nearest"),
    ("match.lock", "match.claim"),
    ("trip.dispatch", "trip.transition"),
}


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing.enable(provider)
    try:
        yield memory
    finally:
        tracing.disable()
        provider.shutdown()


def edges(spans: tuple[ReadableSpan, ...]) -> set[tuple[str, str]]:
    by_id = {s.context.span_id: s for s in spans}
    return {(by_id[s.parent.span_id].name, s.name) for s in spans if s.parent is not None}


def only(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    [found] = [s for s in spans if s.name == name]
    return found


async def test_one_trip_request_is_one_trace_through_precheck_pricing_the_lock_and_the_offer(
    redis_client: aioredis.Redis, exporter: InMemorySpanExporter
) -> None:
    async with running_app(make_settings(**QUIET), redis_client) as running:
        client = running.client
        driver = await available_at(client, offset(HELSINKI, 200, 0))
        rider = await register_rider(client)
        exporter.clear()

        trip = await request_trip(client, rider, HELSINKI)

    spans = exporter.get_finished_spans()
    root = only(spans, "trip.request")
    assert root.parent is None
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}, "one trace"
    assert edges(spans) == TRIP_REQUEST_TREE
    assert sorted(s.name for s in spans) == sorted(["trip.request", *(c for _, c in edges(spans))])
    assert root.attributes is not None
    assert root.attributes["trip.id"] == trip["trip_id"]
    assert root.attributes["rider.id"] == rider.rider_id
    assert root.attributes["outcome"] == "created"

    quote = only(spans, "pricing.quote")
    assert quote.attributes == {
        "fare.source": "fallback",
        "breaker.state": "closed",
        "fallback.reason": "unconfigured",  # no PRICING_URL in this test
    }
    claim = only(spans, "match.claim")
    assert claim.attributes == {"driver.id": driver.driver_id, "claimed": True}
    assert only(spans, "trip.transition").attributes == {
        "trip.id": trip["trip_id"],
        "action": "offer",
        "to": "offered",
        "ok": True,
    }
    lock = only(spans, "match.lock")
    assert lock.attributes is not None
    assert (lock.attributes["lock.acquired"], lock.attributes["outcome"]) == (True, "claimed")
    # match.lock lasts from acquire to release: it holds the search and the claim
    for child in (only(spans, "match.nearest"), claim):
        assert lock.start_time is not None
        assert child.start_time is not None
        assert child.end_time is not None
        assert lock.end_time is not None
        assert lock.start_time <= child.start_time <= child.end_time <= lock.end_time
    # and the spans start in the order the request does its steps
    order = ["trip.precheck", "trip.surge", "pricing.quote", "trip.create", "trip.dispatch"]
    starts = [only(spans, name).start_time or 0 for name in order]
    assert starts == sorted(starts)


async def test_a_driver_action_is_one_trace_with_its_transition(
    redis_client: aioredis.Redis, exporter: InMemorySpanExporter
) -> None:
    async with running_app(make_settings(**QUIET), redis_client) as running:
        client = running.client
        driver = await available_at(client, HELSINKI)
        rider = await register_rider(client)
        trip = await request_trip(client, rider, HELSINKI)
        exporter.clear()

        await acted(client, driver.headers, trip["trip_id"], "accept")

    spans = exporter.get_finished_spans()
    assert edges(spans) == {("trip.act", "trip.transition")}
    act = only(spans, "trip.act")
    assert act.attributes == {"trip.id": trip["trip_id"], "action": "accept"}
    assert only(spans, "trip.transition").attributes == {
        "trip.id": trip["trip_id"],
        "action": "accept",
        "to": "accepted",
        "ok": True,
    }


async def test_a_location_ping_records_no_span(
    redis_client: aioredis.Redis, exporter: InMemorySpanExporter
) -> None:
    async with running_app(make_settings(**QUIET), redis_client) as running:
        driver = await available_at(running.client, HELSINKI)
        exporter.clear()
        for step in range(5):
            reply = await ping(running.client, driver, offset(HELSINKI, step, 0))
            assert reply.status_code == 200
    assert exporter.get_finished_spans() == ()


def test_with_tracing_off_a_span_is_the_shared_no_op() -> None:
    assert not tracing.is_on()
    first, second = tracing.span("a"), tracing.span("b")
    assert first is second
    with first as span:
        assert not span.is_recording()
    tracing.annotate({"ignored": True})  # no current span, no error
    assert tracing.current_ids() is None


async def test_console_tracing_prints_each_span_as_one_json_line(
    redis_client: aioredis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tracing="console", **QUIET)
    async with running_app(settings, redis_client) as running:
        assert tracing.is_on()
        await available_at(running.client, HELSINKI)
        rider = await register_rider(running.client)
        await request_trip(running.client, rider, HELSINKI)
    assert not tracing.is_on(), "the app's shutdown turns its tracing off"
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    names = {span["name"] for span in printed}
    assert {"trip.request", "pricing.quote", "match.lock", "trip.transition"} <= names
    [root] = [span for span in printed if span["name"] == "trip.request"]
    assert root["parent_id"] is None
    assert root["resource"]["attributes"]["service.name"] == "ridehail"


class OtlpReceiver(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.bodies.append(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def otlp_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[OtlpReceiver]]:
    """An OTLP/HTTP receiver on loopback, and the exporter's endpoint variable pointing at it."""
    if not tracing.otlp_available():
        pytest.skip("opentelemetry-exporter-otlp-proto-http is not installed (the otlp extra)")
    OtlpReceiver.bodies = []
    server = http.server.HTTPServer(("127.0.0.1", 0), OtlpReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url)
    try:
        yield OtlpReceiver
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


async def test_otlp_tracing_sends_the_spans_to_the_collector(
    redis_client: aioredis.Redis, otlp_endpoint: type[OtlpReceiver]
) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    async with running_app(make_settings(tracing="otlp", **QUIET), redis_client) as running:
        await available_at(running.client, HELSINKI)
        rider = await register_rider(running.client)
        await request_trip(running.client, rider, HELSINKI)
    names = set()
    for body in otlp_endpoint.bodies:
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                names |= {span.name for span in scope.spans}
    assert {"trip.request", "trip.dispatch", "match.lock", "match.claim"} <= names


@pytest.mark.parametrize("mode", ["on", "jaeger", "OTLP", ""])
def test_an_unknown_tracing_mode_stops_the_process_naming_the_setting(mode: str) -> None:
    with pytest.raises(ValidationError) as refused:
        make_settings(tracing=mode)
    assert "RIDEHAIL_TRACING" in describe_error(refused.value)
