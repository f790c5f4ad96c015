"""`ridehail bench search`: our nearest search beside a fixed 2 km GEOSEARCH and a brute force.

Sizes grow on one data set: the drivers seeded for 10k stay for 100k, and so on, all spread
uniformly over the city. At each size the same random query points go to every approach.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from dispatch.model import EARTH_RADIUS_M
from dispatch.service import SupplyPolicy
from ridehail.bench import check, memory, postgis
from ridehail.bench.city import BruteForce, City, LatLng, driver_id
from ridehail.bench.cpu import CpuWatch, QuietWait, mean_cores
from ridehail.bench.measure import Samples, closed_loop, progress, timed_serial
from ridehail.bench.seed import Seeder
from ridehail.keys import Keys

PREFIX = "rhbench"
PG_SPHERE_M = 6_371_008.8  # PostGIS geography's sphere (the IUGG mean radius)


@dataclass(frozen=True, slots=True)
class SearchConfig:
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)
    k: int = 10
    seconds: float = 5.0
    concurrency: int = 8
    baseline_radius_m: float = 2_000.0
    brute_max: int = 100_000
    check_points: int = 200
    seed: int = 7
    rounds: int = 2
    postgis: bool = True


@dataclass
class _Tally:
    """One approach's rounds at one size: samples, Redis's own time, CPU use."""

    command: str
    samples: Samples = field(default_factory=Samples)
    calls: int = 0
    usec: float = 0.0
    geosearches: int = 0
    cpu: list[dict[str, float]] = field(default_factory=list)

    async def run(
        self, client: aioredis.Redis, op: Any, cfg: SearchConfig, concurrency: int | None = None
    ) -> None:
        redis_pid = int((await client.info("server"))["process_id"])
        QuietWait.wait()
        await client.config_resetstat()
        conc = concurrency or cfg.concurrency
        seconds = cfg.seconds / cfg.rounds / (2 if concurrency else 1)
        with CpuWatch({"bench": os.getpid(), "redis": redis_pid}) as cpu:
            self.samples += await closed_loop(op, concurrency=conc, seconds=seconds)
        stats = await client.info("commandstats")
        main = stats.get(f"cmdstat_{self.command}", {})
        self.calls += int(main.get("calls", 0))
        self.usec += float(main.get("usec", 0))
        self.geosearches += int(stats.get("cmdstat_geosearch", {}).get("calls", 0))
        self.cpu.append(cpu.cores)

    def summary(self, name: str) -> dict[str, Any]:
        rate = self.samples.rate()
        cpu = mean_cores(self.cpu)
        progress(f"  {name}: {rate.line('queries')}, cpu {cpu}")
        calls = self.calls or 1
        server_us = self.usec / calls
        return rate.to_json() | {
            "server_us_per_query": round(server_us, 2),
            "geosearch_calls_per_query": round(self.geosearches / calls, 2),
            # what one core each could do, whatever a neighbour took from us during the run
            "per_client_cpu_s": round(rate.per_s / cpu["bench"], 1) if cpu.get("bench") else None,
            "redis_capacity_per_s": round(1e6 / server_us, 1) if server_us else None,
            "cpu_cores": cpu,
        }


async def run_search(redis_url: str, cfg: SearchConfig) -> dict[str, Any]:
    client = aioredis.Redis.from_url(redis_url, max_connections=cfg.concurrency + 8)
    why_not = postgis.unavailable() if cfg.postgis else "--no-postgis"
    try:
        run = SearchRun(client, cfg)
        if why_not:
            progress(f"PostGIS KNN baseline skipped: {why_not}")
            sizes = [await run.size(n) for n in sorted(cfg.sizes)]
        else:
            with postgis.private_postgres() as pg:
                progress(f"private PostgreSQL + PostGIS (pid {pg.pid}, unix socket only)")
                async with postgis.knn(pg.conninfo, cfg.concurrency) as knn:
                    run.pg = knn
                    sizes = [await run.size(n) for n in sorted(cfg.sizes)]
    finally:
        await client.aclose()
    policy, city = run.policy, run.city
    return {
        "config": {
            "sizes": list(cfg.sizes), "k": cfg.k, "seconds": cfg.seconds,
            "concurrency": cfg.concurrency, "baseline_radius_m": cfg.baseline_radius_m,
            "initial_radius_m": policy.initial_radius_m, "max_radius_m": policy.max_radius_m,
            "city": {"lat": city.lat, "lng": city.lng, "side_m": city.side_m},
        },
        "seed": run.seeder.stats.to_json(),
        "postgis": {"query": postgis.QUERY, "skipped": why_not},
        "sizes": sizes,
    }  # fmt: skip


class SearchRun:
    """One data set that grows size by size, and the three searches over it."""

    def __init__(self, client: aioredis.Redis, cfg: SearchConfig) -> None:
        self.client = client
        self.cfg = cfg
        self.keys = Keys(PREFIX)
        self.policy = SupplyPolicy()  # the API's defaults: 100 m first, doubling to 50 km
        self.city = City()
        self.seeder = Seeder(client, self.keys)
        self.brute = BruteForce()
        self.rng = random.Random(cfg.seed)
        self.ids: list[str] = []
        self.empty_used: int | None = None
        self.pg: postgis.Knn | None = None

    async def size(self, n: int) -> dict[str, Any]:
        cfg = self.cfg
        progress(f"search n={n:,}: seeding {n - self.seeder.seeded:,} more drivers")
        if self.empty_used is None:
            self.empty_used = await memory.used_memory(self.client)
        ids = [driver_id(i) for i in range(self.seeder.seeded, n)]
        points = self.city.random_points(self.rng, len(ids))
        await self.seeder.add(ids, points)
        self.brute.extend(ids, points)
        self.ids += ids
        mem = await memory.per_driver(self.client, self.keys, self.ids, self.empty_used)
        progress(
            f"  memory: {mem['by_key_bytes_per_driver']:,.0f} B/driver by MEMORY USAGE (record"
            f" {mem['record_bytes_mean']:,.0f} + GEO {mem['geo_bytes_per_driver']:,.0f} + seen"
            f" {mem['seen_bytes_per_driver']:,.0f}), used_memory growth"
            f" {mem['used_memory_growth_per_driver']:,.0f} B/driver"
        )
        queries = self.city.random_points(random.Random(cfg.seed * 1000 + n), 20_000)

        progress(f"search n={n:,}: checking answers at {cfg.check_points} points")
        agreement = await check.compare(
            self.client, self.seeder.store, self.policy, self.keys.available_geo(), self.brute,
            queries[: cfg.check_points], k=cfg.k, baseline_radius_m=cfg.baseline_radius_m,
            brute_points=min(cfg.check_points, max(5, 2_000_000 // n)),
        )  # fmt: skip
        progress(
            f"  same as 2 km GEOSEARCH {agreement['same_as_baseline']}/"
            f"{agreement['baseline_found_k']} (where it found {cfg.k}), same as brute force "
            f"{agreement['same_as_brute']}/{agreement['brute_checked']}"
        )
        row: dict[str, Any] = {"drivers": n, "check": agreement, "memory": mem}
        if self.pg is not None:
            t0 = time.perf_counter()
            await self.pg.load(ids, points)
            took = time.perf_counter() - t0
            progress(f"  PostGIS: {len(ids):,} rows COPYed, GiST index rebuilt ({took:.1f}s)")
            row["postgis_check"] = await self.check_postgis(queries[: cfg.check_points])
        row |= await self.measure(queries)
        if "postgis" in row:
            row["ratio_qps_vs_postgis"] = round(row["ours"]["per_s"] / row["postgis"]["per_s"], 2)
        if n <= cfg.brute_max:
            rate = timed_serial(
                lambda i: self.brute.nearest(*queries[i % len(queries)], cfg.k),
                seconds=min(cfg.seconds, 3.0),
            ).rate()
            progress(f"  brute force (Python, 1 core): {rate.line('queries')}")
            row["brute"] = rate.to_json()
        ours_r, base_r = row["ours"], row["baseline"]
        row["ratio_qps"] = round(ours_r["per_s"] / base_r["per_s"], 2)
        row["ratio_p99"] = round(ours_r["p99_ms"] / base_r["p99_ms"], 3)
        row["ratio_redis_capacity"] = round(
            base_r["server_us_per_query"] / max(ours_r["server_us_per_query"], 1e-9), 2
        )
        return row

    async def check_postgis(self, points: list[LatLng]) -> dict[str, Any]:
        assert self.pg is not None
        same = 0
        for at in points:
            mine = await check.ours(self.seeder.store, self.policy, at, self.cfg.k)
            theirs = await self.pg.nearest(at, self.cfg.k)
            # PostGIS measures on its mean-radius sphere, Redis GEO on its own (0.03% larger):
            # compare on Redis's sphere by rescaling, with the usual 1 m for near-ties
            theirs = [(i, m * EARTH_RADIUS_M / PG_SPHERE_M) for i, m in theirs]
            same += check.same_drivers(mine, theirs)
        progress(f"  same as PostGIS KNN {same}/{len(points)}")
        return {"same_as_postgis": same, "checked": len(points)}

    async def measure(self, queries: list[LatLng]) -> dict[str, Any]:
        cfg, geo = self.cfg, self.keys.available_geo()

        async def ours(i: int) -> None:
            await check.ours(self.seeder.store, self.policy, queries[i % len(queries)], cfg.k)

        async def baseline(i: int) -> None:
            at = queries[i % len(queries)]
            await check.command(
                self.client, "GEOSEARCH", geo, "FROMLONLAT", at[1], at[0],
                "BYRADIUS", cfg.baseline_radius_m, "m", "ASC", "COUNT", cfg.k,
            )  # fmt: skip

        # alternate the two, so a noisy neighbour on a shared machine hits both alike
        pg = self.pg

        async def knn(i: int) -> None:
            assert pg is not None
            await pg.nearest(queries[i % len(queries)], cfg.k, conn=i)  # one connection a worker

        mine, theirs, alone = _Tally("evalsha"), _Tally("geosearch"), _Tally("evalsha")
        gis = _Tally("none")
        for _ in range(cfg.rounds):
            await mine.run(self.client, ours, cfg)
            await theirs.run(self.client, baseline, cfg)
            if pg is not None:
                await gis.run(self.client, knn, cfg)
            await alone.run(self.client, ours, cfg, concurrency=1)  # latency without a queue
        out = {
            "ours": mine.summary("ours (nearest.lua)"),
            "baseline": theirs.summary(f"{cfg.baseline_radius_m / 1000:g} km GEOSEARCH"),
            "ours_one_in_flight": alone.summary("ours, 1 in flight"),
        }
        if pg is not None:
            out["postgis"] = gis.summary("PostGIS KNN (geography <->)")
        return out
