"""Seed available drivers through our own store, fast enough for a million.

A driver becomes searchable in three steps, as through the API: its record is created (offline),
it goes available, and its first location is applied. The first `store_sample` drivers take the
API's own calls one by one (`RedisSupply.create_driver`, `SupplyService.set_status`); the rest
get the same record fields (`status=available`, name, token hash, version) written by HSETs,
up to 1000 records of one driver shard (one slot) per script call: the record `set_status`
leaves before any position is known.
Every location, for every driver, goes through `SupplyService.update_locations` (the batch
endpoint's call: our Lua script, our GEO index) in batches of 1000.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from dispatch.model import DriverStatus, LocationUpdate, Position, UpdateOutcome
from dispatch.redis_supply import RedisSupply
from dispatch.service import SupplyPolicy, SupplyService
from ridehail.auth import hash_token
from ridehail.bench.city import LatLng
from ridehail.bench.measure import progress
from ridehail.keys import Keys

BATCH = 1000
IN_FLIGHT = 4
SEED_STALE_MS = 3_600_000


@dataclass
class SeedStats:
    store_records: int = 0
    store_records_s: float = 0.0
    bulk_records: int = 0
    bulk_records_s: float = 0.0
    locations: int = 0
    locations_s: float = 0.0

    def to_json(self) -> dict[str, float]:
        def rate(n: int, s: float) -> float:
            return round(n / s, 1) if s > 0 else 0.0

        return {
            "store_records": self.store_records,
            "store_records_per_s": rate(self.store_records, self.store_records_s),
            "bulk_records": self.bulk_records,
            "bulk_records_per_s": rate(self.bulk_records, self.bulk_records_s),
            "locations": self.locations,
            "locations_rows_per_s": rate(self.locations, self.locations_s),
        }


async def bounded(jobs: Sequence[Callable[[], Awaitable[None]]], in_flight: int) -> None:
    """Run every job, at most `in_flight` at once."""
    gate = asyncio.Semaphore(in_flight)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(one(j) for j in jobs))


class Seeder:
    def __init__(self, client: aioredis.Redis, keys: Keys, store_sample: int = 2000) -> None:
        self.client = client
        self.keys = keys
        self.store = RedisSupply(client, keys)
        self.supply = SupplyService(self.store, SupplyPolicy(stale_after_ms=SEED_STALE_MS))
        self._records = client.register_script(_RECORDS)
        self.store_sample = store_sample
        self.seeded = 0
        self.stats = SeedStats()

    async def add(self, ids: Sequence[str], points: Sequence[LatLng]) -> None:
        """Make `ids` available drivers at `points` (appended to what is already seeded)."""
        by_store = max(0, min(len(ids), self.store_sample - self.seeded))
        t0 = time.perf_counter()
        await bounded([self._via_store(i) for i in ids[:by_store]], 8)
        t1 = time.perf_counter()
        rest = ids[by_store:]
        # One script call writes records of one driver shard (one slot: a cluster needs that).
        by_shard: dict[str, list[str]] = {}
        for driver_id in rest:
            by_shard.setdefault(self.keys.driver_shard(driver_id), []).append(driver_id)
        chunks = [s[i : i + BATCH] for s in by_shard.values() for i in range(0, len(s), BATCH)]
        await bounded([self._in_bulk(c) for c in chunks], IN_FLIGHT)
        t2 = time.perf_counter()
        self.stats.store_records += by_store
        self.stats.store_records_s += t1 - t0
        self.stats.bulk_records += len(rest)
        self.stats.bulk_records_s += t2 - t1
        progress(f"  records: {by_store:,} via store calls, {len(rest):,} in bulk ({t2 - t0:.1f}s)")

        done = 0
        pairs = list(zip(ids, points, strict=True))

        async def locate(rows: Sequence[tuple[str, LatLng]]) -> None:
            nonlocal done
            updates = [LocationUpdate(i, Position(lat, lng)) for i, (lat, lng) in rows]
            outcomes = await self.supply.update_locations(updates)
            if any(o is not UpdateOutcome.APPLIED for o in outcomes):
                raise RuntimeError("a seeded location was not applied")
            done += len(rows)
            if done % 200_000 < len(rows):
                progress(f"  locations: {done:,}/{len(ids):,} applied")

        batches = [pairs[i : i + BATCH] for i in range(0, len(pairs), BATCH)]
        await bounded([functools.partial(locate, b) for b in batches], IN_FLIGHT)
        t3 = time.perf_counter()
        self.stats.locations += len(ids)
        self.stats.locations_s += t3 - t2
        self.seeded += len(ids)
        progress(f"  locations: {len(ids):,} applied in batches of {BATCH} ({t3 - t2:.1f}s)")

    def _via_store(self, driver_id: str) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            await self.store.create_driver(driver_id, f"bench {driver_id}", None, _tok(driver_id))
            await self.supply.set_status(driver_id, DriverStatus.AVAILABLE)

        return job

    def _in_bulk(self, ids: Sequence[str]) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            keys = [self.keys.driver(driver_id) for driver_id in ids]
            args: list[str] = []
            for driver_id in ids:
                args += [f"bench {driver_id}", _tok(driver_id)]
            await self._records(keys=keys, args=args)

        return job


# One HSET per record, 1000 records per call: what redis-py's pipeline of HSETs does, several
# times faster (its per-command Python work was most of the time of seeding a million).
_RECORDS = """
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'status', 'available', 'name', ARGV[2 * i - 1], 'tok', ARGV[2 * i],
    'ver', 0)
end
return #KEYS
"""


def _tok(driver_id: str) -> str:
    return hash_token(f"{driver_id}.bench")
