"""`ridehail bench cluster`: driver supply on a local Redis Cluster beside a single Redis.

Three backends (`ridehail.bench.backends`) hold the same drivers, same ids at the same places,
in one run: a single Redis with the default one-slot layout, the same Redis sharded by H3 cell
(the cluster's layout without the cluster: what the layout costs, apart from the client), and a
local Redis Cluster of 3 masters and 3 replicas, sharded, through the app's cluster client.

Straight on `RedisSupply`, no HTTP, each phase in `rounds` windows taken in turn over the three:
nearest search, batched updates (`apply_locations`) and single ones (`apply_location`, with a
token bucket that never refuses, as the API calls it). Searches run over the drivers at their
seeded places, put back (so fresh) just before; updates move drivers a few metres about them.
The three answer the same query points, compared; the cluster's keys and commands are counted
per master.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatch.model import Position, UpdateOutcome
from ratelimit.model import Limit
from ridehail.bench import check, profiling
from ridehail.bench.backends import (
    CELLS,
    CLUSTER,
    ONE_SLOT,
    Backend,
    Phase,
    Workload,
    close_backends,
    connect_backends,
    served,
)
from ridehail.bench.city import BruteForce, City
from ridehail.bench.cpu import CpuWatch, QuietWait
from ridehail.bench.measure import closed_loop, progress
from ridehail.bench.profiling import py_spy
from ridehail.bench.seed import IN_FLIGHT, bounded
from ridehail.bench.spread import spread
from ridehail.devcluster import Cluster

SEARCH, BATCH, SINGLE = "search", "ingest_batch", "ingest_single"
# A search window starts within this long of every driver's last ping (staleness is 30 s).
REFRESH_AFTER_S = 10.0
ROOMY = Limit("bench", capacity=1_000_000, refill=1_000_000, period_s=1.0)
# Where the client's CPU goes (py-spy's file names; first match wins).
CLIENT_CATEGORIES: profiling.Categories = [
    ("the bench's loop", ("ridehail/bench/",)),
    ("h3 (cells of points, cover)", ("dispatch/cells.py", "h3/")),
    ("our supply store", ("dispatch/", "ridehail/", "ratelimit/")),
    ("redis-py cluster routing", ("redis/asyncio/cluster.py", "redis/cluster.py", "redis/crc.py")),
    ("redis-py commands, scripts", ("redis/commands/",)),
    ("redis-py connection, parser", ("redis/", "hiredis")),
    ("asyncio, uvloop", ("asyncio/", "uvloop", "contextlib.py")),
]
Op = Callable[[int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    drivers: int = 100_000
    seconds: float = 5.0  # measured seconds per phase and backend, split over the rounds
    rounds: int = 2
    k: int = 10
    initial_radius_m: float = 100.0
    max_radius_m: float = 10_000.0
    stale_after_ms: int = 30_000
    search_in_flight: int = 8
    batch_rows: int = 1000
    batch_in_flight: int = 4
    single_in_flight: int = 16
    check_points: int = 200
    brute_points: int = 20
    cell_resolution: int = 6
    move_m: float = 30.0
    seed: int = 7
    profile: bool = True
    out: Path = Path("bench-results")


class ClusterRun:
    def __init__(self, cfg: ClusterConfig, backends: list[Backend], work: Workload) -> None:
        self.cfg = cfg
        self.backends = backends
        self.work = work
        self.window_s = cfg.seconds / cfg.rounds
        self.answers: dict[str, list[list[check.Hit]]] = {}

    async def nearest(self, b: Backend, at: tuple[float, float]) -> list[check.Hit]:
        cfg = self.cfg
        found = await b.supply.nearest(
            Position(*at),
            cfg.k,
            initial_radius_m=cfg.initial_radius_m,
            max_radius_m=cfg.max_radius_m,
            stale_after_ms=cfg.stale_after_ms,
        )
        return [(d.driver_id, d.distance_m) for d in found]

    async def seed(self, b: Backend) -> None:
        """Seed every driver at its place, then note the answers at the check points at once."""
        progress(f"{b.label}: seeding {len(self.work.ids):,} available drivers")
        b.home_at = time.monotonic()
        await b.seeder.add(self.work.ids, self.work.home)
        points = self.work.queries[: self.cfg.check_points]
        self.answers[b.key] = [await self.nearest(b, at) for at in points]

    async def put_home(self, b: Backend) -> None:
        """Every driver back at its seeded place, freshly seen, unless it is so already."""
        if not b.moved and time.monotonic() - b.home_at < REFRESH_AFTER_S:
            return
        t0 = time.monotonic()
        rows = self.work.rows

        async def job(start: int) -> None:
            await b.supply.apply_locations(
                self.work.at_home[start : start + rows], self.cfg.stale_after_ms
            )

        starts = range(0, len(self.work.ids), rows)
        await bounded([functools.partial(job, s) for s in starts], IN_FLIGHT)
        b.home_at, b.moved = t0, False
        progress(f"  {b.label}: drivers back at their places ({time.monotonic() - t0:.1f}s)")

    async def window(
        self, b: Backend, phase: Phase, op: Op, in_flight: int, seconds: float | None = None
    ) -> None:
        await asyncio.to_thread(QuietWait.wait)
        seconds = seconds or self.window_s
        progress(f"{phase.label} on {b.label}: {in_flight} in flight, {seconds:g}s")

        async def counted(i: int) -> None:
            phase.calls += 1
            await op(i)

        before = await served(b.nodes)
        with CpuWatch(b.pids) as cpu:
            samples = await closed_loop(counted, concurrency=in_flight, seconds=seconds)
        phase.add(samples, cpu.cores, before, await served(b.nodes))

    def search_op(self, b: Backend) -> Op:
        queries = self.work.queries

        async def op(i: int) -> None:
            await self.nearest(b, queries[i % len(queries)])

        return op

    def batch_op(self, b: Backend, phase: Phase) -> Op:
        b.moved = True

        async def op(i: int) -> None:
            rows = await b.supply.apply_locations(self.work.batch(i), self.cfg.stale_after_ms)
            phase.rows += len(rows)
            phase.applied += sum(o is UpdateOutcome.APPLIED for o, _, _ in rows)

        return op

    def single_op(self, b: Backend, phase: Phase) -> Op:
        b.moved = True

        async def op(i: int) -> None:
            update = self.work.single(i)
            _, rows = await b.supply.apply_location(update, self.cfg.stale_after_ms, ROOMY)
            phase.rows += 1
            phase.applied += rows[0][0] is UpdateOutcome.APPLIED

        return op

    async def search(self, b: Backend) -> None:
        await self.put_home(b)
        phase = b.phase(SEARCH, "nearest search")
        await self.window(b, phase, self.search_op(b), self.cfg.search_in_flight)

    async def ingest(self, b: Backend) -> None:
        batched = b.phase(BATCH, "batched updates", self.work.rows)
        await self.window(b, batched, self.batch_op(b, batched), self.cfg.batch_in_flight)
        single = b.phase(SINGLE, "single updates")
        await self.window(b, single, self.single_op(b, single), self.cfg.single_in_flight)

    async def profile(self, b: Backend, out: Path) -> dict[str, Any]:
        """Where this process's CPU goes in a search and a batched window (py-spy, not timed)."""
        found: dict[str, Any] = {}
        seconds = min(self.window_s, 2.0)
        await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
        for name in (SEARCH, BATCH):
            raw = out / f"profile-cluster-{b.key}-{name}.txt"
            await self.put_home(b)
            scratch = Phase(f"profiled {name}", self.work.rows if name == BATCH else 1)
            if name == SEARCH:
                op, in_flight = self.search_op(b), self.cfg.search_in_flight
            else:
                op, in_flight = self.batch_op(b, scratch), self.cfg.batch_in_flight
            # py-spy starts and stops in a blocking call: nothing else runs meanwhile
            with py_spy(os.getpid(), raw, "raw", subprocesses=False) as attached:
                if not attached:
                    progress("  py-spy is not installed or cannot attach: no profile")
                    return found
                await self.window(b, scratch, op, in_flight, seconds)
            found[name] = profiling.summarize(raw, categories=CLIENT_CATEGORIES)
            table = profiling.table(found[name])
            progress(f"  profile: {name} on {b.label} ({found[name]['samples']} samples)\n{table}")
        return found

    def agreement(self) -> dict[str, Any]:
        """Do the sharded layouts find exactly what the one slot finds, and that the truth?"""
        cfg, base = self.cfg, self.answers[ONE_SLOT]
        out: dict[str, Any] = {"points": len(base), "found_k": sum(len(a) == cfg.k for a in base)}
        for key in (CELLS, CLUSTER):
            theirs = self.answers[key]
            out[f"{key}_identical"] = sum(a == b for a, b in zip(base, theirs, strict=True))
            out[f"{key}_same_allowing_ties"] = sum(
                check.same_drivers(a, b) for a, b in zip(base, theirs, strict=True)
            )
        brute = BruteForce()
        brute.extend(self.work.ids, self.work.home)
        points = self.work.queries[: min(cfg.brute_points, len(base))]
        out["brute_checked"] = len(points)
        out["one_slot_same_as_brute"] = sum(
            check.same_drivers(base[i], brute.nearest(*at, cfg.k)) for i, at in enumerate(points)
        )
        identical = out["cells_identical"] == out["cluster_identical"] == len(base)
        out["ok"] = identical and out["one_slot_same_as_brute"] == len(points)
        progress(
            f"answers at {len(base)} points: cells identical to one slot {out['cells_identical']},"
            f" cluster {out['cluster_identical']}; one slot same as brute force"
            f" {out['one_slot_same_as_brute']}/{len(points)}"
        )
        return out


async def run_cluster(redis_url: str, cluster: Cluster, cfg: ClusterConfig) -> dict[str, Any]:
    work = Workload(cfg.drivers, cfg.batch_rows, cfg.move_m, cfg.seed)
    backends = await connect_backends(redis_url, cluster, cfg.cell_resolution)
    try:
        run = ClusterRun(cfg, backends, work)
        for b in backends:
            await run.seed(b)
        agreement = run.agreement()
        for n in range(cfg.rounds):
            progress(f"cluster: round {n + 1} of {cfg.rounds}")
            for b in backends:
                await run.search(b)
            for b in backends:
                await run.ingest(b)
        profiles = {}
        if cfg.profile:
            progress("cluster: profiling this process (the client) with py-spy")
            profiles = {b.key: await run.profile(b, cfg.out) for b in backends}
        progress("cluster: results")
        results: list[dict[str, Any]] = []
        for b in backends:
            progress(b.label)
            phases = {name: phase.summary() for name, phase in b.phases.items()}
            results.append({"key": b.key, "label": b.label, "phases": phases})
        progress("cluster: keys and commands per master")
        masters = await spread(backends[-1], cluster)
        seeding = {b.key: b.seeder.stats.to_json() for b in backends}
    finally:
        await close_backends(backends)
    by: dict[str, dict[str, Any]] = {r["key"]: r["phases"] for r in results}
    ratios = {
        f"{a}_vs_{b}": {p: round(by[a][p]["per_s"] / by[b][p]["per_s"], 3) for p in by[a]}
        for a, b in ((CELLS, ONE_SLOT), (CLUSTER, ONE_SLOT), (CLUSTER, CELLS))
    }
    progress(f"cluster ratios (ops/s): {ratios}")
    city = City()
    return {
        "config": {k: v for k, v in dataclasses.asdict(cfg).items() if k != "out"}
        | {"city": {"lat": city.lat, "lng": city.lng, "side_m": city.side_m}},
        "cluster": {"nodes": cluster.nodes_env, "masters": len(masters)},
        "seed": seeding,
        "check": agreement,
        "backends": results,
        "ratios": ratios,
        "spread": masters,
        "profiles": profiles,
    }
