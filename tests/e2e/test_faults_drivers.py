"""Drivers that vanish (no more requests, as when a phone dies) mid-offer and mid-trip, through a
real `ridehail serve` on a real redis-server.

Mid-offer: the offer expires and goes to the next driver. Mid-trip: the driver's record turns
`fresh: false` while it still holds the trip, and the trip stays readable with its driver. That
flag is all the API gives: nothing on the trip, no event, no timeout ends or reassigns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fleet import HELSINKI, Driver, offset
from tests.integration.trip_helpers import DROPOFF, Rider, wait_until
from tests.support import ADMIN_TOKEN, running_ridehail

pytestmark = [pytest.mark.e2e, pytest.mark.real_redis, pytest.mark.timeout(60)]

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
STALE_AFTER_S = 2.0


def env(prefix: str) -> dict[str, str]:
    return {
        "RIDEHAIL_KEY_PREFIX": prefix,
        "RIDEHAIL_OFFER_TTL_S": "1",
        "RIDEHAIL_WORKER_INTERVAL_S": "0.2",
        "RIDEHAIL_STALE_AFTER_S": str(STALE_AFTER_S),
        "RIDEHAIL_SWEEP_INTERVAL_S": "0.2",
        "RIDEHAIL_REDIS_TIMEOUT_S": "5",  # a loaded machine is not an outage here
        "RIDEHAIL_LIMIT_REGISTRATIONS": "100000/1",
        "RIDEHAIL_LIMIT_LOCATION_UPDATES": "100000/1",
        "RIDEHAIL_ACCESS_LOG": "false",
    }


async def available_driver(api: httpx.AsyncClient, north_m: float) -> Driver:
    reply = await api.post("/v1/drivers", json={"name": f"d-{secrets.token_hex(3)}"})
    assert reply.status_code == 201, reply.text
    driver = Driver(reply.json()["driver_id"], reply.json()["token"])
    reply = await api.put(
        f"{driver.path}/status", json={"status": "available"}, headers=driver.headers
    )
    assert reply.status_code == 200, reply.text
    await ping(api, driver, north_m)
    return driver


async def ping(api: httpx.AsyncClient, driver: Driver, north_m: float) -> None:
    at = offset(HELSINKI, north_m, 0)
    reply = await api.put(
        f"{driver.path}/location", json={"lat": at.lat, "lng": at.lng}, headers=driver.headers
    )
    assert reply.status_code == 200, reply.text


@contextlib.asynccontextmanager
async def pinging(api: httpx.AsyncClient, driver: Driver, north_m: float) -> AsyncIterator[None]:
    """The driver keeps pinging (every 0.25 s) until the block ends: then it vanishes."""

    async def keep_pinging() -> None:
        for _ in range(400):  # bounded: 100 s at most, the test ends far sooner
            await ping(api, driver, north_m)
            await asyncio.sleep(0.25)

    task = asyncio.create_task(keep_pinging())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def record(api: httpx.AsyncClient, driver: Driver) -> dict[str, Any]:
    reply = await api.get(driver.path, headers=driver.headers)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def trip_of(api: httpx.AsyncClient, rider: Rider, trip_id: str) -> dict[str, Any]:
    reply = await api.get(f"/v1/trips/{trip_id}", headers=rider.headers)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def new_rider(api: httpx.AsyncClient) -> Rider:
    reply = await api.post("/v1/riders", json={"name": "r"})
    assert reply.status_code == 201, reply.text
    return Rider(reply.json()["rider_id"], reply.json()["token"])


async def request_trip(api: httpx.AsyncClient, rider: Rider) -> dict[str, Any]:
    body = {
        "pickup": {"lat": HELSINKI.lat, "lng": HELSINKI.lng},
        "dropoff": {"lat": DROPOFF.lat, "lng": DROPOFF.lng},
    }
    headers = {**rider.headers, "Idempotency-Key": secrets.token_hex(8)}
    reply = await api.post("/v1/trips", json=body, headers=headers)
    assert reply.status_code == 201, reply.text
    trip: dict[str, Any] = reply.json()
    return trip


async def test_a_driver_that_vanishes_mid_offer_loses_it_to_the_next_and_one_that_vanishes_mid_trip_is_flagged_stale_but_keeps_the_trip(  # noqa: E501
    redis_url: str,
) -> None:
    with running_ridehail(redis_url, **env("v" + secrets.token_hex(4))) as base:
        async with httpx.AsyncClient(base_url=base, timeout=10) as api:
            near = await available_driver(api, 100)
            far = await available_driver(api, 600)
            rider = await new_rider(api)
            async with pinging(api, far, 600):
                # The nearer driver gets the offer, then is never heard from again.
                trip = await request_trip(api, rider)
                trip_id = trip["trip_id"]
                assert (trip["state"], trip["driver_id"]) == ("offered", near.driver_id), trip
                vanished_at = time.monotonic()

                async def offered_to_the_next_driver() -> bool:
                    now = await trip_of(api, rider, trip_id)
                    return bool(now["driver_id"] == far.driver_id and now["state"] == "offered")

                await wait_until(offered_to_the_next_driver, within_s=15)
                handed_on_s = time.monotonic() - vanished_at
                gone = await record(api, near)
                assert gone["status"] == "available", gone  # released, not stuck `offered`
                assert gone["trip_id"] is None, gone
                assert gone["offer"] is None, gone

                reply = await api.post(f"/v1/trips/{trip_id}/accept", headers=far.headers)
                assert reply.status_code == 200, reply.text
                assert reply.json()["state"] == "accepted"
                assert (await record(api, far))["fresh"] is True
            # Now the assigned driver vanishes mid-trip.
            silent_at = time.monotonic()

            async def flagged_stale() -> bool:
                return (await record(api, far))["fresh"] is False

            await wait_until(flagged_stale, within_s=STALE_AFTER_S + 15)
            flagged_s = time.monotonic() - silent_at
            await asyncio.sleep(1.0)  # a few more worker passes: nothing takes the trip away
            held = await record(api, far)
            assert (held["status"], held["trip_id"], held["fresh"]) == (
                "on_trip",
                trip_id,
                False,
            ), held
            after = await trip_of(api, rider, trip_id)
            assert (after["state"], after["driver_id"]) == ("accepted", far.driver_id), after
            reply = await api.get(
                "/v1/drivers/nearby",
                params={"lat": HELSINKI.lat, "lng": HELSINKI.lng},
                headers=ADMIN,
            )
            assert reply.status_code == 200, reply.text
            assert far.driver_id not in {d["driver_id"] for d in reply.json()}
            assert near.driver_id not in {d["driver_id"] for d in reply.json()}  # stale too
    print(
        f"\n[driver vanishes] faults=2 (mid-offer, mid-trip) offer_handed_on_s={handed_on_s:.2f} "
        f"(offer ttl 1 s, workers 0.2 s) flagged_stale_s={flagged_s:.2f} "
        f"(stale after {STALE_AFTER_S:g} s) trip_kept=accepted/{far.driver_id} "
        "flag_beyond_fresh_false=none"
    )
