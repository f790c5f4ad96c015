"""The limits hold across API processes: two `ridehail serve` processes on one redis-server share
every bucket, so a client spreading its calls over both gets no more than one bucket allows."""

from __future__ import annotations

import concurrent.futures
import contextlib
import secrets
from collections.abc import Callable

import httpx
import pytest

from tests.support import running_ridehail
from tests.unit.test_ratelimit_model import sf_item

pytestmark = pytest.mark.e2e

LIMITS = {
    "RIDEHAIL_LIMIT_REGISTRATIONS": "6/60",
    "RIDEHAIL_LIMIT_TRIP_REQUESTS": "3/60",
    "RIDEHAIL_LIMIT_LOCATION_UPDATES": "4/60",
    "RIDEHAIL_ACCESS_LOG": "false",
    "RIDEHAIL_SWEEP_INTERVAL_S": "3600",
    "RIDEHAIL_WORKER_INTERVAL_S": "3600",
}


def at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def test_two_api_processes_share_every_bucket(redis_url: str) -> None:
    env = {**LIMITS, "RIDEHAIL_KEY_PREFIX": "e" + secrets.token_hex(4)}
    with contextlib.ExitStack() as stack:
        apis = [stack.enter_context(running_ridehail(redis_url, **env)) for _ in range(2)]
        rider = httpx.post(f"{apis[0]}/v1/riders", json={"name": "r"}, timeout=5).json()
        driver = httpx.post(f"{apis[1]}/v1/drivers", json={"name": "d"}, timeout=5).json()

        # 12 registrations at once, half on each process: 4 tokens are left of 6
        registrations = at_once(
            [
                lambda api=api: httpx.post(f"{api}/v1/riders", json={"name": "x"}, timeout=10)
                for api in apis * 6
            ]
        )
        # 8 pings of one driver at once over both processes: its bucket holds 4
        ping_headers = {"Authorization": f"Bearer {driver['token']}"}
        pings = at_once(
            [
                lambda api=api: httpx.put(
                    f"{api}/v1/drivers/{driver['driver_id']}/location",
                    json={"lat": 60.17, "lng": 24.94},
                    headers=ping_headers,
                    timeout=10,
                )
                for api in apis * 4
            ]
        )
        # 6 trip requests of one rider, one after another, alternating processes: 3 get through
        trip_headers = {"Authorization": f"Bearer {rider['token']}"}
        trips = [
            httpx.post(
                f"{api}/v1/trips",
                json={"pickup": {"lat": 60.17, "lng": 24.94}, "dropoff": {"lat": 60.2, "lng": 25}},
                headers={**trip_headers, "Idempotency-Key": secrets.token_hex(8)},
                timeout=10,
            )
            for api in apis * 3
        ]

    assert sorted(r.status_code for r in registrations) == [201] * 4 + [429] * 8
    assert sorted(r.status_code for r in pings) == [200] * 4 + [429] * 4
    assert [r.status_code for r in trips] == [201, 201, 201, 429, 429, 429]
    for reply in [*registrations, *pings, *trips]:
        _, state = sf_item(reply.headers["RateLimit"])
        assert sf_item(reply.headers["RateLimit-Policy"])[1]["q"] in (6, 4, 3)
        if reply.status_code == 429:
            assert state["r"] == 0
            assert int(reply.headers["Retry-After"]) >= 1
    # whichever process answered, the remaining counts are one sequence
    remaining = sorted(sf_item(r.headers["RateLimit"])[1]["r"] for r in pings if r.is_success)
    assert remaining == [0, 1, 2, 3]
