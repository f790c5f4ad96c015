"""A trip from offer to the end: the driver's actions, cancelling, and what is refused."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.conftest import make_settings
from tests.fleet import HELSINKI, PROBLEM_JSON, Driver, available_at, nearby_ids, offset, ping
from tests.integration.trip_helpers import (
    DROPOFF,
    TRIP_ACTIONS,
    Rider,
    act,
    acted,
    driver_record,
    get_trip,
    post_trip,
    register_rider,
    request_trip,
    running_app,
)

pytestmark = pytest.mark.layouts


LEGAL_FROM = {
    "offered": {"accept", "decline", "cancel"},
    "accepted": {"arrive", "cancel"},
    "arrived": {"start", "cancel"},
    "in_progress": {"complete"},
}


async def offered_trip(client: httpx.AsyncClient) -> tuple[Rider, Driver, dict[str, Any]]:
    driver = await available_at(client, offset(HELSINKI, 120, 0))
    rider = await register_rider(client)
    trip = await request_trip(client, rider, HELSINKI)
    assert (trip["state"], trip["driver_id"]) == ("offered", driver.driver_id)
    return rider, driver, trip


async def assert_free_where_it_is(
    client: httpx.AsyncClient, driver: Driver, at: Any = None
) -> None:
    record = await driver_record(client, driver)
    assert (record["status"], record["trip_id"], record["offer"]) == ("available", None, None)
    where = at or offset(HELSINKI, 120, 0)
    assert driver.driver_id in await nearby_ids(client, driver.headers, where, radius_m=50)


async def test_a_trip_runs_accept_arrive_start_complete_with_growing_versions(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider, driver, trip = await offered_trip(client)
    versions = [trip["version"]]
    for action, state in [("accept", "accepted"), ("arrive", "arrived"), ("start", "in_progress")]:
        trip = await acted(client, driver.headers, trip["trip_id"], action)
        assert trip["state"] == state
        versions.append(trip["version"])
        record = await driver_record(client, driver)
        assert (record["status"], record["trip_id"]) == ("on_trip", trip["trip_id"])
    # The driver drives to the drop-off and is available again there, at once.
    assert (await ping(client, driver, DROPOFF)).json() == {"applied": True, "offer": None}
    assert driver.driver_id not in await nearby_ids(client, driver.headers, DROPOFF, 50)

    done = await acted(client, driver.headers, trip["trip_id"], "complete")

    versions.append(done["version"])
    assert done["state"] == "completed"
    assert versions == sorted(set(versions)), versions
    assert done["driver_id"] == driver.driver_id
    for headers in (rider.headers, driver.headers, admin_headers):
        assert await get_trip(client, headers, trip["trip_id"]) == done
    await assert_free_where_it_is(client, driver, DROPOFF)
    assert (await request_trip(client, rider, DROPOFF))["driver_id"] == driver.driver_id


@pytest.mark.parametrize("stage", ["offered", "accepted", "arrived"])
@pytest.mark.parametrize("by", ["rider", "driver", "admin"])
async def test_cancelling_a_trip_that_holds_a_driver_frees_the_driver_at_once(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stage: str, by: str
) -> None:
    rider, driver, trip = await offered_trip(client)
    for action in {"offered": [], "accepted": ["accept"], "arrived": ["accept", "arrive"]}[stage]:
        trip = await acted(client, driver.headers, trip["trip_id"], action)
    assert trip["state"] == stage
    headers = {"rider": rider.headers, "driver": driver.headers, "admin": admin_headers}[by]

    cancelled = await acted(client, headers, trip["trip_id"], "cancel")

    assert cancelled["state"] == "cancelled"
    assert cancelled["version"] == trip["version"] + 1
    await assert_free_where_it_is(client, driver)
    again = await act(client, driver.headers, trip["trip_id"], "cancel")
    assert again.status_code == 409, again.text


async def test_cancelling_a_requested_trip_while_dispatch_claims_a_driver_gives_it_back(
    redis_client: aioredis.Redis,
) -> None:
    paused, resume = asyncio.Event(), asyncio.Event()

    async def hold_dispatch() -> None:
        paused.set()
        await resume.wait()

    settings = make_settings()
    async with running_app(settings, redis_client, pause_before_claim=hold_dispatch) as ridehail:
        client = ridehail.client
        driver = await available_at(client, offset(HELSINKI, 120, 0))
        rider = await register_rider(client)
        requesting = asyncio.create_task(request_trip(client, rider, HELSINKI))
        await asyncio.wait_for(paused.wait(), timeout=5)
        assert (await driver_record(client, driver))["trip_id"] is None  # found, not claimed
        live = await post_trip(client, rider.headers, HELSINKI)  # learns the trip's id
        assert live.status_code == 409, live.text
        requested_id = live.json()["trip_id"]
        assert (await get_trip(client, rider.headers, requested_id))["state"] == "requested"

        cancelled = await acted(client, rider.headers, requested_id, "cancel")
        resume.set()
        answered = await asyncio.wait_for(requesting, timeout=10)

        assert cancelled["state"] == "cancelled"
        assert (answered["trip_id"], answered["state"]) == (requested_id, "cancelled")
        await assert_free_where_it_is(client, driver)


async def test_an_action_the_state_does_not_allow_is_409_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    rider, driver, trip = await offered_trip(client)
    for next_action in ["accept", "arrive", "start", "complete", None]:
        state = trip["state"]
        allowed = LEGAL_FROM.get(state, set())
        before = await driver_record(client, driver)
        for action in TRIP_ACTIONS:
            if action in allowed:
                continue
            reply = await act(client, driver.headers, trip["trip_id"], action)
            assert reply.status_code == 409, (state, action, reply.text)
            assert reply.headers["content-type"].startswith(PROBLEM_JSON)
            assert await get_trip(client, rider.headers, trip["trip_id"]) == trip
        if "cancel" not in allowed:
            reply = await act(client, rider.headers, trip["trip_id"], "cancel")
            assert reply.status_code == 409, (state, reply.text)
        after = await driver_record(client, driver)
        assert (after["status"], after["trip_id"]) == (before["status"], before["trip_id"])
        if next_action:
            trip = await acted(client, driver.headers, trip["trip_id"], next_action)
    assert trip["state"] == "completed"


async def test_nothing_can_be_done_to_a_trip_that_found_no_driver(
    client: httpx.AsyncClient,
) -> None:
    rider = await register_rider(client)
    trip = await request_trip(client, rider, HELSINKI)
    assert trip["state"] == "no_driver"
    reply = await act(client, rider.headers, trip["trip_id"], "cancel")
    assert reply.status_code == 409, reply.text
    assert await get_trip(client, rider.headers, trip["trip_id"]) == trip


async def test_a_rider_or_driver_not_party_to_the_trip_is_403_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    rider, driver, trip = await offered_trip(client)
    stranger = await register_rider(client)
    other_driver = await available_at(client, offset(HELSINKI, 0, 3_000))
    for headers in (stranger.headers, other_driver.headers):
        assert (
            await client.get(f"/v1/trips/{trip['trip_id']}", headers=headers)
        ).status_code == 403
        for action in TRIP_ACTIONS:
            reply = await act(client, headers, trip["trip_id"], action)
            assert reply.status_code == 403, (action, reply.text)
            assert reply.headers["content-type"].startswith(PROBLEM_JSON)
    # The rider takes no driver action, either.
    for action in ("accept", "decline", "arrive", "start", "complete"):
        assert (await act(client, rider.headers, trip["trip_id"], action)).status_code == 403
    assert await get_trip(client, rider.headers, trip["trip_id"]) == trip
    assert (await driver_record(client, driver))["trip_id"] == trip["trip_id"]
    assert (await driver_record(client, other_driver))["status"] == "available"


async def test_an_unknown_trip_is_404_for_every_route(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await register_rider(client)
    missing = "trp_00" + "0" * 16
    for headers in (rider.headers, admin_headers):
        assert (await client.get(f"/v1/trips/{missing}", headers=headers)).status_code == 404
        for action in TRIP_ACTIONS:
            reply = await act(client, headers, missing, action)
            assert reply.status_code == 404, (action, reply.text)
            assert reply.headers["content-type"].startswith(PROBLEM_JSON)


async def test_the_offered_driver_sees_its_offer_in_its_record_and_in_its_ping_reply(
    client: httpx.AsyncClient,
) -> None:
    _, driver, trip = await offered_trip(client)

    record = await driver_record(client, driver)
    ack = (await ping(client, driver, offset(HELSINKI, 110, 0))).json()

    for offer in (record["offer"], ack["offer"]):
        assert offer is not None
        assert offer["trip_id"] == trip["trip_id"]
        assert offer["pickup"] == trip["pickup"]
        assert offer["dropoff"] == trip["dropoff"]
        assert offer["fare"] == trip["fare"]
        assert offer["expires_at"].endswith("Z")
    assert record["trip_id"] == trip["trip_id"]
    await acted(client, driver.headers, trip["trip_id"], "accept")
    assert (await ping(client, driver, offset(HELSINKI, 100, 0))).json()["offer"] is None
    assert (await driver_record(client, driver))["offer"] is None


async def test_a_driver_holding_an_offer_or_a_trip_cannot_go_offline(
    client: httpx.AsyncClient,
) -> None:
    _, driver, trip = await offered_trip(client)
    status = f"{driver.path}/status"
    for action in ("accept", "arrive", "start"):
        for wanted in ("offline", "available"):
            reply = await client.put(status, json={"status": wanted}, headers=driver.headers)
            assert reply.status_code == 409, reply.text
        assert (await driver_record(client, driver))["trip_id"] == trip["trip_id"]
        trip = await acted(client, driver.headers, trip["trip_id"], action)
    await acted(client, driver.headers, trip["trip_id"], "complete")
    reply = await client.put(status, json={"status": "offline"}, headers=driver.headers)
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "offline"
