"""What the ingest bench sends: drivers registered through the API, pre-built HTTP requests."""

from __future__ import annotations

import asyncio
import json
import random

import httpx

from ridehail.bench.city import City

Driver = tuple[str, str]  # id, token


def _request(method: str, path: str, token: str, body: str) -> str:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    )


def single_requests(drivers: list[Driver], per_driver: int = 2) -> list[str]:
    points = City().random_points(random.Random(5), len(drivers) * per_driver)
    out = []
    for n, (lat, lng) in enumerate(points):
        driver_id, token = drivers[n % len(drivers)]
        body = json.dumps({"lat": lat, "lng": lng}, separators=(",", ":"))
        out.append(_request("PUT", f"/v1/drivers/{driver_id}/location", token, body))
    return out


def batch_requests(drivers: list[Driver], rows: int, admin: str, count: int = 8) -> list[str]:
    points = City().random_points(random.Random(6), rows * count)
    out = []
    for b in range(count):
        updates = [
            {"driver_id": drivers[(b * rows + j) % len(drivers)][0], "lat": lat, "lng": lng}
            for j, (lat, lng) in enumerate(points[b * rows : (b + 1) * rows])
        ]
        body = json.dumps({"updates": updates}, separators=(",", ":"))
        out.append(_request("POST", "/v1/drivers/locations", admin, body))
    return out


async def register(base_url: str, n: int) -> list[Driver]:
    """n drivers registered and set available through the API itself."""
    gate = asyncio.Semaphore(4)  # httpx gets slower with more
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:

        async def one(i: int) -> Driver:
            async with gate:
                reg = (await http.post("/v1/drivers", json={"name": f"bench {i}"})).json()
                auth = {"Authorization": f"Bearer {reg['token']}"}
                path = f"/v1/drivers/{reg['driver_id']}/status"
                reply = await http.put(path, json={"status": "available"}, headers=auth)
                reply.raise_for_status()
                return reg["driver_id"], reg["token"]

        return await asyncio.gather(*(one(i) for i in range(n)))
