"""Closed-loop timing, percentiles and the progress lines a run prints to stderr."""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

_STARTED = time.monotonic()


def progress(message: str) -> None:
    """One line to stderr, stamped with the seconds since the bench started."""
    print(f"[bench {time.monotonic() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed (uvicorn runs the API on it), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of sorted values, nearest rank."""
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]


@dataclass(frozen=True, slots=True)
class Rate:
    """Operations completed in a measured window: their rate and latency."""

    ops: int
    elapsed_s: float
    per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    concurrency: int

    @classmethod
    def of(cls, latencies_s: list[float], elapsed_s: float, concurrency: int) -> Rate:
        ordered = sorted(latencies_s)
        ms = [x * 1000 for x in (percentile(ordered, 0.5), percentile(ordered, 0.99))]
        return cls(
            ops=len(ordered),
            elapsed_s=round(elapsed_s, 3),
            per_s=round(len(ordered) / elapsed_s, 1) if elapsed_s > 0 else 0.0,
            p50_ms=round(ms[0], 4),
            p99_ms=round(ms[1], 4),
            max_ms=round(ordered[-1] * 1000, 4) if ordered else float("nan"),
            concurrency=concurrency,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def line(self, unit: str = "ops") -> str:
        return (
            f"{self.per_s:,.0f} {unit}/s  p50 {self.p50_ms:.3f} ms  p99 {self.p99_ms:.3f} ms"
            f"  ({self.ops:,} in {self.elapsed_s:.1f}s, {self.concurrency} in flight)"
        )


@dataclass(slots=True)
class Samples:
    """Latencies of operations in measured windows; windows of one phase add up (`+`)."""

    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    concurrency: int = 1

    def __add__(self, other: Samples) -> Samples:
        return Samples(
            self.latencies_s + other.latencies_s,
            self.elapsed_s + other.elapsed_s,
            max(self.concurrency, other.concurrency),
        )

    def rate(self) -> Rate:
        return Rate.of(self.latencies_s, self.elapsed_s, self.concurrency)


async def closed_loop(
    op: Callable[[int], Awaitable[object]],
    *,
    concurrency: int,
    seconds: float,
    warmup_s: float = 0.5,
) -> Samples:
    """`concurrency` workers call `op(i)` back to back; only calls started after warm-up count."""
    latencies: list[float] = []
    start = time.perf_counter() + warmup_s
    end = start + seconds

    async def worker(first: int) -> None:
        i = first
        while (t0 := time.perf_counter()) < end:
            await op(i)
            if t0 >= start:
                latencies.append(time.perf_counter() - t0)
            i += concurrency

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return Samples(latencies, time.perf_counter() - start, concurrency)


def timed_serial(op: Callable[[int], object], *, seconds: float, min_ops: int = 5) -> Samples:
    """A CPU-bound `op(i)` run back to back for `seconds` (at least `min_ops` times)."""
    latencies: list[float] = []
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < seconds or i < min_ops:
        t0 = time.perf_counter()
        op(i)
        latencies.append(time.perf_counter() - t0)
        i += 1
    return Samples(latencies, time.perf_counter() - start, 1)
