"""The limits over HTTP: trip requests per rider, single location pings per driver, registrations
per client address. 429 problem+json with Retry-After, RateLimit-Policy and RateLimit; allowed
answers carry the RateLimit headers too. On both backends (real redis-server and fakeredis)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from tests.conftest import make_settings
from tests.fleet import HELSINKI, PROBLEM_JSON, get_driver, offset, ping, register
from tests.integration.trip_helpers import new_key, post_trip, register_rider, running_app
from tests.unit.test_ratelimit_model import sf_item

QUIET = {"sweep_interval_s": 3600, "worker_interval_s": 3600}  # no background Redis traffic


def limit_state(reply: httpx.Response) -> tuple[dict[str, int], dict[str, int]]:
    """The RateLimit-Policy and RateLimit parameters of an answer (both must be there)."""
    _, policy = sf_item(reply.headers["RateLimit-Policy"])
    _, state = sf_item(reply.headers["RateLimit"])
    return policy, state


def assert_too_many(reply: httpx.Response, name: str, quota: int, window_s: int) -> int:
    """A well-formed 429; returns its Retry-After in seconds."""
    assert reply.status_code == 429, reply.text
    assert reply.headers["content-type"] == PROBLEM_JSON
    body = reply.json()
    assert body["status"] == 429
    assert body["title"] == "Too many requests"
    assert sf_item(reply.headers["RateLimit-Policy"]) == (name, {"q": quota, "w": window_s})
    limit_name, state = sf_item(reply.headers["RateLimit"])
    assert limit_name == name
    assert state["r"] == 0
    retry_after = int(reply.headers["Retry-After"])
    assert 1 <= retry_after <= state["t"]
    return retry_after


def decisions(limit: str, decision: str) -> float:
    labels = {"limit": limit, "decision": decision}
    return REGISTRY.get_sample_value("ridehail_ratelimit_decisions_total", labels) or 0.0


async def test_a_rider_over_its_trip_limit_gets_429_and_other_riders_do_not(
    redis_client: aioredis.Redis,
) -> None:
    settings = make_settings(limit_trip_requests="3/60", **QUIET)
    async with running_app(settings, redis_client) as app:
        rider, other = await register_rider(app.client), await register_rider(app.client)
        remaining = []
        for _ in range(3):  # no drivers: each trip ends no_driver, so the rider may ask again
            reply = await post_trip(app.client, rider.headers)
            assert reply.status_code == 201, reply.text
            policy, state = limit_state(reply)
            assert policy == {"q": 3, "w": 60}
            remaining.append(state["r"])
        refused = await post_trip(app.client, rider.headers)
        someone_else = await post_trip(app.client, other.headers)

    assert remaining == [2, 1, 0]
    retry_after = assert_too_many(refused, "trip-requests", quota=3, window_s=60)
    assert 19 <= retry_after <= 20  # one token every 20 s
    assert someone_else.status_code == 201
    assert limit_state(someone_else)[1]["r"] == 2


async def test_a_replayed_trip_request_is_answered_even_when_the_bucket_is_empty(
    redis_client: aioredis.Redis,
) -> None:
    """Idempotency comes first: a retry of a request that got through costs no token."""
    settings = make_settings(limit_trip_requests="1/60", **QUIET)
    async with running_app(settings, redis_client) as app:
        rider = await register_rider(app.client)
        key = new_key()
        first = await post_trip(app.client, rider.headers, key=key)
        limited = await post_trip(app.client, rider.headers)
        replay = await post_trip(app.client, rider.headers, key=key)

    assert first.status_code == 201
    assert limited.status_code == 429
    assert replay.status_code == 200, replay.text
    assert replay.json()["trip_id"] == first.json()["trip_id"]


async def test_a_replay_reports_the_riders_real_remaining_quota(
    redis_client: aioredis.Redis,
) -> None:
    settings = make_settings(limit_trip_requests="5/60", **QUIET)
    async with running_app(settings, redis_client) as app:
        rider = await register_rider(app.client)
        key = new_key()
        first = await post_trip(app.client, rider.headers, key=key)
        replay = await post_trip(app.client, rider.headers, key=key)

    assert limit_state(first)[1]["r"] == 4
    assert limit_state(replay)[1]["r"] == 4  # the replay cost nothing: 4 are still there


async def test_a_driver_over_its_ping_limit_gets_429_and_the_refused_ping_changes_nothing(
    redis_client: aioredis.Redis,
) -> None:
    settings = make_settings(limit_location_updates="2/10", **QUIET)
    async with running_app(settings, redis_client) as app:
        driver, other = await register(app.client), await register(app.client)
        allowed = [await ping(app.client, driver, offset(HELSINKI, 10 * i, 0)) for i in (1, 2)]
        refused = await ping(app.client, driver, offset(HELSINKI, 5_000, 0))
        where = await get_driver(app.client, driver)
        someone_else = await ping(app.client, other, HELSINKI)

    for reply, left in zip(allowed, (1, 0), strict=True):
        assert reply.status_code == 200, reply.text
        assert reply.json()["applied"] is True
        policy, state = limit_state(reply)
        assert (policy, state["r"]) == ({"q": 2, "w": 10}, left)
    assert assert_too_many(refused, "location-updates", quota=2, window_s=10) == 5
    second = offset(HELSINKI, 20, 0)
    assert (where["lat"], where["lng"]) == pytest.approx((second.lat, second.lng), abs=1e-6)
    assert someone_else.status_code == 200


async def test_registrations_from_one_address_share_one_bucket_for_drivers_and_riders(
    redis_client: aioredis.Redis,
) -> None:
    settings = make_settings(limit_registrations="2/60", **QUIET)
    before = decisions("registrations", "refused"), decisions("registrations", "allowed")
    async with running_app(settings, redis_client) as app:
        driver = await app.client.post("/v1/drivers", json={"name": "Aino"})
        rider = await app.client.post("/v1/riders", json={"name": "Eero"})
        refused_driver = await app.client.post("/v1/drivers", json={"name": "Aino"})
        refused_rider = await app.client.post("/v1/riders", json={"name": "Eero"})

    assert (driver.status_code, rider.status_code) == (201, 201)
    assert limit_state(driver)[1]["r"] == 1
    assert limit_state(rider)[1]["r"] == 0
    for reply in (refused_driver, refused_rider):
        assert assert_too_many(reply, "registrations", quota=2, window_s=60) in (29, 30)
    assert decisions("registrations", "refused") - before[0] == 2
    assert decisions("registrations", "allowed") - before[1] == 2


async def test_after_retry_after_the_client_gets_through_again(
    redis_client: aioredis.Redis,
) -> None:
    settings = make_settings(limit_registrations="2/0.5", **QUIET)  # a token every 250 ms
    async with running_app(settings, redis_client) as app:
        for _ in range(2):
            assert (await app.client.post("/v1/riders", json={"name": "x"})).status_code == 201
        refused = await app.client.post("/v1/riders", json={"name": "x"})
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "1"  # 250 ms, rounded up to whole seconds
        await asyncio.sleep(0.26)
        again = await app.client.post("/v1/riders", json={"name": "x"})
    assert again.status_code == 201, again.text


async def test_every_limit_counts_its_refusals_in_the_decisions_metric(
    redis_client: aioredis.Redis,
) -> None:
    settings = make_settings(limit_trip_requests="1/60", limit_location_updates="1/60", **QUIET)
    before = decisions("trip-requests", "refused"), decisions("location-updates", "refused")
    async with running_app(settings, redis_client) as app:
        rider, driver = await register_rider(app.client), await register(app.client)
        for _ in range(2):
            await post_trip(app.client, rider.headers)
            await ping(app.client, driver, HELSINKI)
    assert decisions("trip-requests", "refused") - before[0] == 1
    assert decisions("location-updates", "refused") - before[1] == 1
