"""A crash between the driver-side and the trip-side step of a use case is repaired.

Each test does by hand, with the real stores, what a use case does up to the moment its process
died, then runs worker passes (`trips.workers.run_pass`) until the driver's record and the trip
agree again. The workers here use the app's own adapters with a watchdog that looks at once
(grace 0) instead of seconds later, so the repair is not a wait.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from dispatch.model import DriverStatus
from ridehail.auth import Principal, Role
from ridehail.bootstrap import Services
from ridehail.lua import load_script
from tests.conftest import make_settings
from tests.fleet import HELSINKI, Driver, available_at, nearby_ids, offset
from tests.integration.trip_helpers import (
    DROPOFF,
    Running,
    acted,
    assert_records_agree,
    driver_record,
    get_trip,
    new_key,
    register_rider,
    running_app,
    trip_events,
    wait_until,
)
from trips.model import Action, RateTable, Trip, TripState
from trips.redis_trips import RedisTrips, offer_json
from trips.service import TripService, body_hash, new_trip_id
from trips.workers import run_pass

pytestmark = pytest.mark.layouts

NEAR, FAR = offset(HELSINKI, 100, 0), offset(HELSINKI, 0, 1_500)


def quiet_settings() -> Any:
    # The app's own workers never run; the test runs the passes. Offers last a minute.
    return make_settings(worker_interval_s=3600, offer_ttl_s=60)


def repairing(services: Services) -> TripService:
    """The app's trip service with a watchdog that looks at once and leases for no time."""
    live = services.trips
    policy = dataclasses.replace(live.policy, watchdog_grace_ms=0, offer_ttl_ms=0, lease_ms=0)
    return TripService(live.trips, live.supply, live.matcher, live.pricing, policy, live.metrics)


async def repair_until(service: TripService, repaired: Any) -> None:
    async def worker_pass_repaired() -> bool:
        await run_pass(service)
        return bool(await repaired())

    await wait_until(worker_pass_repaired)


async def status_of(ridehail: Running, driver: Driver) -> str:
    return str((await driver_record(ridehail.client, driver))["status"])


async def test_a_claim_whose_trip_never_heard_of_it_is_undone_and_the_trip_dispatched(
    redis_client: aioredis.Redis,
) -> None:
    async with running_app(quiet_settings(), redis_client) as ridehail:
        services = ridehail.services
        ghost = await available_at(ridehail.client, NEAR)
        spare = await available_at(ridehail.client, FAR)
        rider = await register_rider(ridehail.client)
        # A dispatcher created the trip and claimed the nearest driver, then died.
        trip = Trip(
            trip_id=new_trip_id(rider.rider_id),
            rider_id=rider.rider_id,
            state=TripState.REQUESTED,
            pickup=HELSINKI,
            dropoff=DROPOFF,
            fare=RateTable().quote(HELSINKI, DROPOFF),
            created_ms=0,
            updated_ms=0,
            version=1,
        )
        digest = body_hash(HELSINKI, DROPOFF)
        created = await services.trips.trips.create(trip, digest, new_key(), watchdog_ms=0)
        assert created.outcome == "created"
        claim = await services.supply_store.claim(
            ghost.driver_id,
            trip.trip_id,
            stale_after_ms=services.settings.stale_after_ms,
            ttl_ms=300,
            offer_json=offer_json(trip),
        )
        assert claim is not None
        assert await status_of(ridehail, ghost) == "offered"

        async def agreed() -> bool:
            now = await get_trip(ridehail.client, rider.headers, trip.trip_id)
            return now["state"] != "requested" and await status_of(ridehail, ghost) == "available"

        await repair_until(repairing(services), agreed)

        now = await get_trip(ridehail.client, rider.headers, trip.trip_id)
        assert (now["state"], now["driver_id"]) == ("offered", spare.driver_id)
        assert now["version"] == 2  # request, offer: undoing the ghost claim wrote nothing
        assert await status_of(ridehail, spare) == "offered"
        await assert_records_agree(services, [trip.trip_id], [ghost.driver_id, spare.driver_id])
        assert ghost.driver_id in await nearby_ids(ridehail.client, rider.headers, NEAR, 50)


async def _offered(ridehail: Running, service: TripService, driver: Driver) -> tuple[str, Any, int]:
    """A trip requested through `service`, offered to `driver`: (trip id, rider, token)."""
    rider = await register_rider(ridehail.client)
    trip, created, _ = await service.request_trip(rider.rider_id, HELSINKI, DROPOFF, new_key())
    assert created
    assert (trip.state, trip.driver_id) == (TripState.OFFERED, driver.driver_id)
    assert trip.token is not None
    return trip.trip_id, rider, trip.token


async def test_an_accept_that_reached_only_the_drivers_record_is_finished_by_the_watchdog(
    redis_client: aioredis.Redis,
) -> None:
    async with running_app(quiet_settings(), redis_client) as ridehail:
        services, service = ridehail.services, repairing(ridehail.services)
        driver = await available_at(ridehail.client, NEAR)
        trip_id, rider, token = await _offered(ridehail, service, driver)
        # The accept took the driver (offered -> on_trip), then the process died.
        assert await services.supply_store.accept_offer(driver.driver_id, trip_id, token) == 1

        async def accepted() -> bool:
            trip = await get_trip(ridehail.client, rider.headers, trip_id)
            return bool(trip["state"] == "accepted")

        await repair_until(service, accepted)

        await assert_records_agree(services, [trip_id], [driver.driver_id])
        # The trip carries on as if nothing happened, and ends with the driver free.
        for action in ("arrive", "start", "complete"):
            await acted(ridehail.client, driver.headers, trip_id, action)
        assert await status_of(ridehail, driver) == "available"


async def test_a_decline_that_reached_only_the_drivers_record_sends_the_trip_on(
    redis_client: aioredis.Redis,
) -> None:
    async with running_app(quiet_settings(), redis_client) as ridehail:
        services, service = ridehail.services, repairing(ridehail.services)
        decliner = await available_at(ridehail.client, NEAR)
        spare = await available_at(ridehail.client, FAR)
        trip_id, rider, token = await _offered(ridehail, service, decliner)
        # The decline gave the driver back, then the process died before moving the trip.
        released = await services.supply_store.release(
            decliner.driver_id, trip_id, token, stale_after_ms=services.settings.stale_after_ms
        )
        assert released

        async def moved_on() -> bool:
            trip = await get_trip(ridehail.client, rider.headers, trip_id)
            return bool(trip["driver_id"] == spare.driver_id)

        await repair_until(service, moved_on)

        # Never back to the driver who had it, though it is nearer and available.
        assert await status_of(ridehail, decliner) == "available"
        await assert_records_agree(services, [trip_id], [decliner.driver_id, spare.driver_id])
        actions = [
            e.action
            for e in await trip_events(redis_client, services.settings.key_prefix)
            if e.trip_id == trip_id
        ]
        assert actions == ["request", "offer", "expire", "offer"]


async def _on_trip(ridehail: Running, service: TripService, driver: Driver) -> tuple[str, Any]:
    trip_id, rider, _ = await _offered(ridehail, service, driver)
    for action in ("accept", "arrive", "start"):
        await acted(ridehail.client, driver.headers, trip_id, action)
    return trip_id, rider


async def test_a_completion_that_reached_only_the_trip_frees_the_driver(
    redis_client: aioredis.Redis,
) -> None:
    async with running_app(quiet_settings(), redis_client) as ridehail:
        services, service = ridehail.services, repairing(ridehail.services)
        driver = await available_at(ridehail.client, NEAR)
        trip_id, rider = await _on_trip(ridehail, service, driver)
        trip = await services.trips.trips.get(trip_id)
        assert trip is not None
        # The completion moved the trip (watchdog armed), then the process died.
        done = await services.trips.trips.transition(
            trip,
            Action.COMPLETE,
            allowed_from=[TripState.IN_PROGRESS],
            to=TripState.COMPLETED,
            expect_driver=trip.driver_id,
            expect_token=trip.token,
            watchdog_ms=0,
            ends_live_trip=True,
        )
        assert done.ok
        assert await status_of(ridehail, driver) == "on_trip"

        async def freed() -> bool:
            return await status_of(ridehail, driver) == "available"

        await repair_until(service, freed)

        assert (await get_trip(ridehail.client, rider.headers, trip_id))["state"] == "completed"
        await assert_records_agree(services, [trip_id], [driver.driver_id])
        assert driver.driver_id in await nearby_ids(ridehail.client, rider.headers, NEAR, 50)


async def test_a_cancel_that_reached_only_the_trip_frees_the_driver(
    redis_client: aioredis.Redis,
) -> None:
    async with running_app(quiet_settings(), redis_client) as ridehail:
        services, service = ridehail.services, repairing(ridehail.services)
        driver = await available_at(ridehail.client, NEAR)
        trip_id, rider, _ = await _offered(ridehail, service, driver)
        await acted(ridehail.client, driver.headers, trip_id, "accept")
        trip = await services.trips.trips.get(trip_id)
        assert trip is not None
        done = await services.trips.trips.transition(
            trip,
            Action.CANCEL,
            allowed_from=[TripState.ACCEPTED],
            to=TripState.CANCELLED,
            expect_version=trip.version,
            watchdog_ms=0,
            ends_live_trip=True,
        )
        assert done.ok

        async def freed() -> bool:
            return await status_of(ridehail, driver) == "available"

        await repair_until(service, freed)

        await assert_records_agree(services, [trip_id], [driver.driver_id])
        again = await service.request_trip(rider.rider_id, HELSINKI, DROPOFF, new_key())
        assert again[0].driver_id == driver.driver_id  # the rider and the driver go again


# -- a stall injected in the Redis client --------------------------------------------------------
class GatedRedis(aioredis.Redis):
    """A real client that holds one Lua script at a gate until the test opens it.

    It stalls the step of a use case that follows the held script, nothing more: the script
    then runs on the real server as it would have.
    """

    held_sha: str = ""
    arrived: asyncio.Event
    gate: asyncio.Event

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        if sha == self.held_sha and not self.gate.is_set():
            self.arrived.set()
            await self.gate.wait()
        return await super().evalsha(sha, numkeys, *keys_and_args)


async def test_an_accept_finished_by_the_watchdog_meanwhile_keeps_the_driver_on_its_trip(
    redis_url: str,
) -> None:
    redis = aioredis.Redis.from_url(redis_url, socket_timeout=5)
    gated = cast(GatedRedis, GatedRedis.from_url(redis_url, socket_timeout=5))
    await redis.flushdb()
    gated.held_sha = hashlib.sha1(load_script("trips", "transition").encode()).hexdigest()
    gated.arrived, gated.gate = asyncio.Event(), asyncio.Event()
    try:
        async with running_app(quiet_settings(), redis) as ridehail:
            services, watchdog = ridehail.services, repairing(ridehail.services)
            driver = await available_at(ridehail.client, NEAR)
            trip_id, rider, _ = await _offered(ridehail, watchdog, driver)
            live = services.trips
            slow_trips = RedisTrips(gated, services.keys, services.settings.idempotency_ttl_s)
            accepting = TripService(
                slow_trips, live.supply, live.matcher, live.pricing, live.policy, live.metrics
            )
            # The driver's accept: its record is taken, the trip's step is held at the gate.
            who = Principal(Role.DRIVER, driver.driver_id)
            accept = asyncio.create_task(accepting.act(trip_id, Action.ACCEPT, who))
            await asyncio.wait_for(gated.arrived.wait(), timeout=10)
            assert await status_of(ridehail, driver) == DriverStatus.ON_TRIP.value
            # Meanwhile the watchdog sees a trip offered to a driver on it, and finishes it.
            await watchdog.reconcile(trip_id)
            assert (await get_trip(ridehail.client, rider.headers, trip_id))["state"] == "accepted"
            gated.gate.set()
            accepted = await asyncio.wait_for(accept, timeout=10)

            assert (accepted.state, accepted.driver_id) == (TripState.ACCEPTED, driver.driver_id)
            assert (await get_trip(ridehail.client, rider.headers, trip_id))["state"] == "accepted"
            assert await status_of(ridehail, driver) == DriverStatus.ON_TRIP.value
            await assert_records_agree(services, [trip_id], [driver.driver_id])
    finally:
        await gated.aclose()
        await redis.aclose()


async def test_an_accept_the_drivers_record_lost_in_a_failover_is_put_back_not_freed(
    redis_client: aioredis.Redis,
) -> None:
    async with running_app(quiet_settings(), redis_client) as ridehail:
        services, service = ridehail.services, repairing(ridehail.services)
        driver = await available_at(ridehail.client, NEAR)
        trip_id, rider, _ = await _offered(ridehail, service, driver)
        await acted(ridehail.client, driver.headers, trip_id, "accept")
        # A failover lost the record's asynchronous write of the accept, but not the trip's
        # (another master): the record is back to the offer, which has expired since.
        keys = services.keys
        offer = "{}"
        await redis_client.hset(
            keys.driver(driver.driver_id),
            mapping={"status": "offered", "offer": offer, "oexp": "1"},
        )
        queue = keys.offer_expiries(keys.driver_shard(driver.driver_id))
        await redis_client.zadd(queue, {driver.driver_id: 1})

        await run_pass(service)

        assert await status_of(ridehail, driver) == "on_trip"
        trip = await get_trip(ridehail.client, rider.headers, trip_id)
        assert (trip["state"], trip["driver_id"]) == ("accepted", driver.driver_id)
        assert driver.driver_id not in await nearby_ids(ridehail.client, rider.headers, NEAR, 50)
        await assert_records_agree(services, [trip_id], [driver.driver_id])
        for action in ("arrive", "start", "complete"):
            await acted(ridehail.client, driver.headers, trip_id, action)
        assert await status_of(ridehail, driver) == "available"
