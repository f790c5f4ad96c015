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
    """`summary.md`: the tables and targets of the latest search.json and ingest.json in `out`."""
    from ridehail.bench import tables

    found = {n: json.loads((out / f"{n}.json").read_text()) for n in ("search", "ingest")
             if (out / f"{n}.json").exists()}  # fmt: skip
    parts = ["## Targets", tables.targets(found.get("search"), found.get("ingest"))]
    if "search" in found:
        parts += ["## Nearest search", tables.search_tables(found["search"])]
    if "ingest" in found:
        parts += ["## Location ingest", tables.ingest_table(found["ingest"])]
    path = out / "summary.md"
    path.write_text("\n\n".join(parts) + "\n")
    progress(f"wrote {path}")


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        progress("matplotlib is not installed: no plots (pip install -e '.[bench]')")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, out: Path, name: str, docs: bool) -> None:
    fig.tight_layout()
    targets = [out / f"{name}.png"] + ([DOC_IMAGES / f"{name}.png"] if docs else [])
    for path in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        progress(f"wrote {path}")
    plt.close(fig)


def plot_search(data: dict[str, Any], out: Path, docs: bool) -> None:
    plt = _pyplot()
    if plt is None:
        return
    rows = data["sizes"]
    fig, (lat_ax, qps_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"ours": ("ours: nearest.lua", "C0"), "baseline": ("2 km GEOSEARCH", "C3")}
    styles["brute"] = ("brute force (Python)", "C7")
    styles["ours_one_in_flight"] = ("ours, 1 in flight", "C2")
    for key, (label, colour) in styles.items():
        have = [r for r in rows if key in r]
        if not have:
            continue
        x = [r["drivers"] for r in have]
        lat_ax.plot(x, [r[key]["p50_ms"] for r in have], "o--", color=colour, label=f"{label} p50")
        lat_ax.plot(x, [r[key]["p99_ms"] for r in have], "o-", color=colour, label=f"{label} p99")
        qps_ax.plot(x, [r[key]["per_s"] for r in have], "o-", color=colour, label=label)
    conc = data["config"]["concurrency"]
    for ax, title, unit in (
        (lat_ax, f"latency ({conc} in flight)", "ms"),
        (qps_ax, "throughput (one client)", "queries/s"),
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("available drivers in the city")
        ax.set_ylabel(unit)
        ax.set_title(f"nearest {data['config']['k']} drivers: {title}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    _save(plt, fig, out, "search", docs)


def plot_ingest(data: dict[str, Any], out: Path, docs: bool) -> None:
    plt = _pyplot()
    if plt is None:
        return
    phases = data["phases"]
    fig, (req_ax, row_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    singles = [(p["label"], p["per_s"]) for p in phases if p["kind"] == "single"]
    rows = [(p["label"], p["rows_per_s"]) for p in phases if p["kind"] == "batch"]
    for ax, bars, title, unit in (
        (req_ax, singles, "one update per request", "updates/s"),
        (row_ax, rows, "batches of rows", "rows/s"),
    ):
        labels = [b[0] for b in bars]
        values = [b[1] for b in bars]
        ours = ("ridehail" in x or "our " in x for x in labels)
        ax.barh(labels, values, color=["C0" if mine else "C7" for mine in ours])
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:,.0f}", va="center", fontsize=8)
        ax.set_xlabel(unit)
        ax.set_title(title)
        ax.invert_yaxis()
        ax.set_xlim(0, max(values, default=1) * 1.25)
    _save(plt, fig, out, "ingest", docs)
