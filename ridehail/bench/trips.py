"""`ridehail bench trips`: request-to-offer latency at a fixed rate, with pricing healthy, slow
and down (breaker open); the most trip requests per second; then a double-booking scan.

One `ridehail serve` and one `ridehail pricing`, on a private Redis seeded with available
drivers (their last-seen is fresh for the run: the server's stale-after is an hour). Every
request is a new rider's first (a rider with a live trip gets 409), so riders are written up
front; every offered trip keeps its driver (offers live an hour), so drivers thin out by the
number of trips made. Phases alternate in rounds; the load comes from `ridehail.bench.tripgen`.
"""

from __future__ import annotations

import contextlib
import random
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import redis
import redis.asyncio as aioredis

from ridehail.bench import bookings, profiling, tripload
from ridehail.bench.city import City, driver_id
from ridehail.bench.cpu import CpuWatch, QuietWait, mean_cores
from ridehail.bench.measure import Rate, percentile, progress, run_async
from ridehail.bench.procs import free_port, http_server
from ridehail.bench.profiling import py_spy
from ridehail.bench.seed import Seeder
from ridehail.keys import Keys

FAULTS = {
    "healthy": {},
    "slow": {"latency_ms": 40, "jitter_ms": 20},
    "down": {"down": True},
}
MAX = "max (closed loop, healthy)"
WARMUP = 20
PROFILE_S = 6.0


@dataclass(frozen=True, slots=True)
class TripsConfig:
    drivers: int = 10_000
    rate: float = 200.0
    seconds: float = 10.0  # per pricing condition, split over the rounds
    rounds: int = 2
    concurrency: int = 16
    seed: int = 11
    workers: int = 1  # `ridehail serve --workers`
    profile: bool = True  # py-spy on the API during a healthy open-loop window, at the end
    out: Path = Path("bench-results")


class _Phase:
    def __init__(self, label: str) -> None:
        self.label = label
        self.offered: list[float] = []
        self.all: list[float] = []
        self.elapsed = 0.0
        self.counts: dict[str, Counter[str]] = {"statuses": Counter(), "states": Counter()}
        self.counts["fare_sources"] = Counter()
        self.cpu: list[dict[str, float]] = []
        self.commands: Counter[str] = Counter()
        self.errors = 0

    def add(self, result: dict[str, Any], cpu: CpuWatch, commands: Counter[str]) -> None:
        self.offered += result["offered_latencies_s"]
        self.all += result["all_latencies_s"]
        self.elapsed += result["elapsed_s"]
        for name, counter in self.counts.items():
            counter.update(result[name])
        cpu.add("loadgen", result["loadgen_cpu_s"])
        self.cpu.append(cpu.cores)
        self.commands += commands
        self.errors += result["errors"]

    def summary(self, concurrency: int) -> dict[str, Any]:
        ordered = sorted(self.offered)
        rate = Rate.of(self.offered, self.elapsed, concurrency)
        sent = len(self.all)
        per_request = {k: round(v / max(sent, 1), 2) for k, v in self.commands.most_common()}
        out = {
            "label": self.label,
            **rate.to_json(),
            "requests": sent,
            "requests_per_s": round(sent / self.elapsed, 1) if self.elapsed else 0.0,
            "p95_ms": round(percentile(ordered, 0.95) * 1000, 4),
            "offered_share": round(len(ordered) / max(sent, 1), 4),
            **{name: dict(counter) for name, counter in self.counts.items()},
            "errors": self.errors,
            "redis_calls_per_request": per_request,
            "cpu_cores": mean_cores(self.cpu),
        }
        progress(
            f"  {self.label}: {out['requests_per_s']:,.0f} req/s,"
            f" offered {out['offered_share']:.1%}"
            f", p50 {rate.p50_ms:.2f} p95 {out['p95_ms']:.2f} p99 {rate.p99_ms:.2f} ms;"
            f" sources {out['fare_sources']}; statuses {out['statuses']}; cpu {out['cpu_cores']}"
        )
        return out


def _commandstats(client: redis.Redis) -> Counter[str]:
    stats = client.info("commandstats")
    return Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()})


async def _seed(redis_url: str, n: int, keys: Keys, seed: int) -> dict[str, Any]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        seeder = Seeder(client, keys)
        points = City().random_points(random.Random(seed), n)
        t0 = time.perf_counter()
        await seeder.add([driver_id(i) for i in range(n)], points)
        return {"seconds": round(time.perf_counter() - t0, 1), **seeder.stats.to_json()}
    finally:
        await client.aclose()


def _profile(api_pid: int, port: int, requests: list[str], cfg: TripsConfig) -> Any:
    """Where the API's CPU goes at the target rate with pricing healthy (py-spy, raw)."""
    raw = cfg.out / "profile-trips.txt"
    cfg.out.mkdir(parents=True, exist_ok=True)
    progress(f"trips: profiling the API, pricing healthy, {cfg.rate:g}/s for {PROFILE_S:g}s")
    with py_spy(api_pid, raw, "raw") as attached:
        if not attached:
            progress("  py-spy is not installed or cannot attach: no profile")
            return None
        tripload.gen(port, "open", requests, rate=cfg.rate, seconds=PROFILE_S)
    summary = profiling.summarize(raw)
    progress(f"  profile of trips ({summary['samples']} samples):\n{profiling.table(summary)}")
    return summary


def run_trips(redis_url: str, cfg: TripsConfig) -> dict[str, Any]:
    keys = Keys()
    progress(f"trips: seeding {cfg.drivers:,} available drivers")
    seeded = run_async(_seed(redis_url, cfg.drivers, keys, cfg.seed))
    window = cfg.seconds / cfg.rounds
    per_window = int(cfg.rate * window)
    opened = cfg.rounds * len(FAULTS) * (per_window + WARMUP)
    closed_n = max(500, min(50_000, int(0.8 * (cfg.drivers - opened)) // cfg.rounds))
    profiled = int(cfg.rate * PROFILE_S) if cfg.profile else 0
    closed_n = max(1, min(closed_n, (cfg.drivers - opened - profiled) // cfg.rounds))
    total = opened + closed_n * cfg.rounds + profiled
    progress(f"trips: writing {total:,} riders")
    tokens = tripload.riders(redis_url, total, keys)
    pending = iter(tripload.requests(tokens, random.Random(cfg.seed + 1)))

    def take(n: int) -> list[str]:
        return [next(pending) for _ in range(n)]

    sync = redis.Redis.from_url(redis_url)
    redis_pid = int(sync.info("server")["process_id"])
    phases = {label: _Phase(label) for label in [*FAULTS, MAX]}
    with contextlib.ExitStack() as stack:
        pport, port = free_port(), free_port()
        exe = str(Path(sys.executable).with_name("ridehail"))
        pricing = stack.enter_context(
            http_server("ridehail pricing", [exe, "pricing", "--port", str(pport)], pport, {})
        )
        env = {"REDIS_URL": redis_url, "PRICING_URL": pricing.base_url}
        env |= {"RIDEHAIL_ACCESS_LOG": "false", "RIDEHAIL_LOG_LEVEL": "warning"}
        env |= {"RIDEHAIL_STALE_AFTER_S": "3600", "RIDEHAIL_OFFER_TTL_S": "3600"}
        env |= {"RIDEHAIL_PRICING_BREAKER_RESET_S": "1", "RIDEHAIL_PRICING_QUOTA": "1000000/1"}
        for name in ("trip_requests", "registrations", "location_updates"):
            env[f"RIDEHAIL_LIMIT_{name.upper()}"] = "1000000/1"
        argv = [exe, "serve", "--port", str(port), "--workers", str(cfg.workers)]
        api = stack.enter_context(http_server("ridehail serve", argv, port, env))

        def measured(phase: _Phase, mode: str, requests: list[str], **spec: float) -> None:
            QuietWait.wait()
            before = _commandstats(sync)
            with CpuWatch({"server": api.pid, "redis": redis_pid}) as cpu:
                result = tripload.gen(port, mode, requests, **spec)
            phase.add(result, cpu, _commandstats(sync) - before)

        for n in range(cfg.rounds):
            progress(f"trips: round {n + 1} of {cfg.rounds}")
            for kind, faults in FAULTS.items():
                httpx.put(f"{pricing.base_url}/faults", json=faults).raise_for_status()
                if kind != "down":
                    time.sleep(1.2)  # the breaker, open after "down", lets a probe through
                warm = tripload.gen(port, "closed", take(WARMUP), concurrency=1, seconds=30)
                progress(f"trips: pricing {kind} {faults}; warm-up sources {warm['fare_sources']}")
                measured(phases[kind], "open", take(per_window), rate=cfg.rate, seconds=window)
            httpx.put(f"{pricing.base_url}/faults", json={}).raise_for_status()
            time.sleep(1.2)
            progress(f"trips: closed loop, {cfg.concurrency} in flight, up to {closed_n:,} trips")
            measured(phases[MAX], "closed", take(closed_n), concurrency=cfg.concurrency,
                     seconds=window)  # fmt: skip
        profile = _profile(api.pid, port, take(profiled), cfg) if cfg.profile else None
    sync.close()
    progress("trips: results")
    out = [phases[k].summary(1 if k in FAULTS else cfg.concurrency) for k in phases]
    progress("trips: scanning drivers and trips for double bookings")
    scan = bookings.check(redis_url, keys)
    progress(f"  {scan}")
    by = {p["label"]: p for p in out}
    return {
        "config": {**asdict(cfg), "out": str(cfg.out)},
        "seeding": seeded,
        "phases": out,
        "down_minus_healthy_p99_ms": round(by["down"]["p99_ms"] - by["healthy"]["p99_ms"], 3),
        "bookings": scan,
        "profile": profile,
    }
