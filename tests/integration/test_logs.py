"""The JSON log lines: each names the rider, driver and trip its request concerns, and no token
or secret ever appears in them, whatever the request or its answer (2xx, 401, 403, 503).

Everything the process logs is captured at DEBUG through the production formatter, then read
back as JSON lines and searched for every secret the requests carried.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis

from ridehail.observability import JsonFormatter, redact
from ridehail.redis_conn import connect
from tests.conftest import make_settings
from tests.fleet import HELSINKI, available_at, offset, ping, register
from tests.integration.trip_helpers import acted, register_rider, request_trip, running_app
from tests.support import ADMIN_TOKEN, free_port

WITH_ACCESS_LOG = {"access_log": True, "sweep_interval_s": 3600, "worker_interval_s": 3600}


class Captured:
    def __init__(self) -> None:
        self.buffer = io.StringIO()

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def requests(self, route: str) -> list[dict[str, Any]]:
        return [e for e in self.lines() if e.get("msg") == "request" and e.get("route") == route]


@pytest.fixture
def logs() -> Iterator[Captured]:
    """Every log record of the process, at DEBUG, through the production JSON formatter."""
    captured = Captured()
    handler = logging.StreamHandler(captured.buffer)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield captured
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_no_secret(logs: Captured, secrets: list[str]) -> None:
    assert logs.text, "nothing was logged: the test proves nothing"
    for secret in secrets:
        # the token, and its secret half alone (a token reads `<id>.<secret>`)
        for part in {secret, secret.partition(".")[2]} - {""}:
            assert part not in logs.text, f"a secret reached the logs: {part[:12]}…"


async def test_no_token_reaches_the_logs_whatever_the_answer(
    redis_client: aioredis.Redis, logs: Captured
) -> None:
    async with running_app(make_settings(**WITH_ACCESS_LOG), redis_client) as running:
        client = running.client
        driver = await available_at(client, HELSINKI)
        other = await register(client)
        rider = await register_rider(client)
        unknown = f"{driver.driver_id}.not-the-right-secret-at-all-0123456789"

        trip = await request_trip(client, rider, HELSINKI)
        await acted(client, driver.headers, trip["trip_id"], "accept")
        assert (await client.get(other.path, headers=driver.headers)).status_code == 403
        assert (await client.get(driver.path, headers=bearer(unknown))).status_code == 401
        assert (await client.get(driver.path, headers=bearer(ADMIN_TOKEN))).status_code == 200
        sse = await client.get("/v1/events", params={"access_token": unknown})
        assert sse.status_code == 401
        batch = {"updates": [{"driver_id": other.driver_id, "lat": 91, "lng": 0}]}
        reply = await client.post("/v1/drivers/locations", json=batch, headers=bearer(ADMIN_TOKEN))
        assert reply.status_code == 200

    assert logs.requests("/v1/drivers/{driver_id}"), "the access log was on"
    assert_no_secret(logs, [driver.token, other.token, rider.token, unknown, ADMIN_TOKEN])


@pytest.fixture(params=["real", "fake"])
async def redis_down(request: pytest.FixtureRequest) -> AsyncIterator[aioredis.Redis]:
    """A Redis that does not answer: a port where nothing listens, or a disconnected fakeredis."""
    client: aioredis.Redis
    if request.param == "real":
        url = f"redis://127.0.0.1:{free_port()}/0"
        client = connect(url, timeout_s=0.2, max_connections=4)
    else:
        server = fakeredis.FakeServer()
        server.connected = False
        client = fakeredis.FakeAsyncRedis(server=server)
    yield client
    await client.aclose()


async def test_no_token_reaches_the_logs_when_redis_is_down(
    redis_down: aioredis.Redis, logs: Captured
) -> None:
    token = "drv_0123456789abcdef.a-secret-that-redis-never-got-to-check-0123"
    async with running_app(make_settings(**WITH_ACCESS_LOG), redis_down) as running:
        client = running.client
        reply = await client.get("/v1/drivers/drv_0123456789abcdef", headers=bearer(token))
        assert reply.status_code == 503
        ping_body = {"lat": HELSINKI.lat, "lng": HELSINKI.lng}
        path = "/v1/drivers/drv_0123456789abcdef/location"
        reply = await client.put(path, json=ping_body, headers=bearer(ADMIN_TOKEN))
        assert reply.status_code == 503

    assert any(e["msg"] == "store unavailable" for e in logs.lines())
    assert_no_secret(logs, [token, ADMIN_TOKEN])


async def test_each_request_logs_the_rider_driver_and_trip_it_concerns(
    redis_client: aioredis.Redis, logs: Captured
) -> None:
    async with running_app(make_settings(**WITH_ACCESS_LOG), redis_client) as running:
        client = running.client
        driver = await available_at(client, offset(HELSINKI, 100, 0))
        rider = await register_rider(client)
        trip = await request_trip(client, rider, HELSINKI)
        await acted(client, driver.headers, trip["trip_id"], "accept")
        await ping(client, driver, HELSINKI)

    [requested] = logs.requests("/v1/trips")
    assert requested["rider_id"] == rider.rider_id
    assert requested["trip_id"] == trip["trip_id"]
    assert "driver_id" not in requested
    [accepted] = logs.requests("/v1/trips/{trip_id}/accept")
    assert (accepted["driver_id"], accepted["trip_id"]) == (driver.driver_id, trip["trip_id"])
    pinged = logs.requests("/v1/drivers/{driver_id}/location")
    assert pinged
    assert all(e["driver_id"] == driver.driver_id for e in pinged)
    registered = logs.requests("/v1/riders")
    assert [e["rider_id"] for e in registered] == [rider.rider_id]
    assert all(e["request_id"] for e in logs.requests("/v1/trips"))


async def test_ids_do_not_leak_from_one_request_into_the_next(
    redis_client: aioredis.Redis, logs: Captured
) -> None:
    async with running_app(make_settings(**WITH_ACCESS_LOG), redis_client) as running:
        driver = await register(running.client)
        await running.client.get(driver.path, headers=driver.headers)
        await running.client.get("/healthz")
    [health] = logs.requests("/healthz")
    assert not {"rider_id", "driver_id", "trip_id"} & health.keys()


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("authorization: Bearer s3cr3t-admin-token-value", "s3cr3t-admin-token-value"),
        ("token drv_0123456789abcdef.AbC-_xyz0123456789abcdefghij", "AbC-_xyz0123456789abcdefghij"),
        ("GET /v1/events?access_token=rdr_00.xyz&backlog=1", "rdr_00.xyz"),
    ],
)
def test_a_secret_that_slips_into_a_message_is_redacted(line: str, secret: str) -> None:
    assert secret not in redact(line)
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed: %s", (line,), None)
    assert secret not in JsonFormatter().format(record)


def test_the_log_lines_are_json_with_the_request_id_outside_a_request_too() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", None, None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "hello"
    assert "request_id" not in entry
