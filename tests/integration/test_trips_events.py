"""Every trip transition is an event: in its shard's Redis Stream, in order, and live over SSE."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from ridehail.keys import Keys, shard_of_trip
from tests.conftest import make_settings
from tests.fleet import HELSINKI, available_at, offset
from tests.integration.trip_helpers import (
    Rider,
    acted,
    assert_legal_history,
    by_trip,
    get_trip,
    post_trip,
    register_rider,
    request_trip,
    running_app,
    served_over_tcp,
    sse_frames,
    trip_events,
)
from tests.support import ADMIN_TOKEN

pytestmark = pytest.mark.layouts

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_each_trips_events_are_in_its_shard_stream_in_order_with_versions_1_2_3(
    redis_client: aioredis.Redis,
) -> None:
    settings = make_settings()
    async with running_app(settings, redis_client) as ridehail:
        client = ridehail.client
        near = await available_at(client, offset(HELSINKI, 100, 0))
        far = await available_at(client, offset(HELSINKI, 0, 900))
        riders = [await register_rider(client) for _ in range(3)]
        # A trip that is completed, one cancelled on the way, one declined by everybody.
        done = await request_trip(client, riders[0], HELSINKI)
        for action in ("accept", "arrive", "start", "complete"):
            done = await acted(client, near.headers, done["trip_id"], action)
        cancelled = await request_trip(client, riders[1], HELSINKI)
        await acted(client, near.headers, cancelled["trip_id"], "accept")
        cancelled = await acted(client, riders[1].headers, cancelled["trip_id"], "cancel")
        declined = await request_trip(client, riders[2], HELSINKI)
        declined = await acted(client, near.headers, declined["trip_id"], "decline")
        declined = await acted(client, far.headers, declined["trip_id"], "decline")
        trips = {
            t["trip_id"]: (rider, t)
            for rider, t in zip(riders, [done, cancelled, declined], strict=True)
        }

        events = await trip_events(redis_client, settings.key_prefix)

        histories = by_trip(events)
        assert set(histories) == set(trips)
        for trip_id, history in histories.items():
            assert_legal_history(trip_id, history)
            rider, last = trips[trip_id]
            now = await get_trip(client, rider.headers, trip_id)
            assert (history[-1].to_state, history[-1].version) == (now["state"], now["version"])
            assert now == last
            stream = Keys(settings.key_prefix).trip_events(shard_of_trip(trip_id))
            assert await redis_client.xlen(stream) >= len(history)
        assert [(e.action, e.driver_id) for e in histories[declined["trip_id"]]] == [
            ("request", ""),
            ("offer", near.driver_id),
            ("decline", near.driver_id),
            ("offer", far.driver_id),
            ("decline", far.driver_id),
            ("give_up", ""),
        ]
        assert [e.action for e in histories[done["trip_id"]]] == [
            "request",
            "offer",
            "accept",
            "arrive",
            "start",
            "complete",
        ]


async def test_only_the_admin_may_follow_the_event_stream(redis_client: aioredis.Redis) -> None:
    async with running_app(make_settings(), redis_client) as ridehail:
        client = ridehail.client
        rider = await register_rider(client)
        driver = await available_at(client, HELSINKI)
        for headers in (rider.headers, driver.headers):
            reply = await client.get("/v1/events", headers=headers)
            assert reply.status_code == 403, reply.text
        token = rider.token
        reply = await client.get("/v1/events", params={"access_token": token})
        assert reply.status_code == 403, reply.text
        assert (await client.get("/v1/events")).status_code == 401


async def _until_first_trip_frame(response: httpx.Response, frames: list[dict[str, str]]) -> None:
    async for kind, data in sse_frames(response):
        if kind == "trip":
            frames.append(data)
            return


async def test_the_admin_event_stream_delivers_trip_events_as_they_happen(
    redis_client: aioredis.Redis,
) -> None:
    settings = make_settings(limit_registrations="1000/1")
    async with (
        running_app(settings, redis_client) as ridehail,
        served_over_tcp(ridehail.app) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream("GET", "/v1/events", headers=ADMIN) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        await available_at(ridehail.client, HELSINKI)
        frames: list[dict[str, str]] = []
        reading = asyncio.create_task(_until_first_trip_frame(response, frames))
        requested: dict[str, Rider] = {}
        # Keep trips coming until one shows: the stream starts at "now", so how soon the first
        # one is read is no part of the claim.
        while not reading.done() and len(requested) < 50:
            rider = await register_rider(ridehail.client)
            requested[(await request_trip(ridehail.client, rider, HELSINKI))["trip_id"]] = rider
            await asyncio.wait({reading}, timeout=0.2)
        await asyncio.wait_for(reading, timeout=10)

    [frame] = frames
    assert frame["trip"] in requested
    assert frame["action"] in {"request", "offer", "give_up"}
    history = by_trip(await trip_events(redis_client, settings.key_prefix))[frame["trip"]]
    recorded = history[int(frame["version"]) - 1]
    assert (recorded.action, recorded.to_state) == (frame["action"], frame["to"])
    assert frame["rider"] == requested[frame["trip"]].rider_id


async def test_the_admin_event_stream_misses_no_trip_event_while_connected(
    redis_url: str,
) -> None:
    client = aioredis.Redis.from_url(redis_url, socket_timeout=5)
    await client.flushdb()
    settings = make_settings(limit_registrations="1000/1", worker_interval_s=3600)
    missing: list[set[str]] = []
    try:
        async with (
            running_app(settings, client) as ridehail,
            served_over_tcp(ridehail.app) as base,
            httpx.AsyncClient(base_url=base, timeout=10) as http,
        ):
            riders = [await register_rider(ridehail.client) for _ in range(32)]
            for burst in range(2):
                missing.append(
                    await _burst_seen_live(
                        http, ridehail.client, client, settings.key_prefix, riders[burst::2]
                    )
                )
    finally:
        await client.aclose()
    assert missing == [set()] * 2, [len(m) for m in missing]


async def _burst_seen_live(
    http: httpx.AsyncClient,
    api: httpx.AsyncClient,
    redis: aioredis.Redis,
    key_prefix: str,
    riders: list[Rider],
) -> set[str]:
    """Trip requests from `riders` at once while a fresh SSE client listens: what it missed."""
    before = {e.entry_id for e in await trip_events(redis, key_prefix)}
    seen: set[str] = set()

    async def read(response: httpx.Response) -> None:
        async for kind, data in sse_frames(response):
            if kind == "trip":
                seen.add(f"{data['trip']}/{data['version']}")

    async with http.stream("GET", "/v1/events", headers=ADMIN) as response:
        reading = asyncio.create_task(read(response))
        replies: list[Any] = await asyncio.gather(
            *(post_trip(api, r.headers, offset(HELSINKI, i, 0)) for i, r in enumerate(riders))
        )
        assert all(r.status_code == 201 for r in replies)
        await asyncio.sleep(0.75)  # three times the stream's block: whatever comes has come
        reading.cancel()
    written = {
        f"{e.trip_id}/{e.version}"
        for e in await trip_events(redis, key_prefix)
        if e.entry_id not in before
    }
    return written - seen


async def test_the_admin_event_stream_delivers_positions_of_every_driver_shard(
    redis_client: aioredis.Redis,
) -> None:
    settings = make_settings(limit_registrations="1000/1")
    async with (
        running_app(settings, redis_client) as ridehail,
        served_over_tcp(ridehail.app) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream("GET", "/v1/events?backlog=0", headers=ADMIN) as response,
    ):
        assert response.status_code == 200
        drivers = [await available_at(ridehail.client, HELSINKI) for _ in range(24)]
        wanted = {d.driver_id for d in drivers}
        seen: set[str] = set()

        async def read_positions() -> None:
            async for kind, data in sse_frames(response):
                if kind == "position":
                    seen.add(data["d"])
                    if wanted <= seen:
                        return

        reading = asyncio.create_task(read_positions())
        while not reading.done():  # ping again until every driver has shown up
            for driver in drivers:
                reply = await ridehail.client.put(
                    f"{driver.path}/location",
                    json={"lat": HELSINKI.lat, "lng": HELSINKI.lng},
                    headers=driver.headers,
                )
                assert reply.status_code == 200
            await asyncio.wait({reading}, timeout=0.3)
        await asyncio.wait_for(reading, timeout=10)
    assert wanted <= seen
    # Sharded, those drivers' positions came from many of the 16 position streams.
    sharded = Keys(settings.key_prefix, cell_resolution=6)
    assert len({sharded.driver_shard(d) for d in wanted}) >= 6
