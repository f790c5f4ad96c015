"""Trip requests on a schedule (open loop) or back to back (closed loop), in a process of its own.

    python -m ridehail.bench.tripgen SPEC.json   # prints one JSON line

SPEC: `{"host", "port", "mode": "open"|"closed", "rate", "concurrency", "seconds", "requests"}`,
each request a complete HTTP/1.1 message (latin-1), each sent once. Open loop: request i is due
at `start + i / rate` and goes out then on an idle keep-alive connection (a new one when none is
idle), whatever earlier requests are doing; its latency counts from when it was due, so a
stalled server's queue shows in the figures. Closed loop: `concurrency` connections send back
to back. Each answer's status, `state` and `fare.source` are tallied.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ridehail.bench.measure import run_async

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _exchange(conn: Conn, request: bytes) -> tuple[int, bytes]:
    reader, writer = conn
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.index(b"\r\ncontent-length:")
    length = int(lower[at + 17 : lower.index(b"\r\n", at + 2)])
    return status, await reader.readexactly(length) if length else b""


class _Tally:
    def __init__(self) -> None:
        self.offered_latencies: list[float] = []
        self.all_latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.states: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()
        self.errors = 0

    def add(self, latency: float, status: int, body: bytes) -> None:
        self.all_latencies.append(latency)
        self.statuses[str(status)] += 1
        if status != 201:
            return
        trip = json.loads(body)
        self.states[trip["state"]] += 1
        self.sources[trip["fare"]["source"]] += 1
        if trip["state"] == "offered":
            self.offered_latencies.append(latency)


async def _open(spec: dict[str, Any], requests: list[bytes], tally: _Tally) -> float:
    idle: list[Conn] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one(request: bytes, due: float) -> None:
        conn = idle.pop() if idle else await asyncio.open_connection(spec["host"], spec["port"])
        try:
            status, body = await _exchange(conn, request)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            tally.errors += 1
            conn[1].close()
            return
        tally.add(time.perf_counter() - due, status, body)
        idle.append(conn)

    rate = float(spec["rate"])
    count = min(len(requests), int(rate * spec["seconds"]))
    start = time.perf_counter() + 0.05
    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(requests[i], due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    return count / rate


async def _closed(spec: dict[str, Any], requests: list[bytes], tally: _Tally) -> float:
    start = time.perf_counter()
    end = start + spec["seconds"]
    queue = iter(requests)

    async def worker() -> None:
        conn = await asyncio.open_connection(spec["host"], spec["port"])
        try:
            while time.perf_counter() < end and (request := next(queue, None)) is not None:
                t0 = time.perf_counter()
                status, body = await _exchange(conn, request)
                tally.add(time.perf_counter() - t0, status, body)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            tally.errors += 1
        finally:
            conn[1].close()

    await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
    return time.perf_counter() - start


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    requests = [r.encode("latin-1") for r in spec["requests"]]
    tally = _Tally()
    loop = _open if spec["mode"] == "open" else _closed
    elapsed = await loop(spec, requests, tally)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "offered_latencies_s": [round(x, 7) for x in tally.offered_latencies],
        "all_latencies_s": [round(x, 7) for x in tally.all_latencies],
        "elapsed_s": elapsed,
        "statuses": dict(tally.statuses),
        "states": dict(tally.states),
        "fare_sources": dict(tally.sources),
        "errors": tally.errors,
        "loadgen_cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
    }


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text())
    sys.stdout.write(json.dumps(run_async(run(spec))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
