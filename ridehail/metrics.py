"""Every Prometheus metric of an API process, in one place (the catalogue: docs/operations.md)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "ridehail_http_requests_total",
    "HTTP requests by route and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "ridehail_http_request_duration_seconds",
    "HTTP request latency by route",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
LOCATION_UPDATES = Counter(
    "ridehail_location_updates_total",
    "Driver location updates by outcome (applied, ignored as not newer, rejected, rate_limited)",
    ["outcome"],
)
STALE_SWEPT = Counter(
    "ridehail_stale_drivers_swept_total", "Drivers removed from the index for not pinging"
)
TRIP_TRANSITIONS = Counter(
    "ridehail_trip_transitions_total", "Trip state transitions by action", ["action"]
)
OFFERS = Counter(
    "ridehail_offers_total", "Offers by how they ended (accepted, declined, expired)", ["outcome"]
)
MATCH_SECONDS = Histogram(
    "ridehail_match_seconds",
    "From a trip request arriving to its first offer (when the request path made one)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1),
)
PRICING_CALLS = Counter(
    "ridehail_pricing_calls_total",
    "Calls to the pricing service by outcome (ok, outage)",
    ["outcome"],
)
FALLBACK_FARES = Counter(
    "ridehail_fallback_fares_total",
    "Fares from the local rate table, by reason (breaker_open, rate_limited, outage, ...)",
    ["reason"],
)
LIMITER_DECISIONS = Counter(
    "ridehail_ratelimit_decisions_total", "Token bucket decisions", ["limit", "decision"]
)
BREAKER_STATE = Gauge(
    "ridehail_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open", ["breaker"]
)
BREAKER_TRANSITIONS = Counter(
    "ridehail_breaker_transitions_total", "Circuit breaker state changes", ["breaker", "to"]
)
SSE_CLIENTS = Gauge("ridehail_sse_clients", "Open Server-Sent Events streams")
REDIS_UNAVAILABLE = Counter(
    "ridehail_redis_unavailable_total", "Requests answered 503 because Redis did not answer"
)
