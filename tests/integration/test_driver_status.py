"""Going available and offline: only available drivers are ever found nearby."""

from __future__ import annotations

import httpx
import pytest

from tests.fleet import (
    HELSINKI,
    Driver,
    available_at,
    get_driver,
    nearby_ids,
    offset,
    ping,
    register,
    set_status,
)

pytestmark = pytest.mark.layouts


async def test_going_available_answers_with_the_driver_as_it_now_is(
    client: httpx.AsyncClient,
) -> None:
    driver = await register(client, "Aino")
    await ping(client, driver, HELSINKI)
    body = await set_status(client, driver, "available")
    assert body["driver_id"] == driver.driver_id
    assert body["status"] == "available"
    assert (body["lat"], body["lng"]) == (HELSINKI.lat, HELSINKI.lng)
    assert body["fresh"] is True
    assert (await get_driver(client, driver))["status"] == "available"


async def test_an_offline_driver_is_never_found_nearby(client: httpx.AsyncClient) -> None:
    driver = await available_at(client, HELSINKI)
    assert driver.driver_id in await nearby_ids(client, driver.headers, HELSINKI)
    body = await set_status(client, driver, "offline")
    assert body["status"] == "offline"
    assert driver.driver_id not in await nearby_ids(client, driver.headers, HELSINKI)


async def test_an_offline_driver_that_keeps_pinging_moves_but_stays_out_of_search(
    client: httpx.AsyncClient,
) -> None:
    driver = await register(client)
    there = offset(HELSINKI, 200, 200)
    assert (await ping(client, driver, there)).json()["applied"] is True
    me = await get_driver(client, driver)
    assert (me["lat"], me["lng"], me["status"]) == (there.lat, there.lng, "offline")
    assert driver.driver_id not in await nearby_ids(client, driver.headers, there)


async def test_a_fresh_driver_that_goes_available_again_is_found_where_it_was(
    client: httpx.AsyncClient,
) -> None:
    driver = await available_at(client, HELSINKI)
    await set_status(client, driver, "offline")
    moved = offset(HELSINKI, 1_000, 0)
    await ping(client, driver, moved)
    await set_status(client, driver, "available")
    assert driver.driver_id in await nearby_ids(client, driver.headers, moved, 10)
    assert driver.driver_id not in await nearby_ids(client, driver.headers, HELSINKI, 500)


async def test_going_available_twice_keeps_one_entry_in_search(client: httpx.AsyncClient) -> None:
    driver = await available_at(client, HELSINKI)
    await set_status(client, driver, "available")
    found = await client.get(
        "/v1/drivers/nearby",
        params={"lat": HELSINKI.lat, "lng": HELSINKI.lng, "limit": 50},
        headers=driver.headers,
    )
    assert [d["driver_id"] for d in found.json()].count(driver.driver_id) == 1


async def test_an_available_driver_that_never_pinged_is_not_found_anywhere(
    client: httpx.AsyncClient,
) -> None:
    driver = await register(client)
    body = await set_status(client, driver, "available")
    assert (body["lat"], body["fresh"]) == (None, False)
    assert driver.driver_id not in await nearby_ids(client, driver.headers, HELSINKI, 50_000)
    await ping(client, driver, HELSINKI)
    assert driver.driver_id in await nearby_ids(client, driver.headers, HELSINKI, 10)


async def test_a_driver_may_not_change_another_drivers_status(client: httpx.AsyncClient) -> None:
    me, other = await register(client), await available_at(client, HELSINKI)
    reply = await client.put(f"{other.path}/status", json={"status": "offline"}, headers=me.headers)
    assert reply.status_code == 403
    assert (await get_driver(client, other))["status"] == "available"


async def test_the_admin_may_take_any_driver_offline(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await available_at(client, HELSINKI)
    reply = await client.put(
        f"{driver.path}/status", json={"status": "offline"}, headers=admin_headers
    )
    assert reply.status_code == 200
    assert driver.driver_id not in await nearby_ids(client, admin_headers, HELSINKI)


async def test_the_status_of_a_driver_that_does_not_exist_is_not_found(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    ghost = Driver("drv_ffffffffffffffff", "")
    reply = await client.put(
        f"{ghost.path}/status", json={"status": "available"}, headers=admin_headers
    )
    assert reply.status_code == 404
