"""Redis memory per online driver: what N seeded, available drivers cost the Redis holding them.

Two views, taken after each size is seeded:

- **by key** (`MEMORY USAGE`): the mean of a sample of driver records (hashes), plus the whole
  GEO index and the last-seen sorted set (`SAMPLES 0`: every member counted), per driver;
- **by the allocator** (`INFO memory` `used_memory`): its growth since the empty database,
  divided by the drivers added. This includes the main dictionary's entries and its rehash
  tables, which `MEMORY USAGE` of single keys does not.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from ridehail.bench.check import command
from ridehail.keys import Keys

SAMPLE = 500


async def used_memory(client: aioredis.Redis) -> int:
    return int((await client.info("memory"))["used_memory"])


async def per_driver(
    client: aioredis.Redis,
    keys: Keys,
    ids: Sequence[str],
    baseline_used: int,
    seed: int = 7,
) -> dict[str, Any]:
    """Bytes per driver for the `ids` seeded so far (`baseline_used`: used_memory when empty)."""
    n = len(ids)
    sample = random.Random(seed).sample(list(ids), min(SAMPLE, n))
    records = [int(await command(client, "MEMORY", "USAGE", keys.driver(i), "SAMPLES", 0) or 0)
               for i in sample]  # fmt: skip
    record_mean = sum(records) / len(records)
    geo = int(await command(client, "MEMORY", "USAGE", keys.available_geo(), "SAMPLES", 0) or 0)
    seen = int(await command(client, "MEMORY", "USAGE", keys.last_seen(), "SAMPLES", 0) or 0)
    stream = int(await command(client, "MEMORY", "USAGE", keys.positions(), "SAMPLES", 0) or 0)
    used = await used_memory(client)
    by_key = record_mean + (geo + seen) / n
    return {
        "drivers": n,
        "record_sample": len(sample),
        "record_bytes_mean": round(record_mean, 1),
        "geo_bytes": geo,
        "seen_bytes": seen,
        "geo_bytes_per_driver": round(geo / n, 1),
        "seen_bytes_per_driver": round(seen / n, 1),
        "positions_stream_bytes": stream,  # capped (MAXLEN ~): not per driver
        "by_key_bytes_per_driver": round(by_key, 1),
        "used_memory": used,
        "used_memory_growth_per_driver": round((used - baseline_used) / n, 1),
    }
