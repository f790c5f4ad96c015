"""A pricing outage end to end: `ridehail pricing` and `ridehail serve` as real processes on a
real redis-server. The pricing process is stopped outright while the breaker is open: trip
requests still get fallback fares at once, and no probe (no half-open transition) and no call
happen until the reset time; then pricing comes back and a single probe closes the breaker."""

from __future__ import annotations

import concurrent.futures
import contextlib
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import free_port, running_ridehail

pytestmark = pytest.mark.e2e

RIDEHAIL = str(Path(sys.executable).with_name("ridehail"))
RESET_S = 2.0
ROOMY = {
    "RIDEHAIL_LIMIT_REGISTRATIONS": "100000/60",
    "RIDEHAIL_LIMIT_TRIP_REQUESTS": "100000/60",
    "RIDEHAIL_ACCESS_LOG": "false",
    "RIDEHAIL_SWEEP_INTERVAL_S": "3600",
    "RIDEHAIL_WORKER_INTERVAL_S": "3600",
}
TRIP = {"pickup": {"lat": 60.1699, "lng": 24.9384}, "dropoff": {"lat": 60.19, "lng": 24.96}}


@contextlib.contextmanager
def running_pricing(port: int, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [RIDEHAIL, "pricing", "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, "ridehail pricing exited"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                    break
            assert time.monotonic() < deadline, "ridehail pricing never became healthy"
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=10)


def samples(api: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{api}/metrics", timeout=5).text
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def value(api: str, name: str, **labels: str) -> float:
    return samples(api).get((name, frozenset(labels.items())), 0.0)


def pricing_calls(api: str) -> float:
    return sum(v for (n, _), v in samples(api).items() if n == "ridehail_pricing_calls_total")


def transitions(api: str, to: str) -> float:
    return value(api, "ridehail_breaker_transitions_total", breaker="pricing", to=to)


def state(api: str) -> int:
    return int(value(api, "ridehail_breaker_state", breaker="pricing"))


def rider(api: str) -> dict[str, str]:
    body = httpx.post(f"{api}/v1/riders", json={"name": "r"}, timeout=5).json()
    return {"Authorization": f"Bearer {body['token']}"}


def trip(api: str, headers: dict[str, str]) -> dict[str, Any]:
    """A trip request (no drivers: it ends no_driver at once, so the rider may ask again)."""
    reply = httpx.post(
        f"{api}/v1/trips",
        json=TRIP,
        headers={**headers, "Idempotency-Key": secrets.token_hex(8)},
        timeout=10,
    )
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_pricing_down_then_gone_then_back_with_real_processes(redis_url: str) -> None:
    port = free_port()
    env = {
        **ROOMY,
        "PRICING_URL": f"http://127.0.0.1:{port}",
        "RIDEHAIL_KEY_PREFIX": "e" + secrets.token_hex(4),
        "RIDEHAIL_PRICING_BREAKER_FAIL_MAX": "3",
        "RIDEHAIL_PRICING_BREAKER_RESET_S": str(RESET_S),
        "RIDEHAIL_PRICING_MAX_ATTEMPTS": "1",
        "RIDEHAIL_PRICING_ATTEMPT_TIMEOUT_S": "1.0",
        "RIDEHAIL_PRICING_DEADLINE_S": "1.0",
    }
    with running_pricing(port) as pricing, running_ridehail(redis_url, **env) as api:
        riders = [rider(api) for _ in range(6)]
        assert trip(api, riders[0])["fare"]["source"] == "pricing"
        assert state(api) == 0

        httpx.put(f"http://127.0.0.1:{port}/faults", json={"down": True}, timeout=5)
        sources = [trip(api, riders[0])["fare"]["source"] for _ in range(3)]
        opened_at = time.monotonic()
        assert sources == ["fallback"] * 3
        assert state(api) == 2

        stop(pricing)  # gone: any call now would be a refused connection, counted as an outage
        calls, probes = pricing_calls(api), transitions(api, "half-open")
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            assert trip(api, riders[0])["fare"]["source"] == "fallback"
            timings.append(time.perf_counter() - started)
        assert time.monotonic() - opened_at < RESET_S, "too slow to stay inside the open window"
        assert pricing_calls(api) == calls
        assert transitions(api, "half-open") == probes  # no probe, so no call left the process
        assert state(api) == 2
        print(f"trip requests with pricing gone, breaker open: max {max(timings) * 1000:.0f} ms")
        assert max(timings) < 0.5

        with running_pricing(port, "--latency-ms", "600"):
            time.sleep(max(0.0, opened_at + RESET_S + 0.05 - time.monotonic()))
            ok_before = value(api, "ridehail_pricing_calls_total", outcome="ok")
            closed_before = transitions(api, "closed")
            with concurrent.futures.ThreadPoolExecutor(len(riders)) as pool:
                burst = list(pool.map(lambda h: trip(api, h)["fare"]["source"], riders))
            assert sorted(burst) == ["fallback"] * 5 + ["pricing"]
            assert value(api, "ridehail_pricing_calls_total", outcome="ok") - ok_before == 1
            assert transitions(api, "half-open") == probes + 1
            assert transitions(api, "closed") == closed_before + 1
            assert state(api) == 0
            assert trip(api, riders[0])["fare"]["source"] == "pricing"
