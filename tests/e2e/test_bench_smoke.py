"""`ridehail bench all` at the smallest size: it finishes and writes well-formed results.

A smoke run, not a measurement: nothing here is timed, and no figure is held to a target
(on a loaded CI machine they mean nothing). What is checked is that every bench ran its
phases, wrote its JSON and its plot, and that its correctness checks held: the search's
answers against brute force and the trips' double-booking scan.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_redis_server

pytestmark = [pytest.mark.e2e, pytest.mark.real_redis, pytest.mark.timeout(300)]

RIDEHAIL = str(Path(sys.executable).with_name("ridehail"))
BENCHES = ("search", "ingest", "trips", "limiter")


def test_bench_all_at_the_smallest_size_writes_every_result(tmp_path: Path) -> None:
    require_redis_server()
    out = tmp_path / "out"
    argv = [RIDEHAIL, "bench", "all", "--drivers", "1000", "--trip-drivers", "2000"]
    argv += ["--seconds", "1", "--rounds", "1", "--quiet-wait", "0", "--out", str(out)]
    argv += ["--no-postgis", "--no-profile", "--no-variants", "--no-docs"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "done" in done.stderr  # progress goes to stderr, a line per phase

    data = {name: json.loads((out / f"{name}.json").read_text()) for name in BENCHES}
    for name in BENCHES:
        assert data[name]["machine"]["nproc"] >= 1
        assert (out / f"{name}.png").stat().st_size > 0

    [size] = data["search"]["sizes"]
    assert size["drivers"] == 1000
    assert size["check"]["ok"], size["check"]
    assert size["check"]["same_as_brute"] == size["check"]["brute_checked"] > 0
    assert size["ours"]["per_s"] > 0
    assert size["memory"]["by_key_bytes_per_driver"] > 0

    ingest = {p["label"]: p for p in data["ingest"]["phases"]}
    assert ingest["ridehail PUT /location"]["per_s"] > 0
    assert ingest["bare FastAPI + GEOADD"]["per_s"] > 0
    assert set(data["ingest"]["ratios"]) >= {"single_vs_bare", "batch_vs_raw_pipelined"}

    trips = data["trips"]
    assert [p["label"] for p in trips["phases"]][:3] == ["healthy", "slow", "down"]
    assert all(p["offered_share"] > 0 for p in trips["phases"])
    assert trips["bookings"]["drivers_scanned"] == 2000
    assert trips["bookings"]["double_bookings"] == 0

    assert data["limiter"]["ours_vs_trivial_evalsha"] > 0
    assert "## Trip request to offer" in (out / "summary.md").read_text()
