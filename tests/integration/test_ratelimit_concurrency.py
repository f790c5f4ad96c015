"""One bucket, several processes hammering it at once, one real redis-server.

Run as a module, this file is the worker: `python -m tests.integration.test_ratelimit_concurrency
URL KEY CAPACITY REFILL PERIOD_S SECONDS` waits for the go signal, calls TokenBucket.take as fast
as it can for SECONDS and prints one JSON line: admitted, refused, its clock's offset from Redis.

The expected count comes from the bucket's arithmetic over Redis TIME (never a client's clock):
capacity + refill * elapsed / period, where elapsed runs from the first take (the test makes it
on a fresh bucket, so the bucket's stamp is its Redis TIME) to the last refill the bucket did
(its stamp after the last take; with takes tens of microseconds apart, that take's Redis TIME).
The limit is chosen so that a milli-token is a whole number of microseconds: no rounding at all.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
from asyncio.subprocess import PIPE
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ratelimit.bucket import TokenBucket
from ratelimit.model import Limit

ROOT = Path(__file__).resolve().parents[2]
LIMIT = Limit("hammer", capacity=20, refill=50, period_s=1.0)  # 20 ms a token, 20 us a milli-token
FAR_BEHIND, FAR_AHEAD = "-3650d", "+400d"


async def _redis_now_us(client: aioredis.Redis) -> int:
    seconds, micros = await client.time()
    return int(seconds) * 1_000_000 + int(micros)


async def _work(url: str, key: str, limit: Limit, seconds: float) -> dict[str, float]:
    client = aioredis.Redis.from_url(url, socket_timeout=10)
    try:
        bucket = TokenBucket(client)
        offset_s = time.time() - (await _redis_now_us(client)) / 1e6
        await client.incr(f"{key}:ready")
        if await client.blpop([f"{key}:go"], timeout=30) is None:
            raise SystemExit("no go signal")
        admitted = refused = 0
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            if (await bucket.take(key, limit)).allowed:
                admitted += 1
            else:
                refused += 1
        # the bucket's stamp right after this worker's last take; the last worker to finish
        # reads the stamp of the very last take (the key expires soon after: read it now)
        stamp_us = int(await client.hget(key, "t") or 0)
        return {
            "admitted": admitted,
            "refused": refused,
            "clock_offset_s": offset_s,
            "stamp_us": stamp_us,
        }
    finally:
        await client.aclose()


@dataclass(frozen=True, slots=True)
class Run:
    admitted: int
    takes: int
    elapsed_us: int  # first take to the bucket's last refill, on Redis TIME
    wall_us: int  # first take to after every worker exited, on Redis TIME (an upper bound)
    workers: list[dict[str, float]]

    @property
    def expected(self) -> Fraction:
        return LIMIT.capacity + Fraction(LIMIT.refill * self.elapsed_us, LIMIT.period_ms * 1000)

    @property
    def most_allowed(self) -> Fraction:
        return LIMIT.capacity + Fraction(LIMIT.refill * self.wall_us, LIMIT.period_ms * 1000)


async def hammer(url: str, key: str, shifts: list[str | None], seconds: float) -> Run:
    """Workers (one per entry; a faketime offset or None) on one bucket; what they got."""
    client = aioredis.Redis.from_url(url, socket_timeout=10)
    procs: list[asyncio.subprocess.Process] = []
    try:
        await client.delete(key, f"{key}:ready", f"{key}:go")
        for shift in shifts:
            command = [sys.executable, "-m", __name__, url, key, str(seconds)]
            if shift is not None:
                command = ["faketime", "-f", shift, *command]
            procs.append(await asyncio.create_subprocess_exec(*command, cwd=ROOT, stdout=PIPE))
        deadline = time.monotonic() + 30
        while int(await client.get(f"{key}:ready") or 0) < len(shifts):
            assert all(p.returncode is None for p in procs), "a worker died before the start"
            assert time.monotonic() < deadline, "the workers never got ready"
            await asyncio.sleep(0.05)

        # The whole fresh bucket in one take (its stamp = its TIME): empty from the start, it
        # loses nothing while the workers wake up on a busy machine, as long as that takes less
        # than a full refill (0.4 s); a bucket left full would drop the refill of that wait.
        first = await TokenBucket(client).take(key, LIMIT, cost=LIMIT.capacity)
        assert first.allowed
        assert first.remaining == 0
        started_us = int(await client.hget(key, "t") or 0)
        await client.rpush(f"{key}:go", *(["go"] * len(shifts)))
        async with asyncio.timeout(60):
            outputs = [await p.communicate() for p in procs]
        ended_us = await _redis_now_us(client)
        assert all(p.returncode == 0 for p in procs)
        workers = [json.loads(out) for out, _ in outputs]
        last_refill_us = max(int(w["stamp_us"]) for w in workers)
        return Run(
            admitted=LIMIT.capacity + sum(int(w["admitted"]) for w in workers),
            takes=LIMIT.capacity + sum(int(w["admitted"] + w["refused"]) for w in workers),
            elapsed_us=last_refill_us - started_us,
            wall_us=ended_us - started_us,
            workers=workers,
        )
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
        await client.aclose()


def report(name: str, run: Run) -> str:
    return (
        f"{name}: {run.admitted} admitted of {run.takes} takes over {run.elapsed_us / 1e6:.3f} s"
        f" (Redis TIME); expected {float(run.expected):.2f}, at most {float(run.most_allowed):.2f};"
        f" {run.takes / (run.wall_us / 1e6):.0f} takes/s"
    )


@pytest.mark.real_redis
async def test_four_processes_on_one_bucket_get_exactly_what_the_arithmetic_allows(
    redis_url: str,
) -> None:
    run = await hammer(redis_url, "rl:{hammer:plain}", [None] * 4, seconds=1.5)
    print(report("4 processes", run))

    assert run.takes > 3 * run.admitted, "the bucket was not under pressure"
    assert all(w["admitted"] > 0 for w in run.workers), "a worker never got a token"
    assert run.admitted <= run.most_allowed  # never more than Redis time allows
    assert abs(run.admitted - run.expected) <= 1, report("4 processes", run)


@pytest.mark.real_redis
async def test_a_client_whose_clock_is_years_off_changes_nothing(redis_url: str) -> None:
    """The bucket reads Redis TIME; clients with clocks ten years behind and a year ahead
    (libfaketime) hammer next to honest ones, and the counts obey the same arithmetic."""
    if shutil.which("faketime") is None:
        pytest.skip("faketime is not installed (apt-get install faketime): clock-skew test skipped")
    honest, skewed = await asyncio.gather(
        hammer(redis_url, "rl:{hammer:honest}", [None] * 3, seconds=1.0),
        hammer(redis_url, "rl:{hammer:skewed}", [FAR_BEHIND, FAR_AHEAD, None], seconds=1.0),
    )
    print(report("3 honest clocks", honest))
    print(report("clocks off by -10 years, +400 days, 0", skewed))

    behind, ahead = skewed.workers[0]["clock_offset_s"], skewed.workers[1]["clock_offset_s"]
    assert behind < -3649 * 86_400, "faketime did not shift the first worker's clock"
    assert ahead > 399 * 86_400, "faketime did not shift the second worker's clock"
    assert skewed.workers[0]["admitted"] > 0
    assert skewed.workers[1]["admitted"] > 0
    for run in (honest, skewed):
        assert run.takes > 3 * run.admitted, "the bucket was not under pressure"
        assert run.admitted <= run.most_allowed
        assert abs(run.admitted - run.expected) <= 1, report("run", run)
    # the same count per unit of Redis time, skewed clocks or not
    assert abs((honest.admitted - honest.expected) - (skewed.admitted - skewed.expected)) <= 2


if __name__ == "__main__":
    url_arg, key_arg, seconds_arg = sys.argv[1], sys.argv[2], float(sys.argv[3])
    result = asyncio.run(_work(url_arg, key_arg, LIMIT, seconds_arg))
    sys.stdout.write(json.dumps(result) + "\n")
