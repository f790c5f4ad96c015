"""`ridehail bench ingest`: location updates per second through the real API, beside baselines.

Servers run as processes (`ridehail serve`, the bare app under uvicorn); the load comes from
`ridehail.bench.loadgen` in a process of its own. CPU seconds of the server, Redis and the load
generator are read from /proc, so a run shows which process was the bottleneck.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from ridehail.bench import direct, micro, profiling, workload
from ridehail.bench.measure import progress, run_async
from ridehail.bench.procs import (
    CpuWatch,
    Server,
    free_port,
    http_server,
    ridehail_command,
    uvicorn_command,
)
from ridehail.bench.profiling import py_spy


@dataclass(frozen=True, slots=True)
class IngestConfig:
    seconds: float = 8.0
    workers: int = 1
    connections: int = 16
    batch_connections: int = 4
    batch_rows: int = 1000
    drivers: int = 2000
    profile: bool = True
    variants: bool = True
    out: Path = Path("bench-results")


def load(
    server: Server, redis_pid: int, requests: list[str], connections: int, seconds: float
) -> dict[str, Any]:
    """Run the load generator against `server`; its summary plus each process's CPU use."""
    spec = {"host": "127.0.0.1", "port": server.port, "connections": connections}
    spec |= {"seconds": seconds, "warmup_s": 1.0, "requests": requests}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(spec, f)
        f.flush()
        with CpuWatch({"server": server.pid, "redis": redis_pid}) as cpu:
            done = subprocess.run(  # noqa: S603 - this interpreter, our module
            [sys.executable, "-m", "ridehail.bench.loadgen", f.name],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    cpu.add("loadgen", result.pop("loadgen_cpu_s"))
    result["cpu_cores"] = cpu.cores
    if set(result["statuses"]) != {"200"} or result["errors"]:
        progress(f"  WARNING: statuses {result['statuses']}, {result['errors']} connection errors")
    return result


def _phase(label: str, kind: str, result: dict[str, Any], rows: int) -> dict[str, Any]:
    unit = "rows" if kind == "batch" else "updates"
    progress(
        f"  {label}: {result['per_s']:,.0f} req/s = {result['per_s'] * rows:,.0f} {unit}/s, "
        f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, cpu {result['cpu_cores']}"
    )
    return {"label": label, "kind": kind, "rows_per_request": rows, **result} | {
        "rows_per_s": round(result["per_s"] * rows, 1)
    }


def _profile(
    api: Server, redis_pid: int, name: str, requests: list[str], conns: int, cfg: IngestConfig
) -> Any:
    raw = cfg.out / f"profile-{name}.txt"
    cfg.out.mkdir(parents=True, exist_ok=True)
    with py_spy(api.pid, raw, "raw") as attached:
        if not attached:
            progress("  py-spy is not installed or cannot attach: no profile")
            return None
        load(api, redis_pid, requests, conns, min(cfg.seconds, 8.0))
    summary = profiling.summarize(raw)
    progress(f"  profile of {name} ({summary['samples']} samples):\n{profiling.table(summary)}")
    if name == "single":
        with py_spy(api.pid, cfg.out / "profile-single.svg", "flamegraph"):
            load(api, redis_pid, requests, conns, min(cfg.seconds, 5.0))
    return summary


def run_ingest(redis_url: str, cfg: IngestConfig) -> dict[str, Any]:
    sync = redis.Redis.from_url(redis_url)
    redis_pid = int(sync.info("server")["process_id"])
    sync.close()
    admin = "bench-admin-" + secrets.token_hex(12)
    env = {"REDIS_URL": redis_url, "RIDEHAIL_ADMIN_TOKEN": admin}
    env |= {"RIDEHAIL_ACCESS_LOG": "false", "RIDEHAIL_LOG_LEVEL": "warning"}
    phases: list[dict[str, Any]] = []
    profiles: dict[str, Any] = {}
    port = free_port()
    with http_server("ridehail serve", ridehail_command(port, cfg.workers), port, env) as api:
        progress(f"ingest: registering {cfg.drivers:,} drivers through the API")
        drivers = run_async(workload.register(api.base_url, cfg.drivers))
        single = workload.single_requests(drivers)
        batch = workload.batch_requests(drivers, cfg.batch_rows, admin)
        progress(f"ingest: single PUT location, {cfg.connections} connections, {cfg.seconds:g}s")
        result = load(api, redis_pid, single, cfg.connections, cfg.seconds)
        phases.append(_phase("ridehail PUT /location", "single", result, 1))
        progress(f"ingest: batched POST locations, {cfg.batch_rows} rows")
        result = load(api, redis_pid, batch, cfg.batch_connections, cfg.seconds)
        phases.append(_phase("ridehail POST /locations", "batch", result, cfg.batch_rows))
        if cfg.profile:
            progress("ingest: profiling the API with py-spy")
            profiles["single"] = _profile(api, redis_pid, "single", single, cfg.connections, cfg)
            profiles["batch"] = _profile(api, redis_pid, "batch", batch, cfg.batch_connections, cfg)
    if cfg.variants:
        port = free_port()
        argv = uvicorn_command("ridehail.asgi:app_from_env", port, cfg.workers)
        argv += ["--loop", "asyncio", "--http", "h11"]
        with http_server("ridehail on asyncio+h11", argv, port, env) as slow:
            progress("ingest: ridehail on the asyncio loop and h11 (not uvloop, httptools)")
            result = load(slow, redis_pid, single, cfg.connections, cfg.seconds)
            phases.append(_phase("ridehail PUT, asyncio+h11", "single", result, 1))
    port = free_port()
    argv = uvicorn_command("ridehail.bench.bare_app:create_app", port, cfg.workers)
    with http_server("bare FastAPI app", argv, port, env) as bare:
        progress("ingest: bare FastAPI + one GEOADD per request")
        result = load(bare, redis_pid, single, cfg.connections, cfg.seconds)
        phases.append(_phase("bare FastAPI + GEOADD", "single", result, 1))
    progress("ingest: redis-py straight to Redis (in this process)")
    phases += run_async(
        direct.run_direct(
            redis_url, [d for d, _ in drivers], batch=cfg.batch_rows, seconds=cfg.seconds,
            connections=cfg.connections, batch_in_flight=cfg.batch_connections,
        )
    )  # fmt: skip
    by_label = {p["label"]: p for p in phases}
    ratios = {
        "single_vs_bare": round(
            by_label["ridehail PUT /location"]["per_s"]
            / by_label["bare FastAPI + GEOADD"]["per_s"],
            3,
        ),
        "batch_vs_raw_pipelined": round(
            by_label["ridehail POST /locations"]["rows_per_s"]
            / by_label["raw pipelined GEOADD (redis-py)"]["rows_per_s"],
            3,
        ),
    }
    progress(f"ingest ratios: {ratios}")
    config = {k: getattr(cfg, k) for k in IngestConfig.__slots__ if k != "out"}
    return {
        "config": config,
        "phases": phases,
        "ratios": ratios,
        "profiles": profiles,
        "micro": micro.run_micro(cfg.batch_rows),
    }
