"""The batch endpoint a gateway uses: many drivers at once, each row judged on its own."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fleet import (
    HELSINKI,
    PROBLEM_JSON,
    Driver,
    get_driver,
    iso,
    nearby_ids,
    now_ms,
    offset,
    register,
    set_status,
)

pytestmark = pytest.mark.layouts


def row(driver: Driver | str, north_m: float = 0, **extra: Any) -> dict[str, Any]:
    at = offset(HELSINKI, north_m, 0)
    driver_id = driver if isinstance(driver, str) else driver.driver_id
    return {"driver_id": driver_id, "lat": at.lat, "lng": at.lng, **extra}


async def post_batch(
    client: httpx.AsyncClient, headers: dict[str, str], updates: list[Any]
) -> httpx.Response:
    return await client.post("/v1/drivers/locations", json={"updates": updates}, headers=headers)


async def test_a_batch_applies_every_good_row(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    drivers = [await register(client) for _ in range(5)]
    reply = await post_batch(
        client, admin_headers, [row(d, 100 * i) for i, d in enumerate(drivers)]
    )
    assert reply.status_code == 200
    assert reply.json() == {"accepted": 5, "ignored": 0, "rejected": []}
    for i, d in enumerate(drivers):
        assert (await get_driver(client, d))["lat"] == offset(HELSINKI, 100 * i, 0).lat


async def test_an_empty_batch_is_accepted_and_does_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    reply = await post_batch(client, admin_headers, [])
    assert reply.json() == {"accepted": 0, "ignored": 0, "rejected": []}


async def test_bad_rows_are_reported_by_index_and_never_sink_the_good_ones(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    good = [await register(client) for _ in range(3)]
    victim = await register(client)
    updates: list[Any] = [
        row(good[0], 10),
        {"driver_id": victim.driver_id, "lat": 91, "lng": 24.9},
        row("drv_0000000000000000"),
        row(good[1], 20),
        {"driver_id": victim.driver_id, "lat": "60.1", "lng": 24.9},
        "not even an object",
        row(victim, recorded_at=iso(now_ms() + 60_000)),
        {"driver_id": victim.driver_id, "lat": 60.1},
        row(victim, altitude_m=12),
        row(good[2], 30),
    ]
    reply = await post_batch(client, admin_headers, updates)
    assert reply.status_code == 200
    body = reply.json()
    assert (body["accepted"], body["ignored"]) == (3, 0)
    reasons = {r["index"]: r["reason"] for r in body["rejected"]}
    assert sorted(reasons) == [1, 2, 4, 5, 6, 7, 8]
    assert [r["index"] for r in body["rejected"]] == sorted(reasons), "reported in row order"
    assert reasons[1].startswith("lat")
    assert reasons[2] == "unknown driver"
    assert reasons[4].startswith("lat")
    assert reasons[6].startswith("recorded_at")
    assert reasons[7].startswith("lng")
    assert "altitude_m" in reasons[8]
    for n, d in enumerate(good):
        assert (await get_driver(client, d))["lat"] == offset(HELSINKI, 10 * (n + 1), 0).lat
    assert (await get_driver(client, victim))["lat"] is None


async def test_an_older_row_for_the_same_driver_is_ignored_and_counted_as_such(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await register(client)
    t = now_ms() - 5_000
    updates = [
        row(driver, 100, recorded_at=iso(t)),
        row(driver, 200, recorded_at=iso(t - 1_000)),
        row(driver, 300, recorded_at=iso(t)),
    ]
    reply = await post_batch(client, admin_headers, updates)
    assert reply.json() == {"accepted": 1, "ignored": 2, "rejected": []}
    assert (await get_driver(client, driver))["lat"] == offset(HELSINKI, 100, 0).lat


async def test_rows_for_one_driver_in_increasing_time_leave_it_at_the_last(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await register(client)
    t = now_ms() - 5_000
    updates = [row(driver, 100 * i, recorded_at=iso(t + i)) for i in range(10)]
    reply = await post_batch(client, admin_headers, updates)
    assert reply.json()["accepted"] == 10
    assert (await get_driver(client, driver))["lat"] == offset(HELSINKI, 900, 0).lat


async def test_rows_the_server_stamps_in_the_same_millisecond_apply_in_order(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    # One script call stamps every row of a batch with the same server time, as two quick
    # single pings may be: arrival order decides, and the later position wins.
    driver = await register(client)
    reply = await post_batch(client, admin_headers, [row(driver, 100 * i) for i in range(5)])
    assert reply.json() == {"accepted": 5, "ignored": 0, "rejected": []}
    assert (await get_driver(client, driver))["lat"] == offset(HELSINKI, 400, 0).lat


async def test_batch_rows_of_available_drivers_put_them_in_search(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    available, offline = await register(client), await register(client)
    await set_status(client, available, "available")
    await post_batch(client, admin_headers, [row(available), row(offline)])
    assert await nearby_ids(client, admin_headers, HELSINKI, 10) >= {available.driver_id}
    assert offline.driver_id not in await nearby_ids(client, admin_headers, HELSINKI, 10)


@pytest.mark.parametrize("settings", [{"max_batch_updates": 5}], indirect=True, ids=["max-5"])
async def test_a_batch_of_more_rows_than_allowed_is_refused_whole_and_changes_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    drivers = [await register(client) for _ in range(6)]
    reply = await post_batch(client, admin_headers, [row(d) for d in drivers])
    assert reply.status_code == 422
    assert reply.headers["content-type"] == PROBLEM_JSON
    assert [e["field"] for e in reply.json()["errors"]] == ["updates"]
    for d in drivers:
        assert (await get_driver(client, d))["lat"] is None
    reply = await post_batch(client, admin_headers, [row(d) for d in drivers[:5]])
    assert reply.json()["accepted"] == 5


async def test_a_driver_token_may_not_post_a_batch(
    client: httpx.AsyncClient,
) -> None:
    driver = await register(client)
    reply = await post_batch(client, driver.headers, [row(driver)])
    assert reply.status_code == 403
    assert reply.headers["content-type"] == PROBLEM_JSON
    assert (await get_driver(client, driver))["lat"] is None


async def test_a_batch_without_a_token_is_unauthorized(client: httpx.AsyncClient) -> None:
    driver = await register(client)
    reply = await post_batch(client, {}, [row(driver)])
    assert reply.status_code == 401
    assert (await get_driver(client, driver))["lat"] is None


@pytest.mark.parametrize(
    "body", [{}, {"updates": "all of them"}, {"updates": {"0": {}}}, [], {"updates": [], "x": 1}]
)
async def test_a_batch_body_that_is_not_a_list_of_updates_is_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str], body: Any
) -> None:
    reply = await client.post("/v1/drivers/locations", json=body, headers=admin_headers)
    assert reply.status_code == 422
    assert reply.headers["content-type"] == PROBLEM_JSON
