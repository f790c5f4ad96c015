"""`ridehail bench locust`: a mixed workload (ridehail/bench/locustfile.py) under locust, headless.

The stack is private: a redis-server, `ridehail pricing` and `ridehail serve --workers 2`
(limits lifted to 1000000/1 so that the buckets are taken but never refuse, access log off).
Locust runs as its own process (`--headless -u -r -t --csv`); its CSV files stay in `--out`, and
the aggregate and per-request rows go to `locust.json`.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from ridehail.bench.cpu import CpuWatch, QuietWait
from ridehail.bench.measure import progress
from ridehail.bench.procs import BenchSetupError, free_port, http_server

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


@dataclass(frozen=True, slots=True)
class LocustConfig:
    users: int = 50
    spawn_rate: float = 10.0
    seconds: float = 30.0
    workers: int = 2


def _num(v: str) -> float:
    try:
        return float(v)
    except ValueError:
        return float("nan")


def _rows(path: Path) -> list[dict[str, Any]]:
    out = []
    with path.open() as f:
        for r in csv.DictReader(f):
            out.append({
                "name": r["Name"], "method": r["Type"], "requests": int(r["Request Count"]),
                "failures": int(r["Failure Count"]), "per_s": _num(r["Requests/s"]),
                "p50_ms": _num(r["50%"]), "p95_ms": _num(r["95%"]), "p99_ms": _num(r["99%"]),
                "max_ms": _num(r["Max Response Time"]), "mean_ms": _num(r["Average Response Time"]),
            })  # fmt: skip
    return out


def run_locust(redis_url: str, cfg: LocustConfig, out: Path) -> dict[str, Any]:
    if importlib.util.find_spec("locust") is None:
        raise BenchSetupError("locust is not installed (the bench extra: pip install locust)")
    out.mkdir(parents=True, exist_ok=True)
    prefix = out / "locust"
    sync = redis.Redis.from_url(redis_url)
    redis_pid = int(sync.info("server")["process_id"])
    sync.close()
    exe = str(Path(sys.executable).with_name("ridehail"))
    with contextlib.ExitStack() as stack:
        pport, port = free_port(), free_port()
        pricing = stack.enter_context(
            http_server("ridehail pricing", [exe, "pricing", "--port", str(pport)], pport, {})
        )
        env = {"REDIS_URL": redis_url, "PRICING_URL": pricing.base_url}
        env |= {"RIDEHAIL_ACCESS_LOG": "false", "RIDEHAIL_LOG_LEVEL": "warning"}
        env |= {"RIDEHAIL_PRICING_QUOTA": "1000000/1"}
        for name in ("trip_requests", "registrations", "location_updates"):
            env[f"RIDEHAIL_LIMIT_{name.upper()}"] = "1000000/1"
        argv = [exe, "serve", "--port", str(port), "--workers", str(cfg.workers)]
        api = stack.enter_context(http_server("ridehail serve", argv, port, env))
        cmd = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", api.base_url,
            "--headless", "-u", str(cfg.users), "-r", f"{cfg.spawn_rate:g}",
            "-t", f"{cfg.seconds:g}s", "--csv", str(prefix), "--only-summary",
            "--loglevel", "WARNING", "--exit-code-on-error", "0",
        ]  # fmt: skip
        progress(f"locust: {cfg.users} users (+{cfg.spawn_rate:g}/s) for {cfg.seconds:g}s against"
                 f" ridehail serve --workers {cfg.workers}")  # fmt: skip
        QuietWait.wait()
        log = (out / "locust.log").open("w")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        pids = {"server": api.pid, "redis": redis_pid, "pricing": pricing.pid}
        with CpuWatch(pids) as cpu:
            # wait4, not wait: its rusage is locust's CPU, which /proc forgets once it is reaped
            _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        cpu.add("locust", usage.ru_utime + usage.ru_stime)
        log.close()
        if code != 0:
            tail = (out / "locust.log").read_text()[-2000:]
            raise BenchSetupError(f"locust exited with {code}:\n{tail}")
    rows = _rows(Path(f"{prefix}_stats.csv"))
    total = next(r for r in rows if r["name"] == "Aggregated")
    config = {"users": cfg.users, "spawn_rate": cfg.spawn_rate, "seconds": cfg.seconds,
              "workers": cfg.workers, "command": " ".join(cmd[2:])}  # fmt: skip
    data = {
        "config": config,
        "total": total | {"error_rate": round(total["failures"] / max(1, total["requests"]), 5)},
        "requests": [r for r in rows if r["name"] != "Aggregated"],
        "cpu_cores": cpu.cores,
    }
    progress(
        f"  {total['per_s']:,.0f} requests/s, p50 {total['p50_ms']:g} ms, p95"
        f" {total['p95_ms']:g} ms, p99 {total['p99_ms']:g} ms, {total['failures']} failures of"
        f" {total['requests']:,}; cpu {cpu.cores}"
    )
    return data
