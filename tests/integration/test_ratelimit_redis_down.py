"""When Redis is down the limited routes fail closed, fast: 503 problem+json with Retry-After.

The app here connects by itself (REDIS_URL, the production client: 0.5 s socket timeouts, one
retry on a broken connection only) to a redis-server this test owns, so it can kill it, or
freeze it with SIGSTOP (a hung server: connections open, nothing answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from ridehail.app import create_app
from tests.conftest import make_settings, require_redis_server
from tests.fleet import HELSINKI, PROBLEM_JSON, Driver, register
from tests.integration.trip_helpers import Rider, post_trip, register_rider
from tests.support import _wait_for_port, free_port, redis_server_binary

QUIET = {"sweep_interval_s": 3600, "worker_interval_s": 3600}  # no background Redis traffic
# A 503 is due within about a second; the bound is loose for a loaded 2-core test machine.
OUTAGE_ANSWER_S = 2.0


@dataclass
class OwnRedis:
    url: str
    port: int
    proc: subprocess.Popen[bytes]


@contextlib.contextmanager
def own_redis(port: int | None = None) -> Iterator[OwnRedis]:
    binary = redis_server_binary()
    assert binary
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="ridehail-redis-") as workdir:
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", workdir]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for_port(port, proc)
            yield OwnRedis(f"redis://127.0.0.1:{port}/0", port, proc)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait(timeout=10)


@contextlib.asynccontextmanager
async def app_on(url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(REDIS_URL=url, **QUIET))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ridehail") as client:
            yield client


@dataclass(frozen=True, slots=True)
class Timed:
    reply: httpx.Response
    seconds: float


async def limited_calls(
    client: httpx.AsyncClient, driver: Driver, rider: Rider
) -> dict[str, Timed]:
    """One call to each rate-limited route, timed."""
    calls = {
        "registration": lambda: client.post("/v1/riders", json={"name": "x"}),
        "ping": lambda: client.put(
            f"{driver.path}/location",
            json={"lat": HELSINKI.lat, "lng": HELSINKI.lng},
            headers=driver.headers,
        ),
        "trip request": lambda: post_trip(client, rider.headers),
    }
    timed = {}
    for name, call in calls.items():
        started = time.perf_counter()
        reply = await call()
        timed[name] = Timed(reply, time.perf_counter() - started)
    return timed


def assert_unavailable(timed: dict[str, Timed]) -> None:
    for name, t in timed.items():
        assert t.reply.status_code == 503, f"{name}: {t.reply.status_code} {t.reply.text}"
        assert t.reply.headers["content-type"] == PROBLEM_JSON
        assert t.reply.headers["Retry-After"] == "1"
        assert t.reply.json()["title"] == "Storage unavailable"
        assert t.seconds < OUTAGE_ANSWER_S, f"{name} took {t.seconds:.2f} s"


@pytest.fixture(autouse=True)
def _needs_redis_server() -> None:
    require_redis_server()


async def test_with_redis_stopped_limited_routes_answer_503_at_once_and_recover() -> None:
    with own_redis() as first:
        async with app_on(first.url) as client:
            driver, rider = await register(client), await register_rider(client)
            first.proc.kill()
            first.proc.wait()
            down = await limited_calls(client, driver, rider)
            with own_redis(port=first.port):  # back on the same port, empty
                back = await client.post("/v1/riders", json={"name": "again"})
    print({name: f"{t.seconds * 1000:.0f} ms" for name, t in down.items()})

    assert_unavailable(down)
    assert all(t.seconds < 0.5 for t in down.values())  # refused connections: no waiting
    # the pooled sockets died with the server; one retry on a broken connection gets through
    assert back.status_code == 201, back.text


async def test_with_redis_hung_limited_routes_answer_503_within_the_socket_timeout() -> None:
    with own_redis() as server:
        async with app_on(server.url) as client:
            driver, rider = await register(client), await register_rider(client)
            os.kill(server.proc.pid, signal.SIGSTOP)
            try:
                hung = await limited_calls(client, driver, rider)
            finally:
                os.kill(server.proc.pid, signal.SIGCONT)
            back = await client.post("/v1/riders", json={"name": "again"})
            me = await client.get(f"/v1/drivers/{driver.driver_id}", headers=driver.headers)
    print({name: f"{t.seconds * 1000:.0f} ms" for name, t in hung.items()})

    assert_unavailable(hung)
    assert all(t.seconds >= 0.45 for t in hung.values())  # it did wait for the 0.5 s timeout
    # no reply that arrived late is mistaken for the answer to a later command
    assert back.status_code == 201, back.text
    assert back.json()["rider_id"].startswith("rdr_")
    assert me.status_code == 200
    assert me.json()["driver_id"] == driver.driver_id


async def test_a_burst_larger_than_the_pool_against_a_hung_redis_is_all_503_within_a_second() -> (
    None
):
    """Requests beyond the pool wait for a connection (up to the timeout), then time out too."""
    with own_redis() as server:
        app = create_app(make_settings(REDIS_URL=server.url, redis_max_connections=8, **QUIET))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ridehail") as client:
                await client.post("/v1/riders", json={"name": "warm"})
                os.kill(server.proc.pid, signal.SIGSTOP)
                try:

                    async def register_timed() -> Timed:
                        started = time.perf_counter()
                        reply = await client.post("/v1/riders", json={"name": "x"})
                        return Timed(reply, time.perf_counter() - started)

                    burst = await asyncio.gather(*(register_timed() for _ in range(24)))
                finally:
                    os.kill(server.proc.pid, signal.SIGCONT)
    seconds = sorted(t.seconds for t in burst)
    print(
        f"24 registrations, pool of 8, Redis hung: 503 after {seconds[0] * 1000:.0f} ms"
        f" (fastest), {seconds[12] * 1000:.0f} ms (median), {seconds[-1] * 1000:.0f} ms (slowest)"
    )

    assert [t.reply.status_code for t in burst] == [503] * 24
    assert all(t.reply.headers["Retry-After"] == "1" for t in burst)
    assert seconds[-1] < OUTAGE_ANSWER_S
