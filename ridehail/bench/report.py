"""Where results go: JSON files, and plots when matplotlib (the `bench` extra) is installed."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ridehail.bench.measure import progress

DOC_IMAGES = Path("docs/img")


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    redis_server = shutil.which("redis-server")
    redis_version = "not installed"
    if redis_server:
        out = subprocess.run(  # noqa: S603 - the redis-server found on PATH
            [redis_server, "--version"], capture_output=True, text=True, check=False
        ).stdout
        redis_version = next((p[2:] for p in out.split() if p.startswith("v=")), out.strip())
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "redis": redis_version,
        "kernel": platform.release(),
    }


def write_json(out: Path, name: str, data: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n")
    progress(f"wrote {path}")
    return path


def write_summary(out: Path) -> None:
    """`summary.md`: the tables and targets of the latest JSON of each bench in `out`."""
    from ridehail.bench import tables

    names = ("search", "ingest", "trips", "limiter", "locust", "cluster")
    found = {n: json.loads((out / f"{n}.json").read_text()) for n in names
             if (out / f"{n}.json").exists()}  # fmt: skip
    targets = tables.targets(found.get("search"), found.get("ingest"))
    extra = tables.more_targets(found.get("trips"), found.get("limiter"))
    targets += "".join("\n| " + " | ".join(r) + " |" for r in extra)
    parts = ["## Targets", targets]
    if "search" in found:
        parts += ["## Nearest search", tables.search_tables(found["search"])]
        parts += ["### PostGIS KNN baseline", tables.postgis_table(found["search"])]
        parts += ["### Redis memory per online driver", tables.memory_table(found["search"])]
    if "ingest" in found:
        parts += ["## Location ingest", tables.ingest_table(found["ingest"])]
    if "trips" in found:
        parts += ["## Trip request to offer", tables.trips_table(found["trips"])]
    if "limiter" in found:
        parts += ["## Rate-limit decisions", tables.limiter_table(found["limiter"])]
    if "locust" in found:
        parts += ["## Mixed load under locust", tables.locust_table(found["locust"])]
    if "cluster" in found:
        parts += ["## Redis Cluster beside a single Redis", tables.cluster_tables(found["cluster"])]
    path = out / "summary.md"
    path.write_text("\n\n".join(parts) + "\n")
    progress(f"wrote {path}")
