"""What the ingest bench sends (drivers registered through the API, pre-built HTTP requests),
how it runs the load generator, and how it adds up the windows of one phase.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from ridehail.bench.city import City
from ridehail.bench.cpu import CpuWatch, QuietWait, mean_cores
from ridehail.bench.measure import Samples, progress
from ridehail.bench.procs import Server

Driver = tuple[str, str]  # id, token


def _request(method: str, path: str, token: str, body: str) -> str:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    )


def single_requests(drivers: list[Driver], per_driver: int = 2) -> list[str]:
    points = City().random_points(random.Random(5), len(drivers) * per_driver)
    out = []
    for n, (lat, lng) in enumerate(points):
        driver_id, token = drivers[n % len(drivers)]
        body = json.dumps({"lat": lat, "lng": lng}, separators=(",", ":"))
        out.append(_request("PUT", f"/v1/drivers/{driver_id}/location", token, body))
    return out


def batch_requests(drivers: list[Driver], rows: int, admin: str, count: int = 8) -> list[str]:
    points = City().random_points(random.Random(6), rows * count)
    out = []
    for b in range(count):
        updates = [
            {"driver_id": drivers[(b * rows + j) % len(drivers)][0], "lat": lat, "lng": lng}
            for j, (lat, lng) in enumerate(points[b * rows : (b + 1) * rows])
        ]
        body = json.dumps({"updates": updates}, separators=(",", ":"))
        out.append(_request("POST", "/v1/drivers/locations", admin, body))
    return out


async def register(base_url: str, n: int) -> list[Driver]:
    """n drivers registered and set available through the API itself."""
    gate = asyncio.Semaphore(4)  # httpx gets slower with more
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:

        async def one(i: int) -> Driver:
            async with gate:
                reg = (await http.post("/v1/drivers", json={"name": f"bench {i}"})).json()
                auth = {"Authorization": f"Bearer {reg['token']}"}
                path = f"/v1/drivers/{reg['driver_id']}/status"
                reply = await http.put(path, json={"status": "available"}, headers=auth)
                reply.raise_for_status()
                return reg["driver_id"], reg["token"]

        return await asyncio.gather(*(one(i) for i in range(n)))


@dataclass
class Tally:
    """The measured windows of one phase (its rounds), summed."""

    label: str
    kind: str  # "single" (one update per request) or "batch"
    rows: int = 1
    samples: Samples = field(default_factory=Samples)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    cpu: list[dict[str, float]] = field(default_factory=list)

    def add(self, samples: Samples, cpu: dict[str, float]) -> None:
        self.samples += samples
        self.cpu.append(cpu)

    def summary(self) -> dict[str, Any]:
        rate = self.samples.rate()
        rows_per_s = rate.per_s * self.rows
        cpu = mean_cores(self.cpu)
        unit = "rows" if self.kind == "batch" else "updates"
        progress(f"  {self.label}: {rate.line('requests')} = {rows_per_s:,.0f} {unit}/s; cpu {cpu}")
        return {
            "label": self.label,
            "kind": self.kind,
            "rows_per_request": self.rows,
            **rate.to_json(),
            "rows_per_s": round(rows_per_s, 1),
            "statuses": dict(self.statuses),
            "errors": self.errors,
            "cpu_cores": cpu,
            # the server's own speed, whatever a neighbour took from it: per second of its CPU
            "per_server_cpu_s": round(rate.per_s / cpu["server"], 1) if cpu.get("server") else None,
            "windows": len(self.cpu),
        }


def load(
    tally: Tally,
    server: Server,
    redis_pid: int,
    requests: list[str],
    connections: int,
    seconds: float,
) -> None:
    """One window of the load generator against `server`, added to `tally`."""
    spec = {"host": "127.0.0.1", "port": server.port, "connections": connections}
    spec |= {"seconds": seconds, "warmup_s": 1.0, "requests": requests}
    QuietWait.wait()
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(spec, f)
        f.flush()
        with CpuWatch({"server": server.pid, "redis": redis_pid}) as cpu:
            done = subprocess.run(  # noqa: S603 - this interpreter, our module
                [sys.executable, "-m", "ridehail.bench.loadgen", f.name],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    cpu.add("loadgen", result["loadgen_cpu_s"])
    tally.add(Samples(result["latencies_s"], result["elapsed_s"], connections), cpu.cores)
    tally.statuses.update(result["statuses"])
    tally.errors += result["errors"]
    if set(result["statuses"]) != {"200"} or result["errors"]:
        progress(f"  WARNING: statuses {result['statuses']}, {result['errors']} connection errors")
