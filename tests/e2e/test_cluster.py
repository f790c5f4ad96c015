"""ridehail on a real Redis Cluster (3 masters, 3 replicas): real `serve` processes.

- A short simulated run over three API processes (`serve --workers 2` and another `serve`)
  spreads keys and commands over every master, and books no driver twice.
- A master killed mid-run: requests get quick 503s while the cluster fails over, then succeed
  again with no restart of ridehail, and still no driver is booked twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections import Counter

import httpx
import pytest

from dispatch.model import Position
from ridehail.devcluster import Cluster
from ridehail.redis_conn import connect_cluster
from tests.e2e.test_dispatch_concurrency import double_bookings
from tests.e2e.test_dispatch_crash import ADMIN, ask_for_trip, driver_at, new_rider, settings_env
from tests.fleet import HELSINKI, Driver, scatter
from tests.integration.trip_helpers import trip_events
from tests.support import running_ridehail

pytestmark = [pytest.mark.e2e, pytest.mark.real_redis, pytest.mark.timeout(180)]

CITY_HALF_SIDE_M = 15_000
PROBLEM_JSON = "application/problem+json"


def cluster_env(cluster: Cluster, prefix: str) -> dict[str, str]:
    return {
        **settings_env(prefix),
        "REDIS_CLUSTER_NODES": cluster.nodes_env,
        "RIDEHAIL_REDIS_TIMEOUT_S": "0.5",
        "RIDEHAIL_OFFER_TTL_S": "600",  # every claim is still held at the end, to be counted
    }


async def ping(api: httpx.AsyncClient, driver: Driver, at: Position) -> httpx.Response:
    body = {"lat": at.lat, "lng": at.lng}
    return await api.put(f"{driver.path}/location", json=body, headers=driver.headers)


async def live_double_bookings(cluster: Cluster, prefix: str) -> list[str]:
    client = connect_cluster(cluster.nodes_env, timeout_s=5, max_connections=16)
    try:
        return double_bookings(await trip_events(client, prefix))
    finally:
        await client.aclose()


async def test_a_simulated_run_over_three_processes_spreads_keys_and_load_over_every_master(
    redis_cluster: Cluster,
) -> None:
    await asyncio.to_thread(redis_cluster.wait_ready)
    await asyncio.to_thread(redis_cluster.flush_all)
    prefix = "c" + secrets.token_hex(4)
    rng = random.Random(secrets.randbits(32))
    with contextlib.ExitStack() as stack:
        apis = [
            stack.enter_context(
                running_ridehail(None, workers=workers, **cluster_env(redis_cluster, prefix))
            )
            for workers in (2, 1)  # `serve --workers 2`, and a second `serve` beside it
        ]
        async with (
            httpx.AsyncClient(base_url=apis[0], timeout=30) as one,
            httpx.AsyncClient(base_url=apis[1], timeout=30) as two,
        ):
            clients = [one, two]
            spots = [scatter(rng, HELSINKI, CITY_HALF_SIDE_M) for _ in range(120)]
            drivers = await asyncio.gather(
                *(driver_at(clients[i % 2], at) for i, at in enumerate(spots))
            )
            for _ in range(3):  # drivers on the move: a few rounds of pings from everyone
                replies = await asyncio.gather(
                    *(
                        ping(clients[i % 2], d, scatter(rng, HELSINKI, CITY_HALF_SIDE_M))
                        for i, d in enumerate(drivers)
                    )
                )
                assert {r.status_code for r in replies} == {200}
            riders = await asyncio.gather(*(new_rider(clients[i % 2]) for i in range(60)))
            trips = await asyncio.gather(
                *(
                    ask_for_trip(clients[i % 2], r, scatter(rng, HELSINKI, CITY_HALF_SIDE_M))
                    for i, r in enumerate(riders)
                )
            )
            assert {t.status_code for t in trips} == {201}
            states = Counter(t.json()["state"] for t in trips)
            summary = (await one.get("/v1/ops/summary", headers=ADMIN)).json()
    stats = await asyncio.to_thread(redis_cluster.per_master_stats)
    keys = {port: s["keys"] for port, s in stats.items()}
    commands = {port: s["commands"] for port, s in stats.items()}
    print(f"\ncluster spread: keys per master {keys}, commands per master {commands}, {states}")
    assert len(stats) == 3
    # Riders, trips, drivers and index cells are spread by hash tag: no master is left out,
    # and none holds or serves most of it.
    for counts in (keys, commands):
        total = sum(counts.values())
        assert all(0.1 * total < n < 0.6 * total for n in counts.values()), counts
    assert states["offered"] >= 50  # 120 drivers over the city, 60 requests
    assert summary["drivers"]["holding_offers"] == states["offered"]
    assert await live_double_bookings(redis_cluster, prefix) == []


async def test_a_master_killed_mid_run_gives_quick_503s_then_ridehail_carries_on(
    redis_cluster: Cluster,
) -> None:
    await asyncio.to_thread(redis_cluster.wait_ready)
    prefix = "c" + secrets.token_hex(4)
    rng = random.Random(secrets.randbits(32))
    with running_ridehail(None, **cluster_env(redis_cluster, prefix)) as base:
        async with httpx.AsyncClient(base_url=base, timeout=10) as api:
            spots = [scatter(rng, HELSINKI, 3_000) for _ in range(40)]
            drivers = await asyncio.gather(*(driver_at(api, at) for at in spots))
            riders = await asyncio.gather(*(new_rider(api) for _ in range(200)))
            outcomes: list[tuple[float, float, int, str]] = []  # (start, seconds, status, type)
            started = time.monotonic()
            stop = asyncio.Event()

            async def load(worker: int) -> None:
                n = 0
                while not stop.is_set():
                    n += 1
                    t0 = time.monotonic()
                    if n % 4 == 0 and riders:
                        reply = await ask_for_trip(api, riders.pop(), scatter(rng, HELSINKI, 3_000))
                    else:
                        driver = drivers[(worker * 7 + n) % len(drivers)]
                        reply = await ping(api, driver, scatter(rng, HELSINKI, 3_000))
                    kind = reply.headers.get("content-type", "")
                    outcomes.append((t0 - started, time.monotonic() - t0, reply.status_code, kind))
                    await asyncio.sleep(0.02)

            workers = [asyncio.create_task(load(w)) for w in range(4)]
            await asyncio.sleep(1.0)
            victim = redis_cluster.masters()[0]
            killed_at = time.monotonic() - started
            await asyncio.to_thread(redis_cluster.stop_master, victim)
            await asyncio.to_thread(redis_cluster.wait_failover, victim)
            promoted_at = time.monotonic() - started
            await asyncio.sleep(3.0)
            stop.set()
            await asyncio.gather(*workers)
            await asyncio.to_thread(redis_cluster.restart, victim)

    during = [o for o in outcomes if killed_at <= o[0] < promoted_at]
    after = [o for o in outcomes if o[0] >= promoted_at + 1.5]
    statuses = Counter(o[2] for o in outcomes)
    slowest = max(o[1] for o in outcomes)
    print(
        f"\nfailover: killed at {killed_at:.2f}s, promoted at {promoted_at:.2f}s; "
        f"statuses {dict(statuses)}; during {Counter(o[2] for o in during)}; "
        f"after {Counter(o[2] for o in after)}; slowest reply {slowest:.2f}s"
    )
    assert set(statuses) <= {200, 201, 503}, statuses
    assert any(o[2] == 503 for o in during), "no request noticed the master was gone"
    assert all(o[3].startswith(PROBLEM_JSON) for o in outcomes if o[2] == 503)
    assert slowest < 2.5, "a request hung during the failover"
    assert after
    assert all(o[2] in {200, 201} for o in after), Counter(o[2] for o in after)
    assert await live_double_bookings(redis_cluster, prefix) == []
