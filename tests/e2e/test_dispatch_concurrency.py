"""Real concurrency: 200 trip requests at once for 50 drivers, split over two `ridehail serve`
processes on one real redis-server. No driver is ever offered two trips; every claim is a match.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
from collections import Counter
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from ridehail.keys import Keys
from tests.e2e.test_dispatch_crash import (
    ADMIN,
    ask_for_trip,
    driver_at,
    new_rider,
    record,
    settings_env,
)
from tests.fleet import HELSINKI, offset
from tests.integration.trip_helpers import (
    TripEvent,
    assert_legal_history,
    by_trip,
    trip_events,
    wait_until,
)
from tests.support import running_ridehail
from trips.model import TripState

pytestmark = [pytest.mark.e2e, pytest.mark.real_redis, pytest.mark.timeout(120)]

DRIVERS = 50
RIDERS = 200
GRID_STEP_M = 150  # drivers on a 10 x 5 grid: distinct points in a 1.5 km x 0.75 km centre


def concurrency_env(prefix: str) -> dict[str, str]:
    # Offers outlive the test, so every claim made is still held at the end and can be counted.
    return {**settings_env(prefix), "RIDEHAIL_OFFER_TTL_S": "600"}


def double_bookings(events: list[TripEvent]) -> list[str]:
    """Replay every trip event in stream order: an offer to a driver that holds a live offer or
    trip already is a double booking. A driver is freed by its trip's next event that leaves a
    driver-holding state (decline, expire, cancel, complete)."""
    holds: dict[str, str] = {}
    found: list[str] = []
    holding_states = {"offered", "accepted", "arrived", "in_progress"}
    for event in events:
        if event.action == "offer":
            if event.driver_id in holds:
                found.append(f"{event.driver_id}: {holds[event.driver_id]} and {event.trip_id}")
            holds[event.driver_id] = event.trip_id
        elif event.to_state not in holding_states and holds.get(event.driver_id) == event.trip_id:
            del holds[event.driver_id]
    return found


async def test_two_hundred_requests_at_once_over_two_processes_never_double_book(
    redis_url: str,
) -> None:
    prefix = "e" + secrets.token_hex(4)
    rng = random.Random(secrets.randbits(32))
    with contextlib.ExitStack() as stack:
        apis = [
            stack.enter_context(running_ridehail(redis_url, workers=1, **concurrency_env(prefix)))
            for _ in range(2)
        ]
        limits = httpx.Limits(max_connections=RIDERS)
        clients = [
            httpx.AsyncClient(base_url=api, timeout=httpx.Timeout(60, connect=10), limits=limits)
            for api in apis
        ]
        redis = aioredis.Redis.from_url(redis_url)
        try:
            spots = [
                offset(HELSINKI, GRID_STEP_M * (i // 10), GRID_STEP_M * (i % 10))
                for i in range(DRIVERS)
            ]
            drivers = await asyncio.gather(
                *(driver_at(clients[i % 2], at) for i, at in enumerate(spots))
            )
            riders = await asyncio.gather(*(new_rider(clients[i % 2]) for i in range(RIDERS)))
            pickups = [offset(HELSINKI, rng.uniform(0, 700), rng.uniform(0, 1400)) for _ in riders]

            replies = await asyncio.gather(
                *(
                    ask_for_trip(clients[i % 2], rider, pickup)
                    for i, (rider, pickup) in enumerate(zip(riders, pickups, strict=True))
                ),
                return_exceptions=True,
            )

            statuses = Counter(
                r.status_code if isinstance(r, httpx.Response) else type(r).__name__
                for r in replies
            )
            assert statuses == {201: RIDERS}, statuses
            trip_ids = [r.json()["trip_id"] for r in replies if isinstance(r, httpx.Response)]

            async def no_trip_waits_for_dispatch() -> bool:
                # A request that found the match lock busy is dispatched by a worker later.
                states = await trip_states(redis, prefix, trip_ids)
                return TripState.REQUESTED.value not in states.values()

            await wait_until(no_trip_waits_for_dispatch, within_s=60)
            states = await trip_states(redis, prefix, trip_ids)
            driver_records = await asyncio.gather(*(record(clients[0], d) for d in drivers))
            trips = {
                t: (await clients[1].get(f"/v1/trips/{t}", headers=ADMIN)).json() for t in trip_ids
            }
            events = await trip_events(redis, prefix)
        finally:
            await redis.aclose()
            for client in clients:
                await client.aclose()

    histories = by_trip(events)
    assert set(histories) == set(trip_ids)
    for trip_id, history in histories.items():
        assert_legal_history(trip_id, history)
    # Nobody accepts or declines here: each trip is offered (claimed) or found nobody.
    assert set(states.values()) <= {"offered", "no_driver"}, Counter(states.values())
    booked = double_bookings(events)
    assert booked == [], booked
    offered_drivers = [d for d in driver_records if d["status"] == "offered"]
    for driver in offered_drivers:
        held = trips[driver["trip_id"]]
        assert (held["state"], held["driver_id"]) == ("offered", driver["driver_id"]), held
    for driver in driver_records:
        assert driver["status"] in {"available", "offered"}, driver
    offered_trips = [t for t in trips.values() if t["state"] == "offered"]
    assert len({t["driver_id"] for t in offered_trips}) == len(offered_trips)
    counts = Counter(states.values())
    assert counts["offered"] == len(offered_drivers)  # matched == claimed
    assert counts["offered"] == min(DRIVERS, RIDERS)  # every driver was in reach of every pickup
    print(
        f"\nconcurrency: requests={RIDERS} (201: {statuses[201]}) over 2 processes, "
        f"drivers={DRIVERS}, offered={counts['offered']}, no_driver={counts['no_driver']}, "
        f"drivers offered={len(offered_drivers)}, events={len(events)}, "
        f"double-bookings={len(booked)}"
    )


async def trip_states(redis: aioredis.Redis, prefix: str, trip_ids: list[str]) -> dict[str, str]:
    keys = Keys(prefix)
    async with redis.pipeline(transaction=False) as pipe:
        for trip_id in trip_ids:
            pipe.hget(keys.trip(trip_id), "state")
        raw: list[Any] = await pipe.execute()
    return {t: s.decode() for t, s in zip(trip_ids, raw, strict=True)}
