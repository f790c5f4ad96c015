"""The match lock is an optimisation, not the guard: a dispatcher that stalls past its lock's
expiry finds the driver claimed by another and never double-books it (the claim is a fenced
compare-and-set on the driver's record)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from ridehail.settings import Settings
from tests.conftest import make_settings
from tests.fleet import HELSINKI, Driver, available_at, offset
from tests.integration.trip_helpers import (
    Running,
    assert_records_agree,
    driver_record,
    register_rider,
    request_trip,
    running_app,
    trip_events,
)

pytestmark = pytest.mark.layouts

LOCK_S = 0.2
STALL_S = 0.6  # three lock lifetimes


class StallOnce:
    """A pause hook that stalls the first dispatcher to call it, inside the match lock."""

    def __init__(self) -> None:
        self.calls = 0
        self.stalled = asyncio.Event()
        self.resumed = asyncio.Event()

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls == 1:
            self.stalled.set()
            await asyncio.sleep(STALL_S)
            self.resumed.set()


def stalling_settings() -> Settings:
    # The workers stay out of it: every dispatch here is a request's own.
    return make_settings(match_lock_timeout_s=LOCK_S, worker_interval_s=3600)


async def _race(
    stalled_app: Running, other_app: Running, stall: StallOnce, driver: Driver
) -> tuple[dict[str, object], dict[str, object]]:
    """Trip A stalls mid-dispatch; trip B is requested meanwhile. Both answers, A's first."""
    rider_a = await register_rider(stalled_app.client)
    rider_b = await register_rider(other_app.client)
    requesting_a = asyncio.create_task(request_trip(stalled_app.client, rider_a, HELSINKI))
    await asyncio.wait_for(stall.stalled.wait(), timeout=10)

    trip_b = await request_trip(other_app.client, rider_b, HELSINKI)

    assert not stall.resumed.is_set(), "B must be served while A is still stalled"
    assert (trip_b["state"], trip_b["driver_id"]) == ("offered", driver.driver_id)
    trip_a = await asyncio.wait_for(requesting_a, timeout=10)
    assert stall.resumed.is_set()
    return trip_a, trip_b


async def _assert_one_offer_for_b(
    redis: aioredis.Redis,
    app: Running,
    driver: Driver,
    trip_a: dict[str, object],
    trip_b: dict[str, object],
) -> None:
    assert trip_a["state"] == "no_driver"
    assert trip_a["driver_id"] is None
    record = await driver_record(app.client, driver)
    assert (record["status"], record["trip_id"]) == ("offered", trip_b["trip_id"])
    assert record["offer"]["trip_id"] == trip_b["trip_id"]
    events = await trip_events(redis, app.services.settings.key_prefix)
    offers = [(e.trip_id, e.driver_id) for e in events if e.action == "offer"]
    assert offers == [(trip_b["trip_id"], driver.driver_id)]
    trip_ids = [str(trip_a["trip_id"]), str(trip_b["trip_id"])]
    await assert_records_agree(app.services, trip_ids, [driver.driver_id])


async def test_a_dispatcher_stalled_past_its_lock_expiry_cannot_double_book_the_driver(
    redis_client: aioredis.Redis,
) -> None:
    stall = StallOnce()
    async with running_app(stalling_settings(), redis_client, stall) as ridehail:
        driver = await available_at(ridehail.client, offset(HELSINKI, 80, 0))

        trip_a, trip_b = await _race(ridehail, ridehail, stall, driver)

        await _assert_one_offer_for_b(redis_client, ridehail, driver, trip_a, trip_b)


@contextlib.asynccontextmanager
async def two_instances(
    redis: aioredis.Redis, stall: StallOnce
) -> AsyncIterator[tuple[Running, Running]]:
    """Two apps (two TripServices, two Matchers) on one Redis, as two API processes are."""
    settings = stalling_settings()
    async with (
        running_app(settings, redis, stall) as stalled,
        running_app(settings, redis) as other,
    ):
        yield stalled, other


async def test_two_instances_racing_past_an_expired_lock_offer_the_driver_once(
    redis_client: aioredis.Redis,
) -> None:
    stall = StallOnce()
    async with two_instances(redis_client, stall) as (stalled, other):
        driver = await available_at(other.client, offset(HELSINKI, 80, 0))

        trip_a, trip_b = await _race(stalled, other, stall, driver)

        await _assert_one_offer_for_b(redis_client, other, driver, trip_a, trip_b)
        assert stall.calls == 1  # A found nobody else, so it never paused again


async def test_a_stalled_dispatcher_moves_on_to_the_next_driver_when_one_is_left(
    redis_client: aioredis.Redis,
) -> None:
    stall = StallOnce()
    async with two_instances(redis_client, stall) as (stalled, other):
        near = await available_at(other.client, offset(HELSINKI, 80, 0))
        spare = await available_at(other.client, offset(HELSINKI, 0, 1_200))
        rider_a = await register_rider(stalled.client)
        rider_b = await register_rider(other.client)
        requesting_a = asyncio.create_task(request_trip(stalled.client, rider_a, HELSINKI))
        await asyncio.wait_for(stall.stalled.wait(), timeout=10)

        trip_b = await request_trip(other.client, rider_b, HELSINKI)
        trip_a = await asyncio.wait_for(requesting_a, timeout=10)

        assert trip_b["driver_id"] == near.driver_id
        assert (trip_a["state"], trip_a["driver_id"]) == ("offered", spare.driver_id)
        await assert_records_agree(
            other.services,
            [trip_a["trip_id"], trip_b["trip_id"]],
            [near.driver_id, spare.driver_id],
        )


async def test_many_requests_at_once_for_one_driver_make_exactly_one_offer(
    redis_client: aioredis.Redis,
) -> None:
    settings = make_settings(worker_interval_s=3600, limit_registrations="1000/1")
    async with (
        running_app(settings, redis_client) as first,
        running_app(settings, redis_client) as second,
    ):
        driver = await available_at(first.client, offset(HELSINKI, 80, 0))
        apps = [first, second] * 6
        riders = [await register_rider(app.client) for app in apps]

        trips = await asyncio.gather(
            *(
                request_trip(app.client, rider, HELSINKI)
                for app, rider in zip(apps, riders, strict=True)
            )
        )

        offered = [t for t in trips if t["state"] == "offered"]
        assert len(offered) == 1, [t["state"] for t in trips]
        assert {t["state"] for t in trips} - {"offered"} <= {"no_driver", "requested"}
        assert offered[0]["driver_id"] == driver.driver_id
        assert (await driver_record(first.client, driver))["trip_id"] == offered[0]["trip_id"]
        await assert_records_agree(
            first.services, [t["trip_id"] for t in trips], [driver.driver_id]
        )
