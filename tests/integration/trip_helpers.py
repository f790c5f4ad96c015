"""Acting as riders and drivers over the trip endpoints, and reading what the trips recorded.

Plain helper functions (no fixtures): the trip and dispatch tests build their own app when they
need settings of their own, over the `redis_client` backend, so they run on both backends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI

from dispatch.matching import Pause
from dispatch.model import DriverStatus, Position
from ridehail.app import create_app
from ridehail.bootstrap import Services
from ridehail.keys import Keys
from ridehail.settings import Settings
from tests.fleet import HELSINKI, Driver, offset
from tests.support import free_port
from trips.model import HOLDS_DRIVER, TRANSITIONS, Action, TripState

DROPOFF = offset(HELSINKI, 3_000, 2_000)
TRIP_ACTIONS = ("accept", "decline", "arrive", "start", "complete", "cancel")


@dataclass(frozen=True, slots=True)
class Rider:
    rider_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True, slots=True)
class Running:
    """An app with its lifespan (sweeper, trip workers) running, and a client talking to it."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def services(self) -> Services:
        wired: Services = self.app.state.services
        return wired


@contextlib.asynccontextmanager
async def running_app(
    settings: Settings, redis: aioredis.Redis, pause_before_claim: Pause | None = None
) -> AsyncIterator[Running]:
    app = create_app(settings, redis=redis, pause_before_claim=pause_before_claim)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ridehail") as client:
            yield Running(app, client)


async def register_rider(client: httpx.AsyncClient) -> Rider:
    reply = await client.post("/v1/riders", json={"name": f"rider-{secrets.token_hex(3)}"})
    assert reply.status_code == 201, reply.text
    body = reply.json()
    return Rider(body["rider_id"], body["token"])


def trip_body(pickup: Position, dropoff: Position = DROPOFF) -> dict[str, Any]:
    return {
        "pickup": {"lat": pickup.lat, "lng": pickup.lng},
        "dropoff": {"lat": dropoff.lat, "lng": dropoff.lng},
    }


def new_key() -> str:
    return f"idem-{secrets.token_hex(8)}"


async def post_trip(
    client: httpx.AsyncClient,
    headers: Mapping[str, str],
    pickup: Position = HELSINKI,
    dropoff: Position = DROPOFF,
    key: str | None = None,
) -> httpx.Response:
    return await client.post(
        "/v1/trips",
        json=trip_body(pickup, dropoff),
        headers={**headers, "Idempotency-Key": key or new_key()},
    )


async def request_trip(
    client: httpx.AsyncClient, rider: Rider, pickup: Position = HELSINKI
) -> dict[str, Any]:
    """A new trip for `rider` (201), as the request answered it."""
    reply = await post_trip(client, rider.headers, pickup)
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def act(
    client: httpx.AsyncClient, headers: Mapping[str, str], trip_id: str, action: str
) -> httpx.Response:
    return await client.post(f"/v1/trips/{trip_id}/{action}", headers=dict(headers))


async def acted(
    client: httpx.AsyncClient, headers: Mapping[str, str], trip_id: str, action: str
) -> dict[str, Any]:
    """The trip after `action`, which must succeed."""
    reply = await act(client, headers, trip_id, action)
    assert reply.status_code == 200, f"{action}: {reply.text}"
    body: dict[str, Any] = reply.json()
    return body


async def get_trip(
    client: httpx.AsyncClient, headers: Mapping[str, str], trip_id: str
) -> dict[str, Any]:
    reply = await client.get(f"/v1/trips/{trip_id}", headers=dict(headers))
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def wait_until(check: Callable[[], Awaitable[bool]], within_s: float = 10.0) -> None:
    """Poll until `check()` holds. The bound only stops a hang; it is not a claim about speed."""
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, f"{check.__name__} never held within {within_s} s"
        await asyncio.sleep(0.05)


async def wait_for_trip(
    client: httpx.AsyncClient,
    headers: Mapping[str, str],
    trip_id: str,
    done: Callable[[dict[str, Any]], bool],
    within_s: float = 10.0,
) -> dict[str, Any]:
    """Poll GET /v1/trips/{id} until `done(trip)`; the trip as it was then."""
    seen: dict[str, Any] = {}

    async def trip_moved_on() -> bool:
        seen.update(await get_trip(client, headers, trip_id))
        return done(seen)

    await wait_until(trip_moved_on, within_s)
    return seen


async def driver_record(client: httpx.AsyncClient, driver: Driver) -> dict[str, Any]:
    reply = await client.get(driver.path, headers=driver.headers)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


# -- the event streams -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TripEvent:
    entry_id: tuple[int, int]
    trip_id: str
    action: str
    from_state: str
    to_state: str
    version: int
    driver_id: str


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def trip_events(redis: aioredis.Redis, key_prefix: str) -> list[TripEvent]:
    """Every trip event of every shard stream, in stream-id order (one server clock)."""
    events: list[TripEvent] = []
    for stream in Keys(key_prefix).all_trip_events():
        entries: Any = await redis.xrange(stream)
        for entry_id, raw in entries:
            fields = {_text(k): _text(v) for k, v in raw.items()}
            ms, seq = _text(entry_id).split("-")
            events.append(
                TripEvent(
                    entry_id=(int(ms), int(seq)),
                    trip_id=fields["trip"],
                    action=fields["action"],
                    from_state=fields["from"],
                    to_state=fields["to"],
                    version=int(fields["version"]),
                    driver_id=fields["driver"],
                )
            )
    events.sort(key=lambda e: e.entry_id)
    return events


def by_trip(events: Iterable[TripEvent]) -> dict[str, list[TripEvent]]:
    grouped: dict[str, list[TripEvent]] = {}
    for event in events:
        grouped.setdefault(event.trip_id, []).append(event)
    return grouped


def assert_legal_history(trip_id: str, history: list[TripEvent]) -> None:
    """A trip's events: a request, then legal edges only, versions 1, 2, 3, … in order."""
    assert [e.version for e in history] == list(range(1, len(history) + 1)), (trip_id, history)
    first, *rest = history
    assert (first.action, first.from_state, first.to_state) == ("request", "", "requested")
    previous = first.to_state
    for event in rest:
        edge = (TripState(event.from_state), Action(event.action))
        assert event.from_state == previous, f"{trip_id}: a gap before {event}"
        assert TRANSITIONS.get(edge) == TripState(event.to_state), f"{trip_id}: illegal {event}"
        previous = event.to_state


# -- driver and trip records agree ------------------------------------------------------------
async def assert_records_agree(
    services: Services, trip_ids: Iterable[str], driver_ids: Iterable[str]
) -> None:
    """Every held driver points at the one live trip that holds it, and the other way round."""
    store = services.trips.trips
    holders: dict[str, str] = {}
    for trip_id in trip_ids:
        trip = await store.get(trip_id)
        assert trip is not None
        if trip.state in HOLDS_DRIVER:
            assert trip.driver_id is not None, trip
            assert trip.driver_id not in holders, (
                f"driver {trip.driver_id} holds {holders.get(trip.driver_id)} and {trip_id}"
            )
            holders[trip.driver_id] = trip_id
            found = await services.supply_store.get_driver(trip.driver_id)
            assert found is not None
            driver = found[0]
            want = DriverStatus.OFFERED if trip.state is TripState.OFFERED else DriverStatus.ON_TRIP
            assert (driver.status, driver.trip_id, driver.version) == (
                want,
                trip_id,
                trip.token,
            ), (driver, trip)
    for driver_id in driver_ids:
        found = await services.supply_store.get_driver(driver_id)
        assert found is not None
        driver = found[0]
        if driver.status in (DriverStatus.OFFERED, DriverStatus.ON_TRIP):
            assert holders.get(driver_id) == driver.trip_id, (driver, holders.get(driver_id))
        else:
            assert driver_id not in holders, (driver, holders[driver_id])
            assert driver.trip_id is None, driver


# -- streams over a real socket -----------------------------------------------------------------
@contextlib.asynccontextmanager
async def served_over_tcp(app: FastAPI) -> AsyncIterator[str]:
    """The app (its lifespan already running) behind uvicorn on a free port, in this event loop.

    httpx's ASGITransport buffers a whole response, so a stream that never ends needs a socket.
    """
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=free_port(),
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(), name="uvicorn-in-test")
    try:
        await wait_until(lambda: _started(server, serving))
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        await asyncio.wait({serving}, timeout=10)
        assert serving.done(), "uvicorn did not stop"


async def _started(server: uvicorn.Server, serving: asyncio.Task[None]) -> bool:
    assert not serving.done(), "uvicorn stopped at start"
    return bool(server.started)


async def sse_frames(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """(event, data) of each Server-Sent Events frame with a name; comments are skipped."""
    event: str | None = None
    data: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = json.loads(line.removeprefix("data: "))
        elif line == "" and event is not None:
            yield event, data
            event, data = None, {}
