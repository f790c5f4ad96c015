"""Acting as drivers over the HTTP contract, and the brute-force answer nearby search must match."""

from __future__ import annotations

import asyncio
import math
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from dispatch.model import EARTH_RADIUS_M, Position, haversine_m

PROBLEM_JSON = "application/problem+json"
# Redis GEO keeps 52-bit geohashes (well under a metre of error) and fakeredis rounds a little
# differently: distances within this of a boundary may fall either side of it.
GEO_TOLERANCE_M = 1.0
HELSINKI = Position(60.1699, 24.9384)


@dataclass(frozen=True, slots=True)
class Driver:
    driver_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def path(self) -> str:
        return f"/v1/drivers/{self.driver_id}"


async def register(client: httpx.AsyncClient, name: str | None = None) -> Driver:
    reply = await client.post(
        "/v1/drivers", json={"name": name or f"driver-{secrets.token_hex(3)}"}
    )
    assert reply.status_code == 201, reply.text
    body = reply.json()
    return Driver(body["driver_id"], body["token"])


async def set_status(client: httpx.AsyncClient, driver: Driver, status: str) -> dict[str, Any]:
    reply = await client.put(
        f"{driver.path}/status", json={"status": status}, headers=driver.headers
    )
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def ping(
    client: httpx.AsyncClient, driver: Driver, at: Position, recorded_ms: int | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"lat": at.lat, "lng": at.lng}
    if recorded_ms is not None:
        body["recorded_at"] = iso(recorded_ms)
    return await client.put(f"{driver.path}/location", json=body, headers=driver.headers)


async def available_at(client: httpx.AsyncClient, at: Position) -> Driver:
    """A new driver, available, whose one ping put it at `at`."""
    driver = await register(client)
    await set_status(client, driver, "available")
    reply = await ping(client, driver, at)
    assert reply.json()["applied"] is True, reply.text
    return driver


async def get_driver(client: httpx.AsyncClient, driver: Driver) -> dict[str, Any]:
    reply = await client.get(driver.path, headers=driver.headers)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def nearby(
    client: httpx.AsyncClient,
    headers: Mapping[str, str],
    at: Position,
    radius_m: float = 5_000,
    limit: int = 10,
) -> list[dict[str, Any]]:
    params = {"lat": at.lat, "lng": at.lng, "radius_m": radius_m, "limit": limit}
    reply = await client.get("/v1/drivers/nearby", params=params, headers=headers)
    assert reply.status_code == 200, reply.text
    found: list[dict[str, Any]] = reply.json()
    return found


async def nearby_ids(
    client: httpx.AsyncClient,
    headers: Mapping[str, str],
    at: Position,
    radius_m: float = 5_000,
    limit: int = 50,
) -> set[str]:
    return {d["driver_id"] for d in await nearby(client, headers, at, radius_m, limit)}


def iso(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_ms() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1000)


def offset(origin: Position, north_m: float, east_m: float) -> Position:
    """The point `north_m` north and `east_m` east of `origin` (small offsets, flat enough)."""
    lat = origin.lat + math.degrees(north_m / EARTH_RADIUS_M)
    lng = origin.lng + math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(origin.lat))))
    return Position(lat, lng)


def scatter(rng: random.Random, origin: Position, half_side_m: float) -> Position:
    """A uniformly random point in the square of the given half side around `origin`."""
    return offset(
        origin, rng.uniform(-half_side_m, half_side_m), rng.uniform(-half_side_m, half_side_m)
    )


def assert_exact_nearest(
    found: list[dict[str, Any]],
    candidates: Mapping[str, Position],
    at: Position,
    radius_m: float,
    limit: int,
) -> None:
    """`found` is exactly the `limit` nearest of `candidates` within `radius_m`, nearest first.

    Only near-ties (within GEO_TOLERANCE_M) at the radius or at the k-th place may go either way;
    a missing nearer driver, an extra farther one, a wrong order or a wrong distance fails.
    """
    tol = GEO_TOLERANCE_M
    truth = {driver_id: haversine_m(at, p) for driver_id, p in candidates.items()}
    ids = [f["driver_id"] for f in found]
    assert len(ids) == len(set(ids)), f"a driver appears twice: {ids}"
    assert len(ids) <= limit
    reported = [f["distance_m"] for f in found]
    assert reported == sorted(reported), f"not nearest first: {reported}"
    for f in found:
        driver_id = f["driver_id"]
        assert driver_id in truth, f"{driver_id} is not an available, fresh driver"
        assert abs(f["distance_m"] - truth[driver_id]) <= tol, (f, truth[driver_id])
        assert truth[driver_id] <= radius_m + tol, f"{driver_id} is beyond the radius"
        assert haversine_m(Position(f["lat"], f["lng"]), candidates[driver_id]) <= tol
    returned = set(ids)
    left_out = {i: d for i, d in truth.items() if i not in returned and d <= radius_m - tol}
    if len(ids) < limit:
        assert not left_out, f"fewer than {limit} returned, but these were in range: {left_out}"
    else:
        farthest = max(truth[i] for i in ids)
        nearer = {i: d for i, d in left_out.items() if d < farthest - tol}
        assert not nearer, f"left out drivers nearer than the farthest returned: {nearer}"


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 15.0) -> None:
    """Wait until `check()` holds. The limit is only a backstop against hanging, not a claim."""
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, f"{check.__name__} never held"
        await asyncio.sleep(0.05)
