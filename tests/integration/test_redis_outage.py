"""Redis unreachable: every call that needs it answers 503 with Retry-After, and never hangs.

The per-test timeout is the only clock here: a hang fails the test, a slow machine does not.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from ridehail.app import create_app
from tests.conftest import ROOMY_RATE_LIMITS, make_settings, require_redis_server
from tests.fleet import HELSINKI, PROBLEM_JSON, eventually, register
from tests.support import ADMIN_TOKEN, app_running, free_port, running_redis

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PING = {"lat": HELSINKI.lat, "lng": HELSINKI.lng}

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def real_redis() -> None:
    require_redis_server()


@contextlib.asynccontextmanager
async def serving(redis_url: str, timeout_s: float = 0.5) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its own Redis client for `redis_url`, as `ridehail serve` makes it."""
    settings = make_settings(REDIS_URL=redis_url, redis_timeout_s=timeout_s, **ROOMY_RATE_LIMITS)
    app = create_app(settings)
    async with app_running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ridehail") as client:
            yield client


@pytest.fixture
async def nowhere() -> AsyncIterator[httpx.AsyncClient]:
    """The app pointed at a port where nothing listens."""
    async with serving(f"redis://127.0.0.1:{free_port()}/0") as client:
        yield client


def assert_unavailable(reply: httpx.Response) -> None:
    assert reply.status_code == 503, reply.text
    assert reply.headers["content-type"] == PROBLEM_JSON
    assert int(reply.headers["retry-after"]) >= 1
    assert reply.json()["status"] == 503


async def test_with_redis_unreachable_a_location_update_is_503_with_retry_after(
    nowhere: httpx.AsyncClient,
) -> None:
    reply = await nowhere.put("/v1/drivers/drv_0123456789abcdef/location", json=PING, headers=ADMIN)
    assert_unavailable(reply)


async def test_with_redis_unreachable_readiness_is_503_but_health_is_200(
    nowhere: httpx.AsyncClient,
) -> None:
    assert_unavailable(await nowhere.get("/readyz"))
    assert (await nowhere.get("/healthz")).status_code == 200


async def test_with_redis_unreachable_a_driver_token_cannot_be_checked_so_it_is_503_not_401(
    nowhere: httpx.AsyncClient,
) -> None:
    token = "drv_0123456789abcdef.some-secret"
    reply = await nowhere.put(
        "/v1/drivers/drv_0123456789abcdef/location",
        json=PING,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert_unavailable(reply)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/drivers", {"name": "Aino"}),
        ("POST", "/v1/drivers/locations", {"updates": [{"driver_id": "drv_1", **PING}]}),
        ("PUT", "/v1/drivers/drv_0123456789abcdef/status", {"status": "available"}),
        ("GET", "/v1/drivers/drv_0123456789abcdef", None),
        ("GET", "/v1/drivers/nearby?lat=60.17&lng=24.94", None),
    ],
)
async def test_with_redis_unreachable_every_supply_call_is_503(
    nowhere: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    assert_unavailable(await nowhere.request(method, path, json=body, headers=ADMIN))


async def test_a_redis_that_stops_answering_gives_503_and_service_resumes_when_it_does(
    real_redis: None,
) -> None:
    with running_redis() as url:
        async with aioredis.Redis.from_url(url) as probe:
            pid = int((await probe.info("server"))["process_id"])
        async with serving(url, timeout_s=1.0) as client:
            driver = await register(client)
            os.kill(pid, signal.SIGSTOP)
            try:
                reply = await client.put(f"{driver.path}/location", json=PING, headers=ADMIN)
                assert_unavailable(reply)
                assert_unavailable(await client.get("/readyz"))
            finally:
                os.kill(pid, signal.SIGCONT)

            async def resumed() -> bool:
                reply = await client.put(f"{driver.path}/location", json=PING, headers=ADMIN)
                return reply.status_code == 200

            await eventually(resumed)


async def test_after_redis_restarts_on_the_same_port_the_app_serves_again_without_a_restart(
    real_redis: None,
) -> None:
    port = free_port()
    with contextlib.ExitStack() as first_redis:
        first_redis.enter_context(running_redis(port=port))
        # A refused connection fails at once; the roomy timeout only spares a loaded machine.
        async with serving(f"redis://127.0.0.1:{port}/0", timeout_s=5) as client:
            driver = await register(client)
            reply = await client.put(f"{driver.path}/location", json=PING, headers=driver.headers)
            assert reply.status_code == 200

            first_redis.close()  # kill it
            assert_unavailable(await client.get("/readyz"))
            assert_unavailable(await client.post("/v1/drivers", json={"name": "Aino"}))

            with running_redis(port=port):

                async def ready() -> bool:
                    return (await client.get("/readyz")).status_code == 200

                await eventually(ready)
                # The new Redis is empty: a new driver registers and pings as before.
                driver = await register(client)
                reply = await client.put(
                    f"{driver.path}/location", json=PING, headers=driver.headers
                )
                assert reply.status_code == 200, reply.text
                assert reply.json()["applied"] is True
