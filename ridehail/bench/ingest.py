"""`ridehail bench ingest`: location updates per second through the real API, beside baselines.

Servers run as processes (`ridehail serve`, the bare app under uvicorn); the load comes from
`ridehail.bench.loadgen` in a process of its own. Each phase is measured in `rounds` windows
taken in turn with the others (ours, bare, ours batched, raw, ...), so a neighbour's load on a
shared machine falls on all of them alike. CPU seconds of every process are read from /proc.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from ridehail.bench import direct, micro, profiling, workload
from ridehail.bench.measure import progress, run_async
from ridehail.bench.procs import Server, free_port, http_server, ridehail_command, uvicorn_command
from ridehail.bench.profiling import py_spy
from ridehail.bench.workload import Tally

OURS = "ridehail PUT /location"
OURS_BATCH = "ridehail POST /locations"
SLOW_STACK = "ridehail PUT, asyncio+h11"
BARE = "bare FastAPI + GEOADD"


@dataclass(frozen=True, slots=True)
class IngestConfig:
    seconds: float = 8.0  # measured seconds per phase, split over the rounds
    rounds: int = 2
    workers: int = 1
    connections: int = 16
    batch_connections: int = 4
    batch_rows: int = 1000
    drivers: int = 2000
    profile: bool = True
    variants: bool = True
    out: Path = Path("bench-results")


def _profile(
    api: Server, redis_pid: int, name: str, requests: list[str], conns: int, cfg: IngestConfig
) -> Any:
    raw = cfg.out / f"profile-{name}.txt"
    cfg.out.mkdir(parents=True, exist_ok=True)
    scratch = Tally(f"profiled {name}", name)
    with py_spy(api.pid, raw, "raw") as attached:
        if not attached:
            progress("  py-spy is not installed or cannot attach: no profile")
            return None
        workload.load(scratch, api, redis_pid, requests, conns, min(cfg.seconds, 8.0))
    summary = profiling.summarize(raw)
    progress(f"  profile of {name} ({summary['samples']} samples):\n{profiling.table(summary)}")
    if name == "single":
        with py_spy(api.pid, cfg.out / "profile-single.svg", "flamegraph"):
            workload.load(scratch, api, redis_pid, requests, conns, min(cfg.seconds, 5.0))
    return summary


def run_ingest(redis_url: str, cfg: IngestConfig) -> dict[str, Any]:
    sync = redis.Redis.from_url(redis_url)
    redis_pid = int(sync.info("server")["process_id"])
    sync.close()
    admin = "bench-admin-" + secrets.token_hex(12)
    env = {"REDIS_URL": redis_url, "RIDEHAIL_ADMIN_TOKEN": admin}
    env |= {"RIDEHAIL_ACCESS_LOG": "false", "RIDEHAIL_LOG_LEVEL": "warning"}
    env |= {f"RIDEHAIL_{name.upper()}": value for name, value in direct.BENCH_LIMITS.items()}
    window = cfg.seconds / cfg.rounds
    tallies = {label: Tally(label, "single") for label in (OURS, SLOW_STACK, BARE)}
    tallies[OURS_BATCH] = Tally(OURS_BATCH, "batch", cfg.batch_rows)
    for label in direct.PHASES:
        rows = cfg.batch_rows if label in direct.BATCHED else 1
        tallies[label] = Tally(label, "batch" if rows > 1 else "single", rows)
    profiles: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:

        def start(name: str, argv: list[str], port: int) -> Server:
            return stack.enter_context(http_server(name, argv, port, env))

        port = free_port()
        api = start("ridehail serve", ridehail_command(port, cfg.workers), port)
        port = free_port()
        bare_argv = uvicorn_command("ridehail.bench.bare_app:create_app", port, cfg.workers)
        bare = start("bare FastAPI app", bare_argv, port)
        progress(f"ingest: registering {cfg.drivers:,} drivers through the API")
        drivers = run_async(workload.register(api.base_url, cfg.drivers))
        ids = [d for d, _ in drivers]
        single = workload.single_requests(drivers)
        batch = workload.batch_requests(drivers, cfg.batch_rows, admin)

        def http(label: str, server: Server, requests: list[str], conns: int) -> None:
            progress(f"ingest: {label}, {conns} connections, {window:g}s")
            workload.load(tallies[label], server, redis_pid, requests, conns, window)

        def raw(label: str) -> None:
            conns = cfg.batch_connections if label in direct.BATCHED else cfg.connections
            progress(f"ingest: {label}, {conns} in flight, {window:g}s (this process)")
            samples, cpu = run_async(
                direct.measure(
                    redis_url, label, ids, batch=cfg.batch_rows, seconds=window,
                    concurrency=conns,
                )
            )  # fmt: skip
            tallies[label].add(samples, cpu)

        for n in range(cfg.rounds):
            progress(f"ingest: round {n + 1} of {cfg.rounds}")
            http(OURS, api, single, cfg.connections)
            http(BARE, bare, single, cfg.connections)
            http(OURS_BATCH, api, batch, cfg.batch_connections)
            for label in direct.PHASES:
                raw(label)
        if cfg.variants:
            port = free_port()
            argv = uvicorn_command("ridehail.asgi:app_from_env", port, cfg.workers)
            slow = start(SLOW_STACK, [*argv, "--loop", "asyncio", "--http", "h11"], port)
            for _ in range(cfg.rounds):
                http(SLOW_STACK, slow, single, cfg.connections)
        if cfg.profile:
            progress("ingest: profiling the API with py-spy")
            profiles["single"] = _profile(api, redis_pid, "single", single, cfg.connections, cfg)
            profiles["batch"] = _profile(api, redis_pid, "batch", batch, cfg.batch_connections, cfg)
    progress("ingest: results")
    phases = [t.summary() for t in tallies.values() if t.cpu]
    by = {p["label"]: p for p in phases}
    ratios = {
        "single_vs_bare": round(by[OURS]["per_s"] / by[BARE]["per_s"], 3),
        "batch_vs_raw_pipelined": round(
            by[OURS_BATCH]["rows_per_s"] / by[direct.PIPELINED]["rows_per_s"], 3
        ),
        "single_vs_bare_per_server_cpu": round(
            by[OURS]["per_server_cpu_s"] / by[BARE]["per_server_cpu_s"], 3
        ),
        "batch_vs_raw_multi_member": round(
            by[OURS_BATCH]["rows_per_s"] / by[direct.MULTI]["rows_per_s"], 3
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
