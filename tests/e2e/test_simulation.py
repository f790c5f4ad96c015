"""The simulator and the demo, as real processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ridehail.sim.demo import port_free
from tests.support import free_port, running_ridehail

pytestmark = pytest.mark.e2e

RIDEHAIL = str(Path(sys.executable).with_name("ridehail"))
MANY = {"RIDEHAIL_LIMIT_REGISTRATIONS": "100000/60", "RIDEHAIL_ACCESS_LOG": "false"}


def test_a_short_simulation_completes_trips_with_no_invariant_violations(
    redis_url: str, tmp_path: Path
) -> None:
    summary_file = tmp_path / "summary.json"
    with running_ridehail(redis_url, **MANY) as api:
        done = subprocess.run(
            [RIDEHAIL, "simulate", "--drivers", "50", "--riders", "20", "--duration", "20",
             "--time-scale", "30", "--seed", "7", "--api", api, "--output", str(summary_file)],
            capture_output=True, text=True, timeout=90, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "trips requested" in done.stderr  # progress was shown while it ran
    summary = json.loads(summary_file.read_text())
    trips = summary["trips"]
    assert set(trips) == {"requested", "matched", "completed", "cancelled", "no_driver"}
    assert trips["requested"] >= trips["matched"] >= trips["completed"] >= 1
    assert summary["invariant_violations"] == 0
    assert summary["drivers"] == 50
    assert summary["riders"] == 20
    offer = summary["latency_s"]["request_to_offer"]
    assert offer["count"] >= 1
    assert offer["p50"] <= offer["p95"] <= offer["p99"]
    assert summary["http"].get("500", 0) == 0


def _wait_for(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered 200")


@pytest.mark.parametrize("stop", ["duration", "ctrl-c"])
def test_the_demo_serves_the_dashboard_and_the_api_and_stops_cleanly(stop: str) -> None:
    port, pricing_port = free_port(), free_port()
    argv = [RIDEHAIL, "demo", "--port", str(port), "--pricing-port", str(pricing_port),
            "--drivers", "20", "--riders", "5"]  # fmt: skip
    argv += ["--duration", "5"] if stop == "duration" else []
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/")
        _wait_for(f"http://127.0.0.1:{pricing_port}/healthz")
        assert httpx.get(f"http://127.0.0.1:{port}/v1/city").json()["streets"]
        if stop == "ctrl-c":
            time.sleep(2)
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-2000:]
    assert f"http://127.0.0.1:{port}/#token=" in out  # the dashboard URL was printed
    assert port_free(port)
    assert port_free(pricing_port)
