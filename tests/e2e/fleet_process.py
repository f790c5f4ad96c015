"""One client process of the concurrent-drivers e2e test: many drivers, each pinging in order.

    python -m tests.e2e.fleet_process API DRIVERS UPDATES SEED

Registers DRIVERS drivers and makes them available, prints `ready`, waits for a line on stdin
(so every process starts pinging at once), then runs all its drivers concurrently: each sends
UPDATES pings, one after another, with increasing recorded_at. Prints one JSON line: for each
driver its id and the last position it sent.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys

import httpx

from tests.fleet import HELSINKI, Driver, now_ms, ping, register, scatter, set_status

CITY_HALF_SIDE_M = 8_000


async def drive(client: httpx.AsyncClient, driver: Driver, updates: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    start = now_ms() - 10_000
    last = None
    for n in range(updates):
        at = scatter(rng, HELSINKI, CITY_HALF_SIDE_M)
        reply = await ping(client, driver, at, recorded_ms=start + 1_000 * n)
        assert reply.status_code == 200, reply.text
        assert reply.json()["applied"] is True, reply.text
        last = [at.lat, at.lng]
        await asyncio.sleep(0)
    assert last is not None
    return last


async def main(api: str, drivers: int, updates: int, seed: int) -> None:
    # Four processes of 12 stay under the server's Redis pool (64); see test_connection_pool.
    limits = httpx.Limits(max_connections=12)
    timeout = httpx.Timeout(30.0, connect=10.0)
    async with httpx.AsyncClient(base_url=api, limits=limits, timeout=timeout) as client:
        fleet = await asyncio.gather(*(register(client) for _ in range(drivers)))
        await asyncio.gather(*(set_status(client, d, "available") for d in fleet))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        lasts = await asyncio.gather(
            *(drive(client, d, updates, seed * 100_003 + i) for i, d in enumerate(fleet))
        )
    print(json.dumps({d.driver_id: last for d, last in zip(fleet, lasts, strict=True)}))


if __name__ == "__main__":
    api, drivers, updates, seed = sys.argv[1], *map(int, sys.argv[2:5])
    asyncio.run(main(api, drivers, updates, seed))
