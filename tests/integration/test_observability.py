"""Metrics by outcome and by route template, and the request id that ties logs to a request."""

from __future__ import annotations

import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.fleet import HELSINKI, iso, now_ms, ping, register

LOCATION_ROUTE = "/v1/drivers/{driver_id}/location"


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    reply = await client.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_location_updates_are_counted_by_outcome(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await register(client)
    before = await scrape(client)
    t = now_ms() - 5_000
    await ping(client, driver, HELSINKI, recorded_ms=t)  # applied
    await ping(client, driver, HELSINKI, recorded_ms=t + 1)  # applied
    await ping(client, driver, HELSINKI, recorded_ms=t - 1)  # ignored
    await ping(client, driver, HELSINKI, recorded_ms=now_ms() + 60_000)  # rejected
    batch = {
        "updates": [
            {"driver_id": driver.driver_id, "lat": 1.0, "lng": 1.0, "recorded_at": iso(t + 2)},
            {"driver_id": driver.driver_id, "lat": 1.0, "lng": 1.0, "recorded_at": iso(t)},
            {"driver_id": "drv_0000000000000000", "lat": 1.0, "lng": 1.0},
            {"driver_id": driver.driver_id, "lat": 99.0, "lng": 1.0},
        ]
    }
    reply = await client.post("/v1/drivers/locations", json=batch, headers=admin_headers)
    assert reply.json()["accepted"] == 1
    after = await scrape(client)
    name = "ridehail_location_updates_total"
    deltas = {
        outcome: value(after, name, outcome=outcome) - value(before, name, outcome=outcome)
        for outcome in ("applied", "ignored", "rejected")
    }
    assert deltas == {"applied": 3, "ignored": 2, "rejected": 3}


async def test_requests_are_counted_by_route_template_not_by_path(
    client: httpx.AsyncClient,
) -> None:
    drivers = [await register(client) for _ in range(3)]
    before = await scrape(client)
    for d in drivers:
        await ping(client, d, HELSINKI)
    await client.put(
        f"{drivers[0].path}/location", json={"lat": 91, "lng": 0}, headers=drivers[0].headers
    )
    after = await scrape(client)
    name = "ridehail_http_requests_total"
    ok = {"method": "PUT", "route": LOCATION_ROUTE, "status": "200"}
    bad = {"method": "PUT", "route": LOCATION_ROUTE, "status": "422"}
    assert value(after, name, **ok) - value(before, name, **ok) == 3
    assert value(after, name, **bad) - value(before, name, **bad) == 1
    assert not any(d.driver_id in str(labels) for (_, labels) in after), "ids leak into labels"


async def test_request_latency_is_recorded_per_route_template(client: httpx.AsyncClient) -> None:
    driver = await register(client)
    before = await scrape(client)
    await ping(client, driver, HELSINKI)
    after = await scrape(client)
    name = "ridehail_http_request_duration_seconds_count"
    labels = {"method": "PUT", "route": LOCATION_ROUTE}
    assert value(after, name, **labels) - value(before, name, **labels) == 1


async def test_a_path_that_matches_no_route_is_counted_without_its_path(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)
    path = "/no/such/thing-" + "x" * 8
    assert (await client.get(path)).status_code == 404
    after = await scrape(client)
    labels = {"method": "GET", "route": "unmatched", "status": "404"}
    name = "ridehail_http_requests_total"
    assert value(after, name, **labels) - value(before, name, **labels) == 1
    assert not any(path in str(labels) for (_, labels) in after)


async def test_a_request_id_sent_by_the_client_comes_back(client: httpx.AsyncClient) -> None:
    reply = await client.get("/healthz", headers={"X-Request-ID": "gateway-7f3a:42"})
    assert reply.headers["x-request-id"] == "gateway-7f3a:42"


async def test_a_request_id_is_generated_when_none_is_sent(client: httpx.AsyncClient) -> None:
    first, second = await client.get("/healthz"), await client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_a_request_id_comes_back_on_errors_too(client: httpx.AsyncClient) -> None:
    reply = await client.get("/v1/drivers/nearby?lat=1&lng=1", headers={"X-Request-ID": "req-1"})
    assert reply.status_code == 401
    assert reply.headers["x-request-id"] == "req-1"


async def test_a_request_id_that_could_forge_log_lines_is_replaced(
    client: httpx.AsyncClient,
) -> None:
    for unsafe in ["has spaces", "x" * 129, 'quote"s', "semi;colon"]:
        reply = await client.get("/healthz", headers={"X-Request-ID": unsafe})
        assert reply.headers["x-request-id"] != unsafe
        assert re.fullmatch(r"[0-9a-f]{32}", reply.headers["x-request-id"])
