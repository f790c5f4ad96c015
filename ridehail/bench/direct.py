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
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from dispatch.model import LocationUpdate, Position
from ridehail.bench.city import City, LatLng
from ridehail.bench.measure import Rate, closed_loop, progress
from ridehail.bench.procs import CpuWatch
from ridehail.bootstrap import build_services
from ridehail.settings import Settings

RAW_GEO_KEY = "raw:geo"


def _phase(label: str, kind: str, rate: Rate, rows: int, cpu: dict[str, float]) -> dict[str, Any]:
    unit = "rows" if kind == "batch" else "updates"
    progress(f"  {label}: {rate.line('calls')}  = {rate.per_s * rows:,.0f} {unit}/s, cpu {cpu}")
    return {"label": label, "kind": kind, "rows_per_request": rows, **rate.to_json()} | {
        "rows_per_s": round(rate.per_s * rows, 1),
        "cpu_cores": cpu,
    }


async def run_direct(
    redis_url: str,
    driver_ids: Sequence[str],
    *,
    batch: int,
    seconds: float,
    connections: int,
    batch_in_flight: int,
) -> list[dict[str, Any]]:
    client = aioredis.Redis.from_url(redis_url, max_connections=connections + 8)
    supply = build_services(Settings(), client).supply  # as the API wires it, same keys
    rng = random.Random(11)
    points: list[LatLng] = City().random_points(rng, len(driver_ids))
    rows = list(zip(driver_ids, points, strict=True))
    batches = [
        [rows[(b * batch + j) % len(rows)] for j in range(batch)]
        for b in range(max(1, len(rows) // batch))
    ]
    updates = [[LocationUpdate(i, Position(*p)) for i, p in b] for b in batches]
    phases: list[dict[str, Any]] = []
    redis_pid = int((await client.info("server"))["process_id"])
    try:

        async def pipelined(n: int) -> None:
            pipe = client.pipeline(transaction=False)
            for driver_id, (lat, lng) in batches[n % len(batches)]:
                pipe.geoadd(RAW_GEO_KEY, (lng, lat, driver_id))
            await pipe.execute()

        async def multi_geoadd(n: int) -> None:
            values: list[str | float] = []
            for driver_id, (lat, lng) in batches[n % len(batches)]:
                values += [lng, lat, driver_id]
            await client.geoadd(RAW_GEO_KEY, values)

        async def single_geoadd(n: int) -> None:
            driver_id, (lat, lng) = rows[n % len(rows)]
            await client.geoadd(RAW_GEO_KEY, (lng, lat, driver_id))

        async def store_batch(n: int) -> None:
            await supply.update_locations(updates[n % len(updates)])

        async def store_single(n: int) -> None:
            driver_id, (lat, lng) = rows[n % len(rows)]
            await supply.update_location(LocationUpdate(driver_id, Position(lat, lng)))

        for label, kind, op, conc, per in (
            ("raw pipelined GEOADD (redis-py)", "batch", pipelined, batch_in_flight, batch),
            (
                "raw GEOADD of many members (redis-py)",
                "batch",
                multi_geoadd,
                batch_in_flight,
                batch,
            ),
            ("our service: update_locations", "batch", store_batch, batch_in_flight, batch),
            ("raw single GEOADD (redis-py)", "single", single_geoadd, connections, 1),
            ("our service: update_location", "single", store_single, connections, 1),
        ):
            with CpuWatch({"bench": os.getpid(), "redis": redis_pid}) as cpu:
                rate = await closed_loop(op, concurrency=conc, seconds=seconds, warmup_s=1.0)
            phases.append(_phase(label, kind, rate, per, cpu.cores))
    finally:
        await client.aclose()
    return phases
