"""`ridehail bench cluster` at the smallest size: it finishes and writes well-formed results.

A smoke run, not a measurement: nothing here is timed.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_cluster_binaries

pytestmark = [pytest.mark.e2e, pytest.mark.real_redis, pytest.mark.timeout(180)]

RIDEHAIL = str(Path(sys.executable).with_name("ridehail"))
PHASES = {"search", "ingest_batch", "ingest_single"}


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def test_bench_cluster_at_the_smallest_size_writes_its_json_and_stops_its_servers(
    tmp_path: Path,
) -> None:
    require_cluster_binaries()
    out = tmp_path / "out"
    argv = [RIDEHAIL, "bench", "cluster", "--drivers", "300", "--seconds", "0.6", "--rounds", "2"]
    argv += ["--out", str(out), "--no-docs", "--no-profile", "--quiet-wait", "0"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=150, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    data = json.loads((out / "cluster.json").read_text())
    assert data["config"]["drivers"] == 300
    assert data["check"]["ok"], data["check"]
    assert [b["key"] for b in data["backends"]] == ["one_slot", "cells", "cluster"]
    for backend in data["backends"]:
        assert set(backend["phases"]) == PHASES
        for phase in backend["phases"].values():
            assert phase["per_s"] > 0
            assert phase["commands_per_op"] > 0
    for phase in ("ingest_batch", "ingest_single"):
        assert data["backends"][2]["phases"][phase]["applied_share"] > 0.9
    masters = data["spread"]
    assert len(masters) == 3
    assert sum(m["driver_shards"] for m in masters) == 16
    assert sum(m["keys"] for m in masters) >= 300  # a record per driver, at the least
    for phase in PHASES:
        assert sum(m["commands_share"][phase] for m in masters) == pytest.approx(1, abs=0.01)
    assert "Redis Cluster beside a single Redis" in (out / "summary.md").read_text()

    nodes = re.search(r"REDIS_CLUSTER_NODES=(\S+)", done.stderr)
    assert nodes, done.stderr[-3000:]
    ports = [int(node.rpartition(":")[2]) for node in nodes.group(1).split(",")]
    assert [port for port in ports if listening(port)] == []
