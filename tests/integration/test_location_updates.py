"""A driver's location pings: applied in recorded order, never backwards, never from the future."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fleet import (
    HELSINKI,
    PROBLEM_JSON,
    Driver,
    get_driver,
    nearby_ids,
    now_ms,
    offset,
    ping,
    register,
    set_status,
)

pytestmark = pytest.mark.layouts


SOMEWHERE_ELSE = offset(HELSINKI, 3_000, 0)


def assert_problem(reply: httpx.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = reply.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return body


async def test_an_applied_ping_is_where_the_driver_now_is(client: httpx.AsyncClient) -> None:
    driver = await register(client)
    reply = await ping(client, driver, HELSINKI)
    assert reply.status_code == 200
    assert reply.json() == {"applied": True, "offer": None}
    me = await get_driver(client, driver)
    assert (me["lat"], me["lng"]) == (HELSINKI.lat, HELSINKI.lng)
    assert me["last_seen"] is not None
    assert me["fresh"] is True


async def test_a_ping_may_carry_heading_and_speed(client: httpx.AsyncClient) -> None:
    driver = await register(client)
    body = {"lat": 60.2, "lng": 24.9, "heading_deg": 359.5, "speed_mps": 13.9}
    reply = await client.put(f"{driver.path}/location", json=body, headers=driver.headers)
    assert reply.json()["applied"] is True
    assert (await get_driver(client, driver))["lat"] == 60.2


async def test_a_ping_recorded_before_the_last_applied_one_is_ignored(
    client: httpx.AsyncClient,
) -> None:
    driver = await register(client)
    t = now_ms() - 10_000
    assert (await ping(client, driver, SOMEWHERE_ELSE, recorded_ms=t)).json()["applied"] is True
    late = await ping(client, driver, HELSINKI, recorded_ms=t - 1)
    assert late.status_code == 200
    assert late.json() == {"applied": False, "offer": None}
    me = await get_driver(client, driver)
    assert (me["lat"], me["lng"]) == (SOMEWHERE_ELSE.lat, SOMEWHERE_ELSE.lng)


async def test_a_ping_recorded_at_the_same_moment_as_the_last_is_ignored(
    client: httpx.AsyncClient,
) -> None:
    driver = await register(client)
    t = now_ms() - 5_000
    await ping(client, driver, SOMEWHERE_ELSE, recorded_ms=t)
    again = await ping(client, driver, HELSINKI, recorded_ms=t)
    assert again.json()["applied"] is False
    assert (await get_driver(client, driver))["lat"] == SOMEWHERE_ELSE.lat


async def test_pings_arriving_shuffled_leave_the_driver_at_the_newest(
    client: httpx.AsyncClient,
) -> None:
    driver = await register(client)
    t = now_ms() - 20_000
    route = [offset(HELSINKI, 100 * i, 50 * i) for i in range(8)]
    arrival = [3, 0, 7, 1, 5, 2, 6, 4]
    applied = []
    for i in arrival:
        applied.append((await ping(client, driver, route[i], recorded_ms=t + i)).json()["applied"])
    # Applied exactly when newer than everything before it.
    assert applied == [i > max(arrival[:n], default=-1) for n, i in enumerate(arrival)]
    me = await get_driver(client, driver)
    assert (me["lat"], me["lng"]) == (route[7].lat, route[7].lng)


async def test_an_ignored_ping_never_moves_the_driver_in_the_index(
    client: httpx.AsyncClient,
) -> None:
    driver = await register(client)
    await set_status(client, driver, "available")
    t = now_ms() - 10_000
    await ping(client, driver, SOMEWHERE_ELSE, recorded_ms=t)
    await ping(client, driver, HELSINKI, recorded_ms=t - 1_000)
    assert driver.driver_id in await nearby_ids(client, driver.headers, SOMEWHERE_ELSE, 50)
    assert driver.driver_id not in await nearby_ids(client, driver.headers, HELSINKI, 1_000)


async def test_an_available_driver_that_moves_is_found_where_it_went(
    client: httpx.AsyncClient,
) -> None:
    driver = await register(client)
    await set_status(client, driver, "available")
    await ping(client, driver, HELSINKI)
    await ping(client, driver, SOMEWHERE_ELSE)
    assert driver.driver_id in await nearby_ids(client, driver.headers, SOMEWHERE_ELSE, 10)
    assert driver.driver_id not in await nearby_ids(client, driver.headers, HELSINKI, 1_000)


async def test_a_ping_a_little_ahead_of_the_server_clock_is_applied(
    client: httpx.AsyncClient,
) -> None:
    driver = await register(client)
    reply = await ping(client, driver, HELSINKI, recorded_ms=now_ms() + 2_000)
    assert reply.json()["applied"] is True


@pytest.mark.parametrize("ahead_ms", [8_000, 60_000, 10 * 365 * 86_400_000])
async def test_a_ping_more_than_five_seconds_in_the_future_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, ahead_ms: int
) -> None:
    driver = await register(client)
    await ping(client, driver, HELSINKI)
    before = await get_driver(client, driver)
    reply = await ping(client, driver, SOMEWHERE_ELSE, recorded_ms=now_ms() + ahead_ms)
    body = assert_problem(reply, 422)
    assert [e["field"] for e in body["errors"]] == ["recorded_at"]
    assert await get_driver(client, driver) == before
    # Nor did it poison the order: a ping of now still applies.
    assert (await ping(client, driver, SOMEWHERE_ELSE)).json()["applied"] is True


async def test_the_admin_may_report_any_drivers_location(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await register(client)
    body = {"lat": HELSINKI.lat, "lng": HELSINKI.lng}
    reply = await client.put(f"{driver.path}/location", json=body, headers=admin_headers)
    assert reply.json()["applied"] is True
    assert (await get_driver(client, driver))["lat"] == HELSINKI.lat


async def test_a_ping_for_a_driver_that_does_not_exist_is_not_found(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = {"lat": HELSINKI.lat, "lng": HELSINKI.lng}
    reply = await client.put(
        "/v1/drivers/drv_0000000000000000/location", json=body, headers=admin_headers
    )
    assert_problem(reply, 404)
    assert (
        await client.get("/v1/drivers/drv_0000000000000000", headers=admin_headers)
    ).status_code == 404


async def test_a_driver_may_not_report_another_drivers_location(
    client: httpx.AsyncClient,
) -> None:
    me, other = await register(client), await register(client)
    await ping(client, other, HELSINKI)
    before = await get_driver(client, other)
    reply = await ping(client, Driver(other.driver_id, me.token), SOMEWHERE_ELSE)
    assert_problem(reply, 403)
    assert await get_driver(client, other) == before


async def test_a_ping_without_a_token_is_unauthorized_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    driver = await register(client)
    await ping(client, driver, HELSINKI)
    before = await get_driver(client, driver)
    body = {"lat": SOMEWHERE_ELSE.lat, "lng": SOMEWHERE_ELSE.lng}
    reply = await client.put(f"{driver.path}/location", json=body)
    assert_problem(reply, 401)
    assert await get_driver(client, driver) == before


async def test_a_ping_recorded_longer_ago_than_the_staleness_limit_is_ignored(
    client: httpx.AsyncClient,
) -> None:
    driver = await register(client)
    await set_status(client, driver, "available")
    an_hour_ago = now_ms() - 3_600_000
    reply = await ping(client, driver, HELSINKI, recorded_ms=an_hour_ago)
    assert reply.json()["applied"] is False
    assert driver.driver_id not in await nearby_ids(client, driver.headers, HELSINKI, 100)
    assert (await get_driver(client, driver))["fresh"] is False


async def test_a_first_ping_recorded_just_beyond_the_staleness_limit_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    driver = await register(client)
    await set_status(client, driver, "available")
    before = await get_driver(client, driver)
    reply = await ping(client, driver, HELSINKI, recorded_ms=now_ms() - 31_000)
    assert reply.json()["applied"] is False
    assert await get_driver(client, driver) == before


async def test_a_ping_recorded_well_within_the_staleness_limit_is_applied_and_found(
    client: httpx.AsyncClient,
) -> None:
    driver = await register(client)
    await set_status(client, driver, "available")
    reply = await ping(client, driver, HELSINKI, recorded_ms=now_ms() - 10_000)
    assert reply.json()["applied"] is True
    assert driver.driver_id in await nearby_ids(client, driver.headers, HELSINKI, 100)
    assert (await get_driver(client, driver))["fresh"] is True
