"""An API process killed mid-offer leaves no driver stuck: another process's workers expire the
offer and dispatch the trip on, over one real redis-server."""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from dispatch.model import Position
from tests.fleet import HELSINKI, Driver, offset
from tests.integration.trip_helpers import (
    Rider,
    assert_legal_history,
    by_trip,
    trip_events,
    wait_until,
)
from tests.support import ADMIN_TOKEN, ridehail_process

pytestmark = [pytest.mark.e2e, pytest.mark.real_redis, pytest.mark.timeout(90)]

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DROPOFF = offset(HELSINKI, 3_000, 2_000)


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def settings_env(prefix: str) -> dict[str, str]:
    return {
        "RIDEHAIL_KEY_PREFIX": prefix,
        "RIDEHAIL_OFFER_TTL_S": "1",
        "RIDEHAIL_WORKER_INTERVAL_S": "0.2",
        "RIDEHAIL_REDIS_TIMEOUT_S": "5",  # a loaded machine is not an outage here
        "RIDEHAIL_LIMIT_REGISTRATIONS": "100000/1",
        "RIDEHAIL_ACCESS_LOG": "false",
    }


async def driver_at(api: httpx.AsyncClient, at: Position) -> Driver:
    reply = await api.post("/v1/drivers", json={"name": f"d-{secrets.token_hex(3)}"})
    assert reply.status_code == 201, reply.text
    driver = Driver(reply.json()["driver_id"], reply.json()["token"])
    reply = await api.put(
        f"{driver.path}/status", json={"status": "available"}, headers=driver.headers
    )
    assert reply.status_code == 200, reply.text
    reply = await api.put(
        f"{driver.path}/location", json={"lat": at.lat, "lng": at.lng}, headers=driver.headers
    )
    assert reply.json()["applied"] is True, reply.text
    return driver


async def new_rider(api: httpx.AsyncClient) -> Rider:
    reply = await api.post("/v1/riders", json={"name": f"r-{secrets.token_hex(3)}"})
    assert reply.status_code == 201, reply.text
    return Rider(reply.json()["rider_id"], reply.json()["token"])


async def ask_for_trip(api: httpx.AsyncClient, rider: Rider, pickup: Position) -> httpx.Response:
    body = {
        "pickup": {"lat": pickup.lat, "lng": pickup.lng},
        "dropoff": {"lat": DROPOFF.lat, "lng": DROPOFF.lng},
    }
    headers = {**rider.headers, "Idempotency-Key": secrets.token_hex(8)}
    return await api.post("/v1/trips", json=body, headers=headers)


async def record(api: httpx.AsyncClient, driver: Driver) -> dict[str, Any]:
    reply = await api.get(driver.path, headers=ADMIN)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def trip(api: httpx.AsyncClient, trip_id: str) -> dict[str, Any]:
    reply = await api.get(f"/v1/trips/{trip_id}", headers=ADMIN)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def test_an_offer_made_by_a_killed_process_is_expired_and_redispatched_by_another(
    redis_url: str,
) -> None:
    prefix = "e" + secrets.token_hex(4)
    with (
        ridehail_process(redis_url, **settings_env(prefix)) as (first, first_proc),
        ridehail_process(redis_url, **settings_env(prefix)) as (second, _),
    ):
        async with (
            httpx.AsyncClient(base_url=first, timeout=10) as api_1,
            httpx.AsyncClient(base_url=second, timeout=10) as api_2,
        ):
            near = await driver_at(api_2, offset(HELSINKI, 100, 0))
            far = await driver_at(api_2, offset(HELSINKI, 0, 1_500))
            rider = await new_rider(api_1)
            reply = await ask_for_trip(api_1, rider, HELSINKI)
            assert reply.status_code == 201, reply.text
            trip_id = reply.json()["trip_id"]
            assert reply.json()["driver_id"] == near.driver_id
            assert (await record(api_2, near))["trip_id"] == trip_id

            kill(first_proc)  # the process that made the offer, and its workers, are gone

            async def offered_to_the_next_driver() -> bool:
                return bool((await trip(api_2, trip_id))["driver_id"] == far.driver_id)

            await wait_until(offered_to_the_next_driver, within_s=20)
            assert (await record(api_2, near))["status"] == "available"
            assert (await record(api_2, far))["trip_id"] == trip_id

            # The second driver declines: nobody is left who has not had it.
            reply = await api_2.post(f"/v1/trips/{trip_id}/decline", headers=far.headers)
            assert reply.status_code == 200, reply.text
            assert reply.json()["state"] == "no_driver"
            for driver in (near, far):
                assert (await record(api_2, driver))["status"] == "available"

    redis = aioredis.Redis.from_url(redis_url)
    try:
        history = by_trip(await trip_events(redis, prefix))[trip_id]
    finally:
        await redis.aclose()
    assert_legal_history(trip_id, history)
    assert [(e.action, e.driver_id) for e in history] == [
        ("request", ""),
        ("offer", near.driver_id),
        ("expire", near.driver_id),
        ("offer", far.driver_id),
        ("decline", far.driver_id),
        ("give_up", ""),
    ]


async def test_a_process_killed_amid_a_burst_of_requests_leaves_every_driver_free_in_the_end(
    redis_url: str,
) -> None:
    prefix = "e" + secrets.token_hex(4)
    redis = aioredis.Redis.from_url(redis_url)
    with (
        ridehail_process(redis_url, **settings_env(prefix)) as (first, first_proc),
        ridehail_process(redis_url, **settings_env(prefix)) as (second, _),
    ):
        async with (
            httpx.AsyncClient(base_url=first, timeout=10) as api_1,
            httpx.AsyncClient(base_url=second, timeout=10) as api_2,
        ):
            drivers = [await driver_at(api_2, offset(HELSINKI, 150 * i, 0)) for i in range(4)]
            riders = [await new_rider(api_2) for _ in range(12)]
            burst = [
                asyncio.ensure_future(ask_for_trip(api_1, r, offset(HELSINKI, 0, 20 * i)))
                for i, r in enumerate(riders)
            ]
            await asyncio.wait(burst, return_when=asyncio.FIRST_COMPLETED)
            kill(first_proc)  # one request answered; the others half done or never started
            replies = await asyncio.gather(*burst, return_exceptions=True)
            answered = sum(isinstance(r, httpx.Response) and r.status_code == 201 for r in replies)

            async def everything_settled() -> bool:
                """Act as the drivers (decline what they hold) until every trip has ended."""
                for driver in drivers:
                    held = (await record(api_2, driver))["trip_id"]
                    if held:
                        await api_2.post(f"/v1/trips/{held}/decline", headers=driver.headers)
                events = await trip_events(redis, prefix)
                states = [(await trip(api_2, t))["state"] for t in by_trip(events)]
                return all(s in {"no_driver", "cancelled", "completed"} for s in states)

            await wait_until(everything_settled, within_s=40)

            for driver in drivers:
                now = await record(api_2, driver)
                assert (now["status"], now["trip_id"]) == ("available", None), now
    try:
        histories = by_trip(await trip_events(redis, prefix))
    finally:
        await redis.aclose()
    assert histories, "the burst made no trip at all before the kill"
    for trip_id, history in histories.items():
        assert_legal_history(trip_id, history)
        offered_to = [e.driver_id for e in history if e.action == "offer"]
        assert len(offered_to) == len(set(offered_to)), f"{trip_id} went back to a driver"
    print(
        f"\nkilled mid-burst: {len(riders)} requests, {answered} answered, "
        f"{len(histories)} trips made, all ended with every driver free"
    )
