"""Markdown tables of a run, and the targets from the project's issues checked against it.

`ridehail bench` writes them to `<out>/summary.md`, ready for docs/benchmarks.md.
"""

from __future__ import annotations

from typing import Any

Row = list[str]


def _table(head: Row, rows: list[Row]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines[1] = "|---" + lines[1][5:]  # first column left-aligned
    return "\n".join(lines)


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _ms(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:,.1f}"


def _other(phase: dict[str, Any]) -> float:
    return float(phase.get("cpu_cores", {}).get("other", 0.0))


def _alone(row: dict[str, Any]) -> str:
    one = row.get("ours_one_in_flight")
    return f"{_ms(one['p50_ms'])} / {_ms(one['p99_ms'])}" if one else "-"


def _client_us(phase: dict[str, Any]) -> str:
    per_cpu_s = phase.get("per_client_cpu_s")
    return f"{1e6 / per_cpu_s:,.0f}" if per_cpu_s else "-"


def search_tables(data: dict[str, Any]) -> str:
    rows = data["sizes"]
    speed = [
        [
            _n(r["drivers"]),
            _n(r["ours"]["per_s"]), _ms(r["ours"]["p50_ms"]), _ms(r["ours"]["p99_ms"]),
            _n(r["baseline"]["per_s"]), _ms(r["baseline"]["p50_ms"]),
            _ms(r["baseline"]["p99_ms"]), f"{r['ratio_qps']:.2f}x",
            _n(r["brute"]["per_s"]) if "brute" in r else "-",
            _alone(r),
        ]
        for r in rows
    ]  # fmt: skip
    work = [
        [
            _n(r["drivers"]),
            f"{r['ours']['server_us_per_query']:,.0f}", f"{r['check']['our_rounds_mean']:.1f}",
            _n(r["check"]["our_final_radius_m_median"]),
            f"{r['baseline']['server_us_per_query']:,.0f}",
            f"{r.get('ratio_redis_capacity', 0):,.1f}x", _client_us(r["ours"]),
            _n(r["check"]["members_within_baseline_radius_median"]),
            f"{r['check']['same_as_baseline']}/{r['check']['baseline_found_k']}",
            f"{r['check']['same_as_brute']}/{r['check']['brute_checked']}",
            f"{_other(r['ours']):.2f} / {_other(r['baseline']):.2f}",
        ]
        for r in rows
    ]  # fmt: skip
    return "\n\n".join(
        [
            _table(
                ["drivers", "ours q/s", "ours p50 ms", "ours p99 ms", "2 km q/s", "2 km p50 ms",
                 "2 km p99 ms", "q/s ours / 2 km", "brute force q/s",
                 "ours p50 / p99 ms, 1 in flight"],
                speed,
            ),
            _table(
                ["drivers", "Redis µs per ours", "circles tried", "last radius m",
                 "Redis µs per 2 km", "Redis µs 2 km / ours", "client CPU µs per ours",
                 "drivers within 2 km", "same as 2 km", "same as brute", "other load (cores)"],
                work,
            ),
        ]
    )  # fmt: skip


def postgis_table(data: dict[str, Any]) -> str:
    rows = [
        [
            _n(r["drivers"]), _n(r["ours"]["per_s"]), _ms(r["ours"]["p50_ms"]),
            _ms(r["ours"]["p99_ms"]), _n(r["postgis"]["per_s"]), _ms(r["postgis"]["p50_ms"]),
            _ms(r["postgis"]["p99_ms"]), f"{r['ratio_qps_vs_postgis']:.2f}x",
            f"{r['postgis_check']['same_as_postgis']}/{r['postgis_check']['checked']}",
            f"{_other(r['ours']):.2f} / {_other(r['postgis']):.2f}",
        ]
        for r in data["sizes"] if "postgis" in r
    ]  # fmt: skip
    if not rows:
        skipped = data.get("postgis", {}).get("skipped")
        return f"PostGIS KNN baseline not run: {skipped or 'not in this run'}."
    head = ["drivers", "ours q/s", "ours p50 ms", "ours p99 ms", "PostGIS KNN q/s",
            "PostGIS p50 ms", "PostGIS p99 ms", "q/s ours / PostGIS", "same as PostGIS",
            "other load (cores)"]  # fmt: skip
    return _table(head, rows)


def memory_table(data: dict[str, Any]) -> str:
    rows = [
        [
            _n(m["drivers"]), _n(m["record_bytes_mean"]), _n(m["geo_bytes_per_driver"]),
            _n(m["seen_bytes_per_driver"]), _n(m["by_key_bytes_per_driver"]),
            _n(m["used_memory_growth_per_driver"]), f"{m['used_memory'] / 2**20:,.1f}",
            f"{m['positions_stream_bytes'] / 2**20:,.1f}",
        ]
        for m in (r["memory"] for r in data["sizes"] if "memory" in r)
    ]  # fmt: skip
    head = ["drivers", "record B (mean)", "GEO B/driver", "seen B/driver",
            "by MEMORY USAGE B/driver", "used_memory growth B/driver", "used_memory MiB",
            "positions stream MiB (capped)"]  # fmt: skip
    return _table(head, rows)


def ingest_table(data: dict[str, Any]) -> str:
    rows = []
    for p in data["phases"]:
        cpu = p["cpu_cores"]
        rows.append(
            [
                p["label"], _n(p["per_s"]), _n(p["rows_per_s"]),
                _n(p["per_server_cpu_s"]) if p.get("per_server_cpu_s") else "-", _ms(p["p50_ms"]),
                _ms(p["p99_ms"]), str(p["concurrency"]),
                f"{cpu.get('server', cpu.get('bench', 0)):.2f}", f"{cpu.get('redis', 0):.2f}",
                f"{cpu.get('loadgen', 0):.2f}", f"{cpu.get('other', 0):.2f}",
            ]
        )  # fmt: skip
    head = ["phase", "requests/s", "rows/s", "requests per server CPU s", "p50 ms", "p99 ms",
            "in flight", "server cores", "redis cores", "loadgen cores", "other load"]  # fmt: skip
    return _table(head, rows)


def targets(search: dict[str, Any] | None, ingest: dict[str, Any] | None) -> str:
    """The targets from the issues, each with the measured value and whether it is met."""
    rows: list[Row] = []

    def add(name: str, value: str, met: bool) -> None:
        rows.append([name, value, "met" if met else "**not met**"])

    if search:
        by = {r["drivers"]: r for r in search["sizes"]}
        big, small = by.get(max(by)), by.get(min(by))
        if big:
            add(f"ours >= 50x the q/s of 2 km GEOSEARCH at {_n(big['drivers'])}",
                f"{big['ratio_qps']:.1f}x", big["ratio_qps"] >= 50)  # fmt: skip
            if "ratio_redis_capacity" in big:
                cap = big["ratio_redis_capacity"]
                add("the same, by Redis time per query", f"{cap:.1f}x", cap >= 50)
        gis = [r for r in search["sizes"] if "postgis" in r]
        if gis:
            low = min(gis, key=lambda r: r["ratio_qps_vs_postgis"])
            add("ours >= PostGIS KNN q/s (every size)",
                f"{low['ratio_qps_vs_postgis']:.2f}x at {_n(low['drivers'])}",
                low["ratio_qps_vs_postgis"] >= 1)  # fmt: skip
        worst = max(search["sizes"], key=lambda r: r["ours"]["p99_ms"])
        add("ours p99 < 5 ms (worst size)",
            f"{_ms(worst['ours']['p99_ms'])} ms at {_n(worst['drivers'])}",
            worst["ours"]["p99_ms"] < 5)  # fmt: skip
        if big and small and big is not small:
            growth = big["ours"]["p99_ms"] / small["ours"]["p99_ms"]
            add(f"ours p99 at {_n(big['drivers'])} <= 2x p99 at {_n(small['drivers'])}",
                f"{growth:.2f}x", growth <= 2)  # fmt: skip
    if ingest:
        r = ingest["ratios"]
        add("single updates >= 70% of bare FastAPI + GEOADD", f"{r['single_vs_bare']:.0%}",
            r["single_vs_bare"] >= 0.7)  # fmt: skip
        if "single_vs_bare_per_server_cpu" in r:
            per_cpu = r["single_vs_bare_per_server_cpu"]
            add("the same, per second of server CPU", f"{per_cpu:.0%}", per_cpu >= 0.7)
        add("batched rows/s >= 50% of raw pipelined GEOADD",
            f"{r['batch_vs_raw_pipelined']:.0%}", r["batch_vs_raw_pipelined"] >= 0.5)  # fmt: skip
    return _table(["target", "measured", "verdict"], rows)


def trips_table(data: dict[str, Any]) -> str:
    rows = [
        [
            p["label"], _n(p["requests_per_s"]), _ms(p["p50_ms"]), _ms(p["p95_ms"]),
            _ms(p["p99_ms"]), f"{p['offered_share']:.1%}",
            ", ".join(f"{k} {v}" for k, v in sorted(p["fare_sources"].items())),
            f"{p['cpu_cores'].get('server', 0):.2f}", f"{p['cpu_cores'].get('other', 0):.2f}",
        ]
        for p in data["phases"]
    ]  # fmt: skip
    head = ["pricing", "requests/s", "p50 ms", "p95 ms", "p99 ms", "offered", "fare.source",
            "server cores", "other load"]  # fmt: skip
    b = data["bookings"]
    return _table(head, rows) + (
        f"\n\nDouble bookings: {b['double_bookings']} ({b['live_trips']:,} live trips,"
        f" {b['drivers_scanned']:,} drivers scanned)."
    )


def limiter_table(data: dict[str, Any]) -> str:
    rows = [
        [p["label"], _n(p["per_s"]), _ms(p["p50_ms"]), _ms(p["p99_ms"]),
         f"{p['cpu_cores'].get('redis', 0):.2f}"]
        for p in data["phases"]
    ]  # fmt: skip
    return _table(["limiter", "decisions/s", "p50 ms", "p99 ms", "redis cores"], rows)


def more_targets(trips: dict[str, Any] | None, limiter: dict[str, Any] | None) -> list[Row]:
    rows: list[Row] = []
    if trips:
        by = {p["label"]: p for p in trips["phases"]}
        n = _n(trips["config"]["drivers"])
        p99 = by["healthy"]["p99_ms"]
        rows.append([f"trip p99 < 20 ms at {trips['config']['rate']:g}/s, {n} drivers",
                     f"{_ms(p99)} ms", "met" if p99 < 20 else "**not met**"])  # fmt: skip
        gap = trips["down_minus_healthy_p99_ms"]
        rows.append(["pricing down (breaker open): p99 within 2 ms of healthy",
                     f"{gap:+.2f} ms", "met" if gap <= 2 else "**not met**"])  # fmt: skip
        dbl = trips["bookings"]["double_bookings"]
        rows.append(["double bookings = 0", str(dbl), "met" if dbl == 0 else "**not met**"])
    if limiter:
        r = limiter["ours_vs_trivial_evalsha"]
        rows.append(["limiter >= 80% of a trivial EVALSHA", f"{r:.0%}",
                     "met" if r >= 0.8 else "**not met**"])  # fmt: skip
    return rows


def locust_table(data: dict[str, Any]) -> str:
    def row(r: dict[str, Any]) -> Row:
        return [r["name"], _n(r["requests"]), f"{r['per_s']:,.1f}", _ms(r["p50_ms"]),
                _ms(r["p95_ms"]), _ms(r["p99_ms"]), _n(r["failures"])]  # fmt: skip

    rows = [row(r) for r in sorted(data["requests"], key=lambda r: -r["requests"])]
    rows.append(row({**data["total"], "name": "**all**"}))
    head = ["request", "count", "requests/s", "p50 ms", "p95 ms", "p99 ms", "failures"]
    t, cpu = data["total"], data["cpu_cores"]
    cores = ", ".join(f"{k} {v:.2f}" for k, v in sorted(cpu.items()))
    return _table(head, rows) + (
        f"\n\nError rate {t['error_rate']:.2%} ({t['failures']} of {t['requests']:,});"
        f" cores: {cores}."
    )


_CLUSTER_PHASES = (("search", "nearest search"), ("ingest_batch", "batched updates (rows)"),
                   ("ingest_single", "single updates"))  # fmt: skip


def cluster_tables(data: dict[str, Any]) -> str:
    """Throughput, cost per operation, and the cluster's spread over its masters."""
    speed, cost = [], []
    for b in data["backends"]:
        for key, name in _CLUSTER_PHASES:
            p = b["phases"][key]
            cpu = p["cpu_cores"]
            speed.append([b["label"], name, _n(p["rows_per_s"]), _ms(p["p50_ms"]),
                          _ms(p["p99_ms"]), str(p["concurrency"]), f"{_other(p):.2f}"])  # fmt: skip
            cost.append([b["label"], name, _n(p["client_cpu_us_per_op"]),
                         _n(p["redis_cpu_us_per_op"]), _n(p["replica_cpu_us_per_op"]),
                         f"{p['script_calls_per_op']:.2f}", f"{p['commands_per_op']:.1f}",
                         f"{cpu.get('bench', 0):.2f}", f"{cpu.get('redis', 0):.2f}"])  # fmt: skip
    masters = [
        [m["node"], _n(m["keys"]), f"{m['keys_share']:.0%}", str(m["driver_shards"]),
         str(m["index_cells"]) + (" + cell set" if m["holds_cell_set"] else ""),
         *(f"{m['commands_share'][key]:.0%}" for key, _ in _CLUSTER_PHASES)]
        for m in data["spread"]
    ]  # fmt: skip
    c = data["check"]
    agreement = (
        f"Answers at {c['points']} query points: cells identical to one slot at "
        f"{c['cells_identical']}, the cluster at {c['cluster_identical']}; one slot the same as a "
        f"brute force at {c['one_slot_same_as_brute']}/{c['brute_checked']}."
    )
    return "\n\n".join([
        _table(["backend", "phase", "per s", "p50 ms", "p99 ms", "in flight", "other load"],
               speed),
        _table(["backend", "phase", "client CPU µs/op", "Redis CPU µs/op", "replicas CPU µs/op",
                "script calls/op", "commands/op", "client cores", "Redis cores"], cost),
        _table(["master", "keys", "keys share", "driver shards", "index cells", "search commands",
                "batched commands", "single commands"], masters),
        agreement,
    ])  # fmt: skip
