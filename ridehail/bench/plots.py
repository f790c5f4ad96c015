"""The plots of a run, with matplotlib (the `bench` extra), imported only when it is there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ridehail.bench.measure import progress

DOC_IMAGES = Path("docs/img")
_SEARCH_STYLES = {
    "ours": ("ours: nearest.lua", "C0"),
    "ours_one_in_flight": ("ours, 1 in flight", "C2"),
    "baseline": ("2 km GEOSEARCH", "C3"),
    "brute": ("brute force (Python)", "C7"),
}


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
    """Latency, throughput and Redis time per query against the number of drivers (log-log)."""
    plt = _pyplot()
    if plt is None:
        return
    rows = data["sizes"]
    fig, (lat_ax, qps_ax, redis_ax) = plt.subplots(1, 3, figsize=(16, 4.6))
    for key, (label, colour) in _SEARCH_STYLES.items():
        have = [r for r in rows if key in r]
        if not have:
            continue
        x = [r["drivers"] for r in have]
        lat_ax.plot(x, [r[key]["p50_ms"] for r in have], "o--", color=colour, label=f"{label} p50")
        lat_ax.plot(x, [r[key]["p99_ms"] for r in have], "o-", color=colour, label=f"{label} p99")
        qps_ax.plot(x, [r[key]["per_s"] for r in have], "o-", color=colour, label=label)
        if key in ("ours", "baseline"):
            us = [r[key]["server_us_per_query"] for r in have]
            redis_ax.plot(x, us, "o-", color=colour, label=label)
    conc = data["config"]["concurrency"]
    for ax, title, unit in (
        (lat_ax, f"latency ({conc} in flight unless marked)", "ms"),
        (qps_ax, "throughput of one client process", "queries/s"),
        (redis_ax, "Redis's own time per query", "µs (INFO commandstats)"),
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("available drivers in the city")
        ax.set_ylabel(unit)
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"nearest {data['config']['k']} drivers", fontsize=11)
    _save(plt, fig, out, "search", docs)


def _bars(ax: Any, bars: list[tuple[str, float]], title: str, unit: str) -> None:
    labels = [b[0] for b in bars]
    values = [b[1] for b in bars]
    ours = ("ridehail" in x or "our " in x for x in labels)
    ax.barh(labels, values, color=["C0" if mine else "C7" for mine in ours])
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:,.0f}", va="center", fontsize=8)
    ax.set_xlabel(unit)
    ax.set_title(title, fontsize=10)
    ax.invert_yaxis()
    ax.set_xlim(0, max(values, default=1) * 1.35)
    ax.locator_params(axis="x", nbins=4)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v / 1000:g}k" if v else "0")


def plot_ingest(data: dict[str, Any], out: Path, docs: bool) -> None:
    """Throughput bars: single updates, batched rows, and requests per second of server CPU."""
    plt = _pyplot()
    if plt is None:
        return
    phases = data["phases"]
    fig, axes = plt.subplots(3, 1, figsize=(9, 10))
    singles = [(p["label"], p["per_s"]) for p in phases if p["kind"] == "single"]
    rows = [(p["label"], p["rows_per_s"]) for p in phases if p["kind"] == "batch"]
    per_cpu = [
        (p["label"], p["per_server_cpu_s"] * p["rows_per_request"])
        for p in phases
        if p.get("per_server_cpu_s")
    ]
    _bars(axes[0], singles, "one update per request", "updates/s")
    _bars(axes[1], rows, "batches of 1000 rows", "rows/s")
    _bars(axes[2], per_cpu, "per second of the server's own CPU", "updates (rows) per CPU-second")
    _save(plt, fig, out, "ingest", docs)


def plot_trips(data: dict[str, Any], out: Path, docs: bool) -> None:
    """Request-to-offer p50/p95/p99 per pricing condition, and the closed-loop maximum."""
    plt = _pyplot()
    if plt is None:
        return
    phases = data["phases"]
    fig, ax = plt.subplots(figsize=(9, 4))
    x = range(len(phases))
    for offset, (key, colour) in enumerate((("p50_ms", "C0"), ("p95_ms", "C1"), ("p99_ms", "C3"))):
        values = [p[key] for p in phases]
        ax.bar([i + (offset - 1) * 0.27 for i in x], values, 0.27, color=colour, label=key[:3])
        for i, v in zip(x, values, strict=True):
            ax.text(i + (offset - 1) * 0.27, v, f"{v:.1f}", ha="center", va="bottom", fontsize=7)
    labels = [f"{p['label']}\n{p['requests_per_s']:,.0f} req/s" for p in phases]
    ax.set_xticks(list(x), labels, fontsize=8)
    ax.set_ylabel("POST /v1/trips -> offered, ms")
    ax.set_title(f"trip request to offer, {data['config']['drivers']:,} drivers", fontsize=10)
    ax.legend(fontsize=8)
    _save(plt, fig, out, "trips", docs)


def plot_limiter(data: dict[str, Any], out: Path, docs: bool) -> None:
    """Decisions per second of one client: ours, the EVALSHA floor, the limits library."""
    plt = _pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(9, 2.6))
    _bars(ax, [(p["label"], p["per_s"]) for p in data["phases"]], "one client, 8 in flight",
          "decisions/s")  # fmt: skip
    _save(plt, fig, out, "limiter", docs)


def plot_cluster(data: dict[str, Any], out: Path, docs: bool) -> None:
    """Ingest rows/s and search q/s per backend; each master's share of keys and commands."""
    plt = _pyplot()
    if plt is None:
        return
    fig = plt.figure(figsize=(11, 7.5))
    grid = fig.add_gridspec(2, 3, height_ratios=[1, 1.1])
    backends = data["backends"]
    labels = [b["label"].replace(", ", "\n", 1) for b in backends]
    colours = ["C7", "C1", "C0"][-len(backends) :]
    for col, (phase, key, title) in enumerate(
        (
            ("search", "per_s", f"nearest {data['config']['k']}, queries/s"),
            ("ingest_batch", "rows_per_s", "batched updates, rows/s"),
            ("ingest_single", "per_s", "single updates, updates/s"),
        )
    ):
        ax = fig.add_subplot(grid[0, col])
        values = [b["phases"][phase][key] for b in backends]
        ax.bar(range(len(values)), values, color=colours)
        for x, v in enumerate(values):
            ax.text(x, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(values)), labels, fontsize=7)
        ax.set_ylim(0, max(values, default=1) * 1.18)
        ax.set_title(title, fontsize=10)
    ax = fig.add_subplot(grid[1, :])
    masters = data["spread"]
    series = [("keys", [m["keys_share"] for m in masters])]
    for phase, name in (("search", "search"), ("ingest_batch", "batched"),
                        ("ingest_single", "single")):  # fmt: skip
        series.append((f"commands: {name}", [m["commands_share"][phase] for m in masters]))
    width = 0.8 / len(series)
    for n, (name, shares) in enumerate(series):
        xs = [i + (n - (len(series) - 1) / 2) * width for i in range(len(masters))]
        ax.bar(xs, shares, width, color=f"C{n + 2}", label=name)
        for at, v in zip(xs, shares, strict=True):
            ax.text(at, v, f"{v:.0%}", ha="center", va="bottom", fontsize=7)
    ax.axhline(1 / max(len(masters), 1), color="0.5", lw=0.8, ls="--")
    ax.set_xticks(range(len(masters)), [m["node"] for m in masters], fontsize=8)
    ax.set_ylabel("share of the cluster's total")
    ax.set_title("Redis Cluster: each master's share (dashed: an even split)", fontsize=10)
    ax.legend(fontsize=8, ncols=4, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.suptitle(f"supply, {data['config']['drivers']:,} drivers: single Redis and Redis Cluster",
                 fontsize=11)  # fmt: skip
    _save(plt, fig, out, "cluster", docs)
