"""Nearby search is exact: the k nearest available, fresh drivers within the radius, nearest first.

Thousands of drivers are seeded through the batch endpoint, then the API's answer at many random
points is compared with a brute-force haversine over every driver.
"""

from __future__ import annotations

import random
import secrets

import fakeredis
import httpx
import pytest
import redis.asyncio as aioredis

from dispatch.model import DriverStatus, Position
from ridehail.auth import Role, hash_token, mint_token, new_id
from ridehail.bootstrap import Services
from tests.fleet import (
    HELSINKI,
    assert_exact_nearest,
    available_at,
    nearby,
    offset,
    scatter,
    set_status,
)

pytestmark = pytest.mark.layouts


CITY_HALF_SIDE_M = 15_000


async def seed(
    client: httpx.AsyncClient,
    services: Services,
    admin_headers: dict[str, str],
    positions: list[Position],
    status: DriverStatus = DriverStatus.AVAILABLE,
) -> dict[str, Position]:
    """Drivers at `positions`, registered in the store, set to `status`, placed by batch pings."""
    placed: dict[str, Position] = {}
    for at in positions:
        driver_id = new_id(Role.DRIVER)
        token_hash = hash_token(mint_token(driver_id))
        await services.supply_store.create_driver(driver_id, "seeded", None, token_hash)
        await services.supply.set_status(driver_id, status)
        placed[driver_id] = at
    rows = [{"driver_id": i, "lat": p.lat, "lng": p.lng} for i, p in placed.items()]
    for start in range(0, len(rows), 1000):
        reply = await client.post(
            "/v1/drivers/locations",
            json={"updates": rows[start : start + 1000]},
            headers=admin_headers,
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["accepted"] == len(rows[start : start + 1000]), reply.text
    return placed


async def test_nearby_is_exactly_the_k_nearest_within_the_radius_among_thousands(
    client: httpx.AsyncClient,
    services: Services,
    admin_headers: dict[str, str],
    redis_client: aioredis.Redis,
) -> None:
    seed_value = secrets.randbits(32)
    rng = random.Random(seed_value)
    available = await seed(
        client,
        services,
        admin_headers,
        [scatter(rng, HELSINKI, CITY_HALF_SIDE_M) for _ in range(2_000)],
    )
    await seed(
        client,
        services,
        admin_headers,
        [scatter(rng, HELSINKI, CITY_HALF_SIDE_M) for _ in range(300)],
        status=DriverStatus.OFFLINE,
    )
    # fakeredis scans every member on each GEOSEARCH, so it gets fewer (still random) points.
    queries = 20 if isinstance(redis_client, fakeredis.FakeAsyncRedis) else 120
    for _ in range(queries):
        at = scatter(rng, HELSINKI, CITY_HALF_SIDE_M + 3_000)
        radius_m = rng.choice([50, 200, 500, 1_000, 3_000, 5_000, 20_000, 50_000])
        limit = rng.choice([1, 2, 5, 10, 25, 50])
        found = await nearby(client, admin_headers, at, radius_m, limit)
        try:
            assert_exact_nearest(found, available, at, radius_m, limit)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed_value}, {at}, r={radius_m}, k={limit}") from exc


async def test_a_sparse_search_widens_until_it_finds_the_few_drivers_far_away(
    client: httpx.AsyncClient, services: Services, admin_headers: dict[str, str]
) -> None:
    # The first circle is 100 m: reaching 40 km takes nine doublings.
    far = [
        offset(HELSINKI, 12_000, 0),
        offset(HELSINKI, -25_000, 3_000),
        offset(HELSINKI, 0, -39_000),
    ]
    placed = await seed(client, services, admin_headers, far)
    found = await nearby(client, admin_headers, HELSINKI, radius_m=50_000, limit=10)
    assert [d["driver_id"] for d in found] == list(placed)
    assert_exact_nearest(found, placed, HELSINKI, 50_000, 10)


async def test_a_sparse_search_for_fewer_than_there_are_returns_the_nearest_ones(
    client: httpx.AsyncClient, services: Services, admin_headers: dict[str, str]
) -> None:
    far = [offset(HELSINKI, 0, 5_000 * (i + 1)) for i in range(6)]
    placed = await seed(client, services, admin_headers, far)
    found = await nearby(client, admin_headers, HELSINKI, radius_m=50_000, limit=2)
    assert [d["driver_id"] for d in found] == list(placed)[:2]


async def test_drivers_beyond_the_radius_are_never_returned_even_when_fewer_than_k(
    client: httpx.AsyncClient, services: Services, admin_headers: dict[str, str]
) -> None:
    rings = [offset(HELSINKI, 1_000, 0), offset(HELSINKI, 0, 3_000), offset(HELSINKI, -6_000, 0)]
    placed = await seed(client, services, admin_headers, rings)
    found = await nearby(client, admin_headers, HELSINKI, radius_m=5_000, limit=10)
    assert [d["driver_id"] for d in found] == list(placed)[:2]
    found = await nearby(client, admin_headers, HELSINKI, radius_m=999, limit=10)
    assert found == []


@pytest.mark.parametrize(
    "settings", [{"search_max_radius_m": 2_000}], indirect=True, ids=["max-radius-2km"]
)
async def test_the_configured_maximum_radius_cuts_a_wider_request(
    client: httpx.AsyncClient, services: Services, admin_headers: dict[str, str]
) -> None:
    rings = [offset(HELSINKI, 1_500, 0), offset(HELSINKI, 0, 2_500), offset(HELSINKI, 4_000, 0)]
    placed = await seed(client, services, admin_headers, rings)
    found = await nearby(client, admin_headers, HELSINKI, radius_m=50_000, limit=10)
    assert [d["driver_id"] for d in found] == list(placed)[:1]


async def test_the_distance_reported_is_the_distance_from_the_query_point(
    client: httpx.AsyncClient,
) -> None:
    driver = await available_at(client, offset(HELSINKI, 300, 400))
    [found] = await nearby(client, driver.headers, HELSINKI, radius_m=1_000, limit=1)
    assert found["driver_id"] == driver.driver_id
    assert found["distance_m"] == pytest.approx(500, abs=1)
    assert set(found) == {"driver_id", "lat", "lng", "distance_m"}


async def test_drivers_at_the_same_spot_are_all_found(client: httpx.AsyncClient) -> None:
    drivers = [await available_at(client, HELSINKI) for _ in range(5)]
    found = await nearby(client, drivers[0].headers, HELSINKI, radius_m=1, limit=50)
    assert {d["driver_id"] for d in found} == {d.driver_id for d in drivers}


async def test_search_across_the_antimeridian_finds_drivers_on_the_other_side(
    client: httpx.AsyncClient,
) -> None:
    fiji_east, fiji_west = Position(-17.0, 179.999), Position(-17.0, -179.999)
    driver = await available_at(client, fiji_west)
    [found] = await nearby(client, driver.headers, fiji_east, radius_m=1_000, limit=5)
    assert found["driver_id"] == driver.driver_id
    assert found["distance_m"] == pytest.approx(212.7, abs=1)


async def test_a_driver_going_offline_is_replaced_by_the_next_nearest(
    client: httpx.AsyncClient,
) -> None:
    near = await available_at(client, offset(HELSINKI, 100, 0))
    next_near = await available_at(client, offset(HELSINKI, 200, 0))
    [first] = await nearby(client, near.headers, HELSINKI, limit=1)
    assert first["driver_id"] == near.driver_id
    await set_status(client, near, "offline")
    [first] = await nearby(client, near.headers, HELSINKI, limit=1)
    assert first["driver_id"] == next_near.driver_id
