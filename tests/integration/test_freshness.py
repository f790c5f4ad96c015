"""Freshness: a driver whose last ping is older than the staleness limit is not offered.

These run with a tiny staleness limit. Waiting for a driver to go stale is done by polling the
API until it says so, so the tests claim what happens, never how soon.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from dispatch.model import Position
from ridehail.bootstrap import Services
from tests.fleet import (
    HELSINKI,
    Driver,
    available_at,
    eventually,
    get_driver,
    nearby,
    nearby_ids,
    offset,
    ping,
    register,
    set_status,
)

pytestmark = pytest.mark.layouts


IDLE_SWEEPER = {"stale_after_s": 0.3, "sweep_interval_s": 3600}
BUSY_SWEEPER = {"stale_after_s": 0.3, "sweep_interval_s": 0.1}
# Where a ping must still be fresh when the next request arrives, leave room for a slow machine.
ROOMY = {"stale_after_s": 0.5, "sweep_interval_s": 0.1}
ROOMY_IDLE = {"stale_after_s": 0.5, "sweep_interval_s": 3600}


def with_settings(overrides: dict[str, Any]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("settings", [overrides], indirect=True, ids=["tiny-staleness"])


async def until_stale(client: httpx.AsyncClient, driver: Driver) -> None:
    async def stale() -> bool:
        return (await get_driver(client, driver))["fresh"] is False

    await eventually(stale)


async def in_index(redis_client: aioredis.Redis, services: Services, driver: Driver) -> bool:
    keys = services.keys
    found = False
    for cell in await services.supply_store.index_cells():
        async with redis_client.pipeline(transaction=True) as both:  # one atomic read of the two
            both.zscore(keys.available_geo(cell), driver.driver_id)
            both.zscore(keys.last_seen(cell), driver.driver_id)
            in_geo, in_seen = (score is not None for score in await both.execute())
        assert in_geo == in_seen, "the GEO index and the last-seen set disagree"
        found = found or in_geo
    return found


@with_settings(IDLE_SWEEPER)
async def test_a_driver_that_stopped_pinging_is_not_found_even_before_it_is_swept(
    client: httpx.AsyncClient, redis_client: aioredis.Redis, services: Services
) -> None:
    driver = await available_at(client, HELSINKI)
    await until_stale(client, driver)
    assert driver.driver_id not in await nearby_ids(client, driver.headers, HELSINKI, 50_000)
    assert await in_index(redis_client, services, driver), "the sweeper was meant to be idle"


@with_settings(BUSY_SWEEPER)
async def test_the_sweeper_takes_a_stale_driver_out_of_the_index_but_keeps_its_record(
    client: httpx.AsyncClient, redis_client: aioredis.Redis, services: Services
) -> None:
    driver = await available_at(client, HELSINKI)

    async def swept() -> bool:
        return not await in_index(redis_client, services, driver)

    await eventually(swept)
    me = await get_driver(client, driver)
    assert me["status"] == "available"
    assert (me["lat"], me["lng"]) == (HELSINKI.lat, HELSINKI.lng)
    assert me["fresh"] is False
    assert me["last_seen"] is not None


@with_settings(BUSY_SWEEPER)
async def test_the_sweeper_leaves_offline_drivers_records_alone(
    client: httpx.AsyncClient, redis_client: aioredis.Redis, services: Services
) -> None:
    driver = await available_at(client, HELSINKI)
    await set_status(client, driver, "offline")
    await until_stale(client, driver)
    me = await get_driver(client, driver)
    assert (me["status"], me["lat"]) == ("offline", HELSINKI.lat)
    assert not await in_index(redis_client, services, driver)


@with_settings(ROOMY)
async def test_a_swept_driver_that_pings_again_is_found_again(
    client: httpx.AsyncClient, redis_client: aioredis.Redis, services: Services
) -> None:
    driver = await available_at(client, HELSINKI)

    async def swept() -> bool:
        return not await in_index(redis_client, services, driver)

    await eventually(swept)
    back = offset(HELSINKI, 150, 0)
    assert (await ping(client, driver, back)).json()["applied"] is True
    assert driver.driver_id in await nearby_ids(client, driver.headers, back, 100)
    assert (await get_driver(client, driver))["fresh"] is True


@with_settings(ROOMY_IDLE)
async def test_a_stale_driver_going_available_stays_out_of_search_until_it_pings(
    client: httpx.AsyncClient,
) -> None:
    driver = await available_at(client, HELSINKI)
    await set_status(client, driver, "offline")
    await until_stale(client, driver)
    body = await set_status(client, driver, "available")
    assert (body["status"], body["fresh"]) == ("available", False)
    assert driver.driver_id not in await nearby_ids(client, driver.headers, HELSINKI, 50_000)
    await ping(client, driver, HELSINKI)
    assert driver.driver_id in await nearby_ids(client, driver.headers, HELSINKI, 100)


@with_settings(ROOMY_IDLE)
async def test_stale_drivers_close_by_do_not_hide_fresh_drivers_further_away(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    stale = [await available_at(client, offset(HELSINKI, 2 * i, 3 * i)) for i in range(30)]
    fresh = [await register(client) for _ in range(3)]
    for driver in fresh:
        await set_status(client, driver, "available")
    await until_stale(client, stale[-1])
    # One request places all three, so they are still fresh when searched for.
    rows = [
        {"driver_id": d.driver_id, **lat_lng(offset(HELSINKI, 700 * (n + 1), 0))}
        for n, d in enumerate(fresh)
    ]
    reply = await client.post(
        "/v1/drivers/locations", json={"updates": rows}, headers=admin_headers
    )
    assert reply.json()["accepted"] == 3
    found = await nearby(client, admin_headers, HELSINKI, radius_m=5_000, limit=3)
    assert [d["driver_id"] for d in found] == [d.driver_id for d in fresh]
    found = await nearby(client, admin_headers, HELSINKI, radius_m=5_000, limit=50)
    assert [d["driver_id"] for d in found] == [d.driver_id for d in fresh]


def lat_lng(at: Position) -> dict[str, float]:
    return {"lat": at.lat, "lng": at.lng}
