"""Requesting a trip: who may, idempotency, one live trip per rider, and the first offer."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis.asyncio as aioredis

from ridehail.bootstrap import Services
from tests.fleet import HELSINKI, PROBLEM_JSON, available_at, offset, ping, register
from tests.integration.trip_helpers import (
    acted,
    driver_record,
    get_trip,
    new_key,
    post_trip,
    register_rider,
    request_trip,
    trip_body,
    trip_events,
)

pytestmark = pytest.mark.layouts


async def test_a_requested_trip_is_offered_to_the_nearest_available_fresh_driver(
    client: httpx.AsyncClient,
) -> None:
    offline = await register(client)  # nearest of all, but offline: never offered
    assert (await ping(client, offline, offset(HELSINKI, 20, 0))).json()["applied"] is True
    farther = await available_at(client, offset(HELSINKI, 0, 900))
    nearest = await available_at(client, offset(HELSINKI, 250, 0))
    farthest = await available_at(client, offset(HELSINKI, -1_800, 0))
    rider = await register_rider(client)

    trip = await request_trip(client, rider, HELSINKI)

    assert trip["state"] == "offered"
    assert trip["driver_id"] == nearest.driver_id
    assert trip["rider_id"] == rider.rider_id
    assert trip["version"] == 2  # requested (1), offered (2)
    assert trip["fare"]["source"] == "fallback"
    assert trip["offer_expires_at"] is not None
    held = await driver_record(client, nearest)
    assert (held["status"], held["trip_id"]) == ("offered", trip["trip_id"])
    for idle in (farther, farthest, offline):
        record = await driver_record(client, idle)
        assert record["trip_id"] is None
        assert record["offer"] is None


async def test_the_same_key_and_body_return_the_same_trip_without_making_another(
    client: httpx.AsyncClient, redis_client: aioredis.Redis, services: Services
) -> None:
    await available_at(client, HELSINKI)
    rider = await register_rider(client)
    key = new_key()

    first = await post_trip(client, rider.headers, HELSINKI, key=key)
    again = await post_trip(client, rider.headers, HELSINKI, key=key)

    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json()["trip_id"] == first.json()["trip_id"]
    assert again.json()["version"] == first.json()["version"]
    events = await trip_events(redis_client, services.settings.key_prefix)
    assert [e.trip_id for e in events if e.action == "request"] == [first.json()["trip_id"]]


async def test_two_identical_requests_racing_make_one_trip(
    client: httpx.AsyncClient, redis_client: aioredis.Redis, services: Services
) -> None:
    driver = await available_at(client, HELSINKI)
    rider = await register_rider(client)
    key = new_key()

    one, other = await asyncio.gather(
        post_trip(client, rider.headers, HELSINKI, key=key),
        post_trip(client, rider.headers, HELSINKI, key=key),
    )

    assert sorted([one.status_code, other.status_code]) == [200, 201], (one.text, other.text)
    assert one.json()["trip_id"] == other.json()["trip_id"]
    events = await trip_events(redis_client, services.settings.key_prefix)
    assert [e.action for e in events] == ["request", "offer"]
    assert (await driver_record(client, driver))["trip_id"] == one.json()["trip_id"]


async def test_the_same_key_with_another_body_is_422_and_leaves_the_trip_alone(
    client: httpx.AsyncClient,
) -> None:
    await available_at(client, HELSINKI)
    rider = await register_rider(client)
    key = new_key()
    trip = (await post_trip(client, rider.headers, HELSINKI, key=key)).json()

    # Checked before anything else: the rider's live trip would otherwise make this a 409.
    reply = await post_trip(client, rider.headers, offset(HELSINKI, 10, 0), key=key)

    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"].startswith(PROBLEM_JSON)
    assert reply.json()["title"] == "Idempotency key reused"
    assert await get_trip(client, rider.headers, trip["trip_id"]) == trip


@pytest.mark.parametrize("key", [None, "", "has space", "x" * 129], ids=repr)
async def test_a_request_without_a_usable_idempotency_key_is_422(
    client: httpx.AsyncClient, key: str | None
) -> None:
    rider = await register_rider(client)
    headers = rider.headers if key is None else {**rider.headers, "Idempotency-Key": key}

    reply = await client.post("/v1/trips", json=trip_body(HELSINKI), headers=headers)

    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"].startswith(PROBLEM_JSON)
    assert any("idempotency" in e["field"].lower() for e in reply.json()["errors"])


async def test_a_rider_with_a_live_trip_gets_409_until_that_trip_ends(
    client: httpx.AsyncClient,
) -> None:
    await available_at(client, HELSINKI)
    rider = await register_rider(client)
    live = await request_trip(client, rider, HELSINKI)

    refused = await post_trip(client, rider.headers, HELSINKI)
    assert refused.status_code == 409, refused.text
    assert refused.json()["trip_id"] == live["trip_id"]

    await acted(client, rider.headers, live["trip_id"], "cancel")
    again = await post_trip(client, rider.headers, HELSINKI)
    assert again.status_code == 201, again.text
    assert again.json()["trip_id"] != live["trip_id"]


async def test_a_rider_whose_trip_found_no_driver_may_request_again(
    client: httpx.AsyncClient,
) -> None:
    rider = await register_rider(client)
    lonely = await request_trip(client, rider, HELSINKI)
    assert lonely["state"] == "no_driver"
    assert lonely["driver_id"] is None

    driver = await available_at(client, HELSINKI)
    again = await request_trip(client, rider, HELSINKI)
    assert (again["state"], again["driver_id"]) == ("offered", driver.driver_id)


async def test_neither_a_driver_nor_the_admin_may_request_a_trip(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await available_at(client, HELSINKI)
    for headers in (driver.headers, admin_headers):
        reply = await post_trip(client, headers, HELSINKI)
        assert reply.status_code == 403, reply.text
        assert reply.headers["content-type"].startswith(PROBLEM_JSON)
    assert (await driver_record(client, driver))["status"] == "available"


async def test_a_request_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    reply = await client.post(
        "/v1/trips", json=trip_body(HELSINKI), headers={"Idempotency-Key": new_key()}
    )
    assert reply.status_code == 401, reply.text


@pytest.mark.parametrize(
    "body",
    [
        {"pickup": {"lat": 60.1, "lng": 24.9}},
        {"pickup": {"lat": 91.0, "lng": 24.9}, "dropoff": {"lat": 60.2, "lng": 24.9}},
        {"pickup": {"lat": "60.1", "lng": 24.9}, "dropoff": {"lat": 60.2, "lng": 24.9}},
        {
            "pickup": {"lat": 60.1, "lng": 24.9},
            "dropoff": {"lat": 60.2, "lng": 24.9},
            "surge": 2,
        },
    ],
    ids=["no-dropoff", "latitude-beyond-geo", "string-latitude", "unknown-field"],
)
async def test_a_malformed_trip_request_is_422_and_makes_no_trip(
    client: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    services: Services,
    body: dict[str, object],
) -> None:
    rider = await register_rider(client)
    reply = await client.post(
        "/v1/trips", json=body, headers={**rider.headers, "Idempotency-Key": new_key()}
    )
    assert reply.status_code == 422, reply.text
    assert await trip_events(redis_client, services.settings.key_prefix) == []
    assert (await post_trip(client, rider.headers, HELSINKI)).status_code == 201
