"""`ridehail bench limiter`: rate-limit decisions per second from one client, three ways.

- ours: `TokenBucket.take` (ratelimit/bucket.py), one Lua script per decision;
- a trivial EVALSHA of `return 1` with the same key: the floor of any one-script decision;
- the `limits` library's moving window on Redis (its async API, on redis-py).

All on one private redis-server, 8 in flight from one asyncio client, over 1000 subjects with
100 decisions a second each allowed; windows alternate in rounds.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis

from ratelimit.bucket import TokenBucket
from ratelimit.model import Limit
from ridehail.bench.cpu import CpuWatch, QuietWait, mean_cores
from ridehail.bench.measure import Samples, closed_loop, progress

OURS = "ours: TokenBucket.take"
TRIVIAL = "EVALSHA of return 1"
LIBRARY = "limits: moving window"
SUBJECTS = 1000


@dataclass(frozen=True, slots=True)
class LimiterConfig:
    seconds: float = 3.0  # per approach, split over the rounds
    rounds: int = 2
    concurrency: int = 8


async def run_limiter(redis_url: str, cfg: LimiterConfig) -> dict[str, Any]:
    from limits import parse
    from limits.aio.strategies import MovingWindowRateLimiter
    from limits.storage import storage_from_string

    client = aioredis.Redis.from_url(redis_url)
    redis_pid = int((await client.info("server"))["process_id"])
    bucket = TokenBucket(client)
    limit = Limit("bench", capacity=100, refill=100, period_s=1)
    trivial = client.register_script("return 1")
    storage = storage_from_string("async+" + redis_url, implementation="redispy")
    moving = MovingWindowRateLimiter(storage)
    item = parse("100/second")
    allowed = {OURS: 0, LIBRARY: 0}

    async def ours(i: int) -> None:
        allowed[OURS] += (await bucket.take(f"rl:{i % SUBJECTS}", limit)).allowed

    async def floor(i: int) -> None:
        await trivial(keys=[f"rl:{i % SUBJECTS}"], args=[])

    async def library(i: int) -> None:
        allowed[LIBRARY] += await moving.hit(item, str(i % SUBJECTS))

    ops: dict[str, Callable[[int], Awaitable[object]]] = {
        OURS: ours,
        TRIVIAL: floor,
        LIBRARY: library,
    }
    samples = {label: Samples() for label in ops}
    cpu: dict[str, list[dict[str, float]]] = {label: [] for label in ops}
    window = cfg.seconds / cfg.rounds
    for n in range(cfg.rounds):
        progress(f"limiter: round {n + 1} of {cfg.rounds}")
        for label, op in ops.items():
            QuietWait.wait()
            with CpuWatch({"bench": os.getpid(), "redis": redis_pid}) as watch:
                samples[label] += await closed_loop(op, concurrency=cfg.concurrency, seconds=window)
            cpu[label].append(watch.cores)
    await client.aclose()
    phases = []
    for label in ops:
        rate = samples[label].rate()
        cores = mean_cores(cpu[label])
        progress(f"  {label}: {rate.line('decisions')}; cpu {cores}")
        phases.append({"label": label, **rate.to_json(), "cpu_cores": cores})
    by = {p["label"]: p for p in phases}
    ratio = round(by[OURS]["per_s"] / by[TRIVIAL]["per_s"], 3)
    progress(f"limiter: ours / trivial EVALSHA = {ratio:.0%}")
    return {
        "config": asdict(cfg),
        "phases": phases,
        "allowed": allowed,
        "ours_vs_trivial_evalsha": ratio,
        "ours_vs_limits_moving_window": round(by[OURS]["per_s"] / by[LIBRARY]["per_s"], 3),
    }
