"""Dispatch moves on: a declined or timed-out offer goes to the next nearest driver, never back
to one already tried, and a stale driver is never offered at all."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis.asyncio as aioredis

from dispatch.model import Position
from tests.conftest import make_settings
from tests.fleet import HELSINKI, Driver, available_at, get_driver, offset, ping, register
from tests.integration.trip_helpers import (
    act,
    acted,
    driver_record,
    get_trip,
    register_rider,
    request_trip,
    running_app,
    trip_events,
    wait_for_trip,
    wait_until,
)
from trips.workers import run_pass

pytestmark = pytest.mark.layouts


async def test_a_declined_offer_goes_to_the_next_nearest_driver_never_back(
    redis_client: aioredis.Redis,
) -> None:
    settings = make_settings()
    async with running_app(settings, redis_client) as ridehail:
        client = ridehail.client
        # Created farthest first, so nearness and not the order of creation decides.
        third = await available_at(client, offset(HELSINKI, 0, 1_500))
        second = await available_at(client, offset(HELSINKI, -700, 0))
        first = await available_at(client, offset(HELSINKI, 200, 0))
        rider = await register_rider(client)

        trip = await request_trip(client, rider, HELSINKI)
        offered_to = [trip["driver_id"]]
        for declining in (first, second, third):
            assert trip["driver_id"] == declining.driver_id
            trip = await acted(client, declining.headers, trip["trip_id"], "decline")
            offered_to.append(trip["driver_id"])
            record = await driver_record(client, declining)
            assert (record["status"], record["trip_id"]) == ("available", None)
            # The declined driver is no party to the trip any more.
            late = await act(client, declining.headers, trip["trip_id"], "accept")
            assert late.status_code == 403, late.text

        assert offered_to == [first.driver_id, second.driver_id, third.driver_id, None]
        assert trip["state"] == "no_driver"
        events = await trip_events(redis_client, settings.key_prefix)
        offers = [e.driver_id for e in events if e.action == "offer"]
        assert offers == [first.driver_id, second.driver_id, third.driver_id]
        assert [e.action for e in events][-1] == "give_up"


async def test_an_offer_that_times_out_goes_to_the_next_driver_then_ends_no_driver(
    redis_client: aioredis.Redis,
) -> None:
    settings = make_settings(offer_ttl_s=0.5, worker_interval_s=0.1)
    async with running_app(settings, redis_client) as ridehail:
        client = ridehail.client
        near = await available_at(client, offset(HELSINKI, 150, 0))
        far = await available_at(client, offset(HELSINKI, 0, 2_000))
        rider = await register_rider(client)
        trip = await request_trip(client, rider, HELSINKI)
        assert trip["driver_id"] == near.driver_id

        # Between the expiry and the next offer the trip is briefly `requested` again.
        moved = await wait_for_trip(
            client, rider.headers, trip["trip_id"], lambda t: t["driver_id"] == far.driver_id
        )

        assert (moved["state"], moved["driver_id"]) == ("offered", far.driver_id)
        assert moved["version"] == trip["version"] + 2  # expire, offer
        assert (await driver_record(client, near))["status"] == "available"
        # `near` is the nearest available driver, yet it already had its chance.
        ended = await wait_for_trip(
            client, rider.headers, trip["trip_id"], lambda t: t["state"] == "no_driver"
        )
        assert ended["state"] == "no_driver"
        for driver in (near, far):
            assert (await driver_record(client, driver))["status"] == "available"
        events = await trip_events(redis_client, settings.key_prefix)
        assert [(e.action, e.driver_id) for e in events] == [
            ("request", ""),
            ("offer", near.driver_id),
            ("expire", near.driver_id),
            ("offer", far.driver_id),
            ("expire", far.driver_id),
            ("give_up", ""),
        ]


async def test_an_offer_accepted_after_its_time_is_refused_and_then_expired(
    redis_client: aioredis.Redis,
) -> None:
    # The workers never run on their own here: one pass is made by hand.
    settings = make_settings(offer_ttl_s=0.3, worker_interval_s=3600)
    async with running_app(settings, redis_client) as ridehail:
        client = ridehail.client
        slow = await available_at(client, offset(HELSINKI, 150, 0))
        other = await available_at(client, offset(HELSINKI, 0, 1_000))
        rider = await register_rider(client)
        trip = await request_trip(client, rider, HELSINKI)
        assert trip["driver_id"] == slow.driver_id
        await asyncio.sleep(0.4)  # past the offer's deadline (not a claim about speed)

        late = await act(client, slow.headers, trip["trip_id"], "accept")

        assert late.status_code == 409, late.text
        assert "expired" in late.json()["detail"]
        assert await get_trip(client, rider.headers, trip["trip_id"]) == trip
        assert await run_pass(ridehail.services.trips) >= 1
        now = await get_trip(client, rider.headers, trip["trip_id"])
        assert (now["state"], now["driver_id"]) == ("offered", other.driver_id)
        assert (await driver_record(client, slow))["status"] == "available"


async def test_a_stale_driver_is_never_offered_a_trip(redis_client: aioredis.Redis) -> None:
    settings = make_settings(stale_after_s=1.0, sweep_interval_s=3600)
    async with running_app(settings, redis_client) as ridehail:
        client = ridehail.client
        stale = await available_at(client, offset(HELSINKI, 50, 0))
        fresh = await register(client)
        await client.put(
            f"{fresh.path}/status", json={"status": "available"}, headers=fresh.headers
        )

        async def gone_stale() -> bool:
            return (await get_driver(client, stale))["fresh"] is False

        await wait_until(gone_stale)
        lonely = await request_trip(client, await register_rider(client), HELSINKI)
        assert (lonely["state"], lonely["driver_id"]) == ("no_driver", None)

        await _ping(client, fresh, offset(HELSINKI, 0, 1_500))
        trip = await request_trip(client, await register_rider(client), HELSINKI)
        assert trip["driver_id"] == fresh.driver_id  # the nearer, stale driver was passed over
        assert (await driver_record(client, stale))["status"] == "available"

        await _ping(client, stale, offset(HELSINKI, 50, 0))
        back = await request_trip(client, await register_rider(client), HELSINKI)
        assert back["driver_id"] == stale.driver_id  # fresh again: offered again


async def _ping(client: httpx.AsyncClient, driver: Driver, at: Position) -> None:
    reply = await ping(client, driver, at)
    assert reply.json()["applied"] is True, reply.text
