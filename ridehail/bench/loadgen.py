"""A small HTTP/1.1 keep-alive load generator, run as its own process so it has its own core.

    python -m ridehail.bench.loadgen SPEC.json   # prints one JSON line: latencies, statuses

SPEC: `{"host", "port", "connections", "seconds", "warmup_s", "requests": [str, ...]}`, each
request a complete HTTP/1.1 message (latin-1). Connection n sends requests n, n + C, n + 2C, ...
back to back (closed loop) and reads only the status line and Content-Length of each answer.
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

_LENGTH = b"\r\ncontent-length:"


class LoadgenError(RuntimeError):
    """The server answered something this client cannot read (no Content-Length)."""


async def _response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(_LENGTH)
    if at < 0:
        raise LoadgenError(f"no Content-Length in {head[:200]!r}")
    end = lower.index(b"\r\n", at + 2)
    length = int(lower[at + len(_LENGTH) : end])
    if length:
        await reader.readexactly(length)
    return status


async def _connection(
    n: int, spec: dict[str, Any], requests: list[bytes], window: tuple[float, float], out: Any
) -> None:
    latencies: list[float] = out["latencies"]
    statuses: Counter[int] = out["statuses"]
    start, end = window
    step = spec["connections"]
    i = n
    while time.perf_counter() < end:
        try:
            reader, writer = await asyncio.open_connection(spec["host"], spec["port"])
        except OSError:
            out["errors"] += 1
            await asyncio.sleep(0.05)
            continue
        try:
            while (t0 := time.perf_counter()) < end:
                writer.write(requests[i % len(requests)])
                status = await _response(reader)
                if t0 >= start:
                    latencies.append(time.perf_counter() - t0)
                    statuses[status] += 1
                i += step
        except (OSError, asyncio.IncompleteReadError, LoadgenError):
            out["errors"] += 1
        finally:
            writer.close()


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    requests = [r.encode("latin-1") for r in spec["requests"]]
    out: dict[str, Any] = {"latencies": [], "statuses": Counter(), "errors": 0}
    start = time.perf_counter() + spec["warmup_s"]
    window = (start, start + spec["seconds"])
    conns = spec["connections"]
    await asyncio.gather(*(_connection(n, spec, requests, window, out) for n in range(conns)))
    elapsed = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "latencies_s": [round(x, 7) for x in out["latencies"]],
        "elapsed_s": elapsed,
        "connections": conns,
        "statuses": {str(k): v for k, v in sorted(out["statuses"].items())},
        "errors": out["errors"],
        "loadgen_cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
    }


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text())
    result = run_async(run(spec))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
