"""Location writes straight from redis-py, no HTTP: the floors the API is compared against.

- raw pipelined GEOADD: `batch` GEOADDs (one driver each) per pipeline;
- raw multi-member GEOADD: one GEOADD of `batch` drivers, the cheapest way to move them;
- raw single GEOADD: one round trip per update;
- our supply service, batched and single: `SupplyService.update_locations` / `update_location`
  wired by `build_services` exactly as in the API (our Lua script: the record, the index,
  last-seen and whatever else the script does), which is the API minus the HTTP around it.
"""

from __future__ import annotations

import os
import random
from collections.abc import Awaitable, Callable, Sequence

import redis.asyncio as aioredis

from dispatch.model import LocationUpdate, Position
from ridehail.bench.city import City, LatLng
from ridehail.bench.cpu import CpuWatch
from ridehail.bench.measure import Samples, closed_loop
from ridehail.bootstrap import build_services
from ridehail.settings import Settings

RAW_GEO_KEY = "raw:geo"
# The bench registers every driver from one address and pings faster than a real fleet: it
# keeps the token buckets (their cost is part of what is measured) but makes them never refuse.
BENCH_LIMITS = {"limit_registrations": "1000000/1", "limit_location_updates": "1000000/1"}
PIPELINED = "raw pipelined GEOADD (redis-py)"
MULTI = "raw GEOADD of many members (redis-py)"
SERVICE_BATCH = "our service: update_locations"
RAW_SINGLE = "raw single GEOADD (redis-py)"
SERVICE_SINGLE = "our service: update_location"
BATCHED = (PIPELINED, MULTI, SERVICE_BATCH)
PHASES = (*BATCHED, RAW_SINGLE, SERVICE_SINGLE)

Op = Callable[[int], Awaitable[object]]


def _ops(client: aioredis.Redis, driver_ids: Sequence[str], batch: int) -> dict[str, Op]:
    # as the API wires it (same keys, same per-driver token bucket), with the bench's limits
    settings = Settings(
        limit_registrations=BENCH_LIMITS["limit_registrations"],
        limit_location_updates=BENCH_LIMITS["limit_location_updates"],
    )
    services = build_services(settings, client)
    supply, limit = services.supply, services.limits.location_updates
    points: list[LatLng] = City().random_points(random.Random(11), len(driver_ids))
    rows = list(zip(driver_ids, points, strict=True))
    batches = [
        [rows[(b * batch + j) % len(rows)] for j in range(batch)]
        for b in range(max(1, len(rows) // batch))
    ]
    updates = [[LocationUpdate(i, Position(*p)) for i, p in b] for b in batches]

    async def pipelined(n: int) -> None:
        pipe = client.pipeline(transaction=False)
        for driver_id, (lat, lng) in batches[n % len(batches)]:
            pipe.geoadd(RAW_GEO_KEY, (lng, lat, driver_id))
        await pipe.execute()

    async def multi(n: int) -> None:
        values: list[str | float] = []
        for driver_id, (lat, lng) in batches[n % len(batches)]:
            values += [lng, lat, driver_id]
        await client.geoadd(RAW_GEO_KEY, values)

    async def service_batch(n: int) -> None:
        await supply.update_locations(updates[n % len(updates)])

    async def raw_single(n: int) -> None:
        driver_id, (lat, lng) = rows[n % len(rows)]
        await client.geoadd(RAW_GEO_KEY, (lng, lat, driver_id))

    async def service_single(n: int) -> None:
        driver_id, (lat, lng) = rows[n % len(rows)]
        await supply.update_location(LocationUpdate(driver_id, Position(lat, lng)), limit)

    return {
        PIPELINED: pipelined,
        MULTI: multi,
        SERVICE_BATCH: service_batch,
        RAW_SINGLE: raw_single,
        SERVICE_SINGLE: service_single,
    }


async def measure(
    redis_url: str,
    label: str,
    driver_ids: Sequence[str],
    *,
    batch: int,
    seconds: float,
    concurrency: int,
) -> tuple[Samples, dict[str, float]]:
    """One window of phase `label` from this process; its samples and the CPU it took."""
    client = aioredis.Redis.from_url(redis_url, max_connections=concurrency + 8)
    try:
        op = _ops(client, driver_ids, batch)[label]
        redis_pid = int((await client.info("server"))["process_id"])
        with CpuWatch({"bench": os.getpid(), "redis": redis_pid}) as cpu:
            samples = await closed_loop(op, concurrency=concurrency, seconds=seconds, warmup_s=1)
    finally:
        await client.aclose()
    return samples, cpu.cores
