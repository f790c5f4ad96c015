"""Redis killed (SIGKILL) and restarted, or frozen (SIGSTOP) and thawed, under load through a real
`ridehail serve`: quick 503s with Retry-After, no hung request, recovery without restarting the
API, and with `appendfsync always` no acknowledged trip lost and no driver double-booked.

Run with `-s` to see the figures docs/reliability.md quotes.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from tests.conftest import require_redis_server
from tests.e2e.test_dispatch_concurrency import double_bookings
from tests.fleet import HELSINKI, PROBLEM_JSON, offset
from tests.integration.trip_helpers import (
    DROPOFF,
    assert_legal_history,
    by_trip,
    trip_events,
)
from tests.support import free_port, redis_server_binary, running_ridehail

pytestmark = [pytest.mark.e2e, pytest.mark.real_redis, pytest.mark.timeout(90)]

CLIENT_TIMEOUT_S = 3.0  # a request slower than this counts as a hang
RIDERS = 8
DRIVERS = 6


# -- a redis-server whose data directory outlives it ---------------------------------------------
class DurableRedis:
    """A redis-server with AOF on a fixed port and a directory kept across kills and restarts."""

    def __init__(self, workdir: str, fsync: str = "always") -> None:
        self.port = free_port()
        self.workdir = workdir
        self.fsync = fsync
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = redis_server_binary()
        assert binary
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", self.fsync, "--dir", self.workdir]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            assert self.proc.poll() is None, f"redis-server exited with {self.proc.returncode}"
            with (
                contextlib.suppress(redis.RedisError),
                redis.Redis(port=self.port, socket_timeout=1) as probe,
            ):
                # Our own process, done loading the AOF.
                if int(probe.info("server")["process_id"]) == self.proc.pid and probe.ping():
                    return
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)


@contextlib.contextmanager
def durable_redis(fsync: str = "always") -> Iterator[DurableRedis]:
    with tempfile.TemporaryDirectory(prefix="ridehail-aof-") as workdir:
        server = DurableRedis(workdir, fsync)
        server.start()
        try:
            yield server
        finally:
            server.close()


def serve_env(prefix: str, redis_timeout_s: float) -> dict[str, str]:
    return {
        "RIDEHAIL_KEY_PREFIX": prefix,
        "RIDEHAIL_REDIS_TIMEOUT_S": str(redis_timeout_s),
        "RIDEHAIL_OFFER_TTL_S": "2",
        "RIDEHAIL_WORKER_INTERVAL_S": "0.2",
        "RIDEHAIL_LIMIT_REGISTRATIONS": "1000000/1",
        "RIDEHAIL_LIMIT_LOCATION_UPDATES": "1000000/1",
        "RIDEHAIL_LIMIT_TRIP_REQUESTS": "1000000/1",
        "RIDEHAIL_ACCESS_LOG": "false",
    }


# -- the load ------------------------------------------------------------------------------------
@dataclass
class Tally:
    """What the load saw: replies by kind, acknowledged trips, and how slow a 503 could be."""

    sent: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    acked: dict[str, str] = field(default_factory=dict)  # trip_id -> the rider's token
    slowest_503_ms: float = 0.0
    bad_503s: list[str] = field(default_factory=list)
    last_success: float = 0.0

    async def send(
        self, api: httpx.AsyncClient, method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        self.sent += 1
        started = time.monotonic()
        try:
            reply = await api.request(method, path, **kwargs)
        except httpx.TimeoutException:
            self.kinds["timeout"] += 1
            return None
        except httpx.TransportError as exc:
            self.kinds[f"transport:{type(exc).__name__}"] += 1
            return None
        elapsed_ms = (time.monotonic() - started) * 1000
        self.kinds[str(reply.status_code)] += 1
        if reply.status_code == 503:
            self.slowest_503_ms = max(self.slowest_503_ms, elapsed_ms)
            if (
                reply.headers.get("content-type") != PROBLEM_JSON
                or int(reply.headers.get("retry-after", "0")) < 1
            ):
                self.bad_503s.append(f"{path}: {reply.headers} {reply.text[:200]}")
        elif reply.status_code < 300:
            self.last_success = time.monotonic()
        return reply

    def errors(self) -> dict[str, int]:
        return {k: n for k, n in sorted(self.kinds.items()) if not k.startswith("2")}


async def register(api: httpx.AsyncClient, kind: str) -> tuple[str, str]:
    reply = await api.post(f"/v1/{kind}", json={"name": f"{kind}-{secrets.token_hex(3)}"})
    assert reply.status_code == 201, reply.text
    body = reply.json()
    return body["driver_id" if kind == "drivers" else "rider_id"], body["token"]


async def rider_loop(
    api: httpx.AsyncClient, tally: Tally, token: str, index: int, stop: asyncio.Event
) -> None:
    """Request a trip (retrying a failure with the same Idempotency-Key), then cancel it."""
    headers = {"Authorization": f"Bearer {token}"}
    pickup = offset(HELSINKI, 100 * index, -50 * index)
    body = {
        "pickup": {"lat": pickup.lat, "lng": pickup.lng},
        "dropoff": {"lat": DROPOFF.lat, "lng": DROPOFF.lng},
    }
    key = f"idem-{secrets.token_hex(8)}"
    for _ in range(2_000):  # bounded; `stop` ends it long before
        if stop.is_set():
            return
        reply = await tally.send(
            api, "POST", "/v1/trips", json=body, headers={**headers, "Idempotency-Key": key}
        )
        if reply is not None and reply.status_code in (200, 201):
            trip_id = reply.json()["trip_id"]
            tally.acked[trip_id] = token
            for _ in range(500):
                done = await tally.send(api, "POST", f"/v1/trips/{trip_id}/cancel", headers=headers)
                if (done is not None and done.status_code in (200, 409)) or stop.is_set():
                    break
                await asyncio.sleep(0.05)
            key = f"idem-{secrets.token_hex(8)}"
        await asyncio.sleep(0.03)


async def driver_loop(
    api: httpx.AsyncClient, tally: Tally, driver_id: str, token: str, stop: asyncio.Event
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    at = offset(HELSINKI, secrets.randbelow(800), secrets.randbelow(800))
    for _ in range(2_000):
        if stop.is_set():
            return
        await tally.send(
            api,
            "PUT",
            f"/v1/drivers/{driver_id}/location",
            json={"lat": at.lat, "lng": at.lng},
            headers=headers,
        )
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def loaded(base: str) -> AsyncIterator[tuple[httpx.AsyncClient, Tally, Load]]:
    """Riders and drivers sending requests over HTTP until the block ends; the client stays
    open for the checks that follow."""
    limits = httpx.Limits(max_connections=RIDERS + DRIVERS + 4)
    async with httpx.AsyncClient(base_url=base, timeout=CLIENT_TIMEOUT_S, limits=limits) as api:
        drivers = [await register(api, "drivers") for _ in range(DRIVERS)]
        for driver_id, token in drivers:
            reply = await api.put(
                f"/v1/drivers/{driver_id}/status",
                json={"status": "available"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert reply.status_code == 200, reply.text
        riders = [await register(api, "riders") for _ in range(RIDERS)]
        tally = Tally()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(driver_loop(api, tally, d, t, stop)) for d, t in drivers]
        tasks += [
            asyncio.create_task(rider_loop(api, tally, t, i, stop))
            for i, (_, t) in enumerate(riders)
        ]
        load = Load(stop, tasks)
        try:
            yield api, tally, load
        finally:
            await load.end()


@dataclass
class Load:
    stop: asyncio.Event
    tasks: list[asyncio.Task[None]]

    async def end(self) -> None:
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks), timeout=30)


async def recovered(tally: Tally, since: float, within_s: float = 20.0) -> float:
    """Seconds from `since` until a request succeeded again (the load keeps going meanwhile)."""
    deadline = time.monotonic() + within_s
    while tally.last_success <= since:
        assert time.monotonic() < deadline, f"no request succeeded within {within_s} s"
        await asyncio.sleep(0.05)
    return tally.last_success - since


async def lost_trips(api: httpx.AsyncClient, acked: dict[str, str]) -> list[str]:
    """Acknowledged trips that their rider can no longer read."""
    lost = []
    for trip_id, token in acked.items():
        reply = await api.get(f"/v1/trips/{trip_id}", headers={"Authorization": f"Bearer {token}"})
        if reply.status_code != 200 or reply.json()["trip_id"] != trip_id:
            lost.append(f"{trip_id}: {reply.status_code}")
    return lost


async def booking_audit(url: str, prefix: str) -> tuple[int, list[str]]:
    """Trips in the event streams, and every double booking found by replaying them."""
    async with aioredis.Redis.from_url(url, socket_timeout=5) as client:
        events = await trip_events(client, prefix)
    for trip_id, history in by_trip(events).items():
        assert_legal_history(trip_id, history)
    return len(by_trip(events)), double_bookings(events)


def report(name: str, tally: Tally, **figures: object) -> None:
    extra = " ".join(f"{k}={v}" for k, v in figures.items())
    print(
        f"\n[{name}] requests={tally.sent} errors={tally.errors()} "
        f"acknowledged_trips={len(tally.acked)} slowest_503_ms={tally.slowest_503_ms:.0f} {extra}"
    )


@pytest.fixture
def real_redis() -> None:
    require_redis_server()


# -- the tests -----------------------------------------------------------------------------------
async def test_redis_killed_and_restarted_with_aof_always_loses_no_acknowledged_trip(
    real_redis: None,
) -> None:
    prefix = "f" + secrets.token_hex(4)
    with (
        durable_redis("always") as store,
        running_ridehail(store.url, **serve_env(prefix, redis_timeout_s=1.0)) as base,
    ):
        async with loaded(base) as (api, tally, load):
            await asyncio.sleep(2.5)
            before = len(tally.acked)
            killed_at = time.monotonic()
            store.kill()
            await asyncio.sleep(2.5)
            during = dict(tally.kinds)
            store.start()  # same port, same directory: the AOF is replayed
            restarted_at = time.monotonic()
            recovery_s = await recovered(tally, restarted_at)
            await asyncio.sleep(2.0)  # and it keeps working
            successes_after = tally.last_success
            await load.end()
            lost = await lost_trips(api, tally.acked)
        trips, booked = await booking_audit(store.url, prefix)

    report(
        "redis SIGKILL + restart, appendfsync always",
        tally,
        faults="1xSIGKILL",
        down_s=round(restarted_at - killed_at, 1),
        acked_before_kill=before,
        recovery_s=round(recovery_s, 2),
        acknowledged_lost=len(lost),
        trips_in_streams=trips,
        double_bookings=len(booked),
    )
    assert tally.kinds["timeout"] == 0, tally.kinds
    assert not [k for k in tally.kinds if k.startswith("transport")], tally.kinds
    assert not [k for k in tally.kinds if k.startswith("5") and k != "503"], tally.kinds
    assert during.get("503", 0) > 0, "the outage was never seen"
    assert not tally.bad_503s, tally.bad_503s[:3]
    assert tally.slowest_503_ms < CLIENT_TIMEOUT_S * 1000
    assert before > 0
    assert len(tally.acked) > before, "no trip was acknowledged after the restart"
    assert successes_after > restarted_at
    assert lost == [], lost
    assert booked == [], booked


async def test_redis_frozen_for_three_seconds_gives_quick_503s_and_recovers_on_its_own(
    real_redis: None,
) -> None:
    prefix = "f" + secrets.token_hex(4)
    with (
        durable_redis("always") as store,
        running_ridehail(store.url, **serve_env(prefix, redis_timeout_s=0.5)) as base,
    ):
        async with loaded(base) as (api, tally, load):
            await asyncio.sleep(2.0)
            store.signal(signal.SIGSTOP)
            try:
                frozen_at = time.monotonic()
                await asyncio.sleep(3.0)
                during = dict(tally.kinds)
                stuck_503_ms = tally.slowest_503_ms
            finally:
                store.signal(signal.SIGCONT)
            thawed_at = time.monotonic()
            recovery_s = await recovered(tally, thawed_at)
            await asyncio.sleep(1.5)
            await load.end()
            lost = await lost_trips(api, tally.acked)
        trips, booked = await booking_audit(store.url, prefix)

    report(
        "redis SIGSTOP 3 s + SIGCONT",
        tally,
        faults="1xSIGSTOP",
        frozen_s=round(thawed_at - frozen_at, 1),
        slowest_503_while_frozen_ms=round(stuck_503_ms),
        recovery_s=round(recovery_s, 2),
        acknowledged_lost=len(lost),
        trips_in_streams=trips,
        double_bookings=len(booked),
    )
    assert tally.kinds["timeout"] == 0, tally.kinds
    assert not [k for k in tally.kinds if k.startswith("transport")], tally.kinds
    assert not [k for k in tally.kinds if k.startswith("5") and k != "503"], tally.kinds
    assert during.get("503", 0) > 0, "the freeze was never seen"
    assert not tally.bad_503s, tally.bad_503s[:3]
    assert lost == [], lost
    assert booked == [], booked
