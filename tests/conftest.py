"""Fixtures shared by every tier.

`redis_client` runs a test twice: against a real redis-server started for the session on a free
port, and against the embedded fakeredis backend. Without a redis-server binary the real half is
skipped, loudly (and in CI, where RIDEHAIL_REQUIRE_REAL_REDIS=1, it fails instead).

A module marked `layouts` (the core: supply, nearest search, dispatch, trips) runs twice more
with supply sharded by cell: on fakeredis (`fake-cells`) and on a local Redis Cluster of 3
masters and 3 replicas started once per session (`cluster`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import fakeredis
import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from ridehail.app import create_app
from ridehail.bootstrap import Services
from ridehail.devcluster import Cluster, missing_binaries, running_cluster
from ridehail.redis_conn import connect_cluster
from ridehail.settings import Settings
from tests.support import ADMIN_TOKEN, app_running, redis_server_binary, running_redis

NO_REDIS_MESSAGE = (
    "NO redis-server BINARY: every real-Redis test is SKIPPED; only fakeredis ran. "
    "Install redis-server (apt-get install redis-server) to run them."
)


def pytest_report_header(config: pytest.Config) -> str | None:
    return None if redis_server_binary() else f"!!! {NO_REDIS_MESSAGE}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not redis_server_binary():
        terminalreporter.section("real Redis", sep="!")
        terminalreporter.line(NO_REDIS_MESSAGE, red=True, bold=True)


def require_redis_server() -> None:
    if redis_server_binary():
        return
    if os.environ.get("RIDEHAIL_REQUIRE_REAL_REDIS"):
        pytest.fail("redis-server is required here (RIDEHAIL_REQUIRE_REAL_REDIS is set)")
    pytest.skip(NO_REDIS_MESSAGE)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of a private redis-server for this test session."""
    require_redis_server()
    with running_redis() as url:
        yield url


SHARDED = ("fake-cells", "cluster")
TEST_CELL_RESOLUTION = "6"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the sharded layouts only for modules marked `layouts`."""
    keep, drop = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        backend = params.params.get("redis_client") if params else None
        sharded_only = backend in SHARDED and item.get_closest_marker("layouts") is None
        (drop if sharded_only else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def require_cluster_binaries() -> None:
    missing = missing_binaries()
    if not missing:
        return
    names = " and ".join(missing)
    if os.environ.get("RIDEHAIL_REQUIRE_REAL_REDIS"):
        pytest.fail(f"{names} not found, but RIDEHAIL_REQUIRE_REAL_REDIS is set")
    pytest.skip(
        f"{names} not found: Redis Cluster tests SKIPPED (apt-get install redis-server to run them)"
    )


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A private Redis Cluster (3 masters, 3 replicas) for this test session."""
    require_cluster_binaries()
    with running_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture(params=["real", "fake", *SHARDED])
async def redis_client(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[aioredis.Redis]:
    """An empty Redis: a real server, the embedded fakeredis, and (`layouts`) sharded ones.

    On a sharded backend every Settings made during the test shards supply by cell.
    """
    client: aioredis.Redis
    if request.param in SHARDED:
        monkeypatch.setenv("RIDEHAIL_SUPPLY_CELL_RESOLUTION", TEST_CELL_RESOLUTION)
    if request.param == "real":
        url = request.getfixturevalue("redis_url")
        client = aioredis.Redis.from_url(url, socket_timeout=5)
        await client.flushdb()
    elif request.param == "cluster":
        cluster: Cluster = request.getfixturevalue("redis_cluster")
        client = connect_cluster(cluster.nodes_env, timeout_s=5, max_connections=64)
    else:
        client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    yield client
    await client.aclose()


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "RIDEHAIL_ADMIN_TOKEN": ADMIN_TOKEN,
        "key_prefix": "t" + secrets.token_hex(4),
        "access_log": False,
        # Generous limits: tests that are about rate limiting set their own.
        "limit_registrations": "1000000/1",
        "limit_location_updates": "1000000/1",
        "limit_trip_requests": "1000000/1",
    }
    values.update(overrides)
    return Settings(**values)


# Tests act as many clients from one address; a rate-limit test sets its own limits.
ROOMY_RATE_LIMITS = {
    "limit_registrations": "1000000/1",
    "limit_location_updates": "1000000/1",
    "limit_trip_requests": "1000000/1",
}


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> Settings:
    """Test settings with roomy rate limits; parametrise indirectly with a dict to change some."""
    layout = {}
    spec = getattr(request.node, "callspec", None)
    if spec is not None and spec.params.get("redis_client") in SHARDED:
        layout = {"supply_cell_resolution": int(TEST_CELL_RESOLUTION)}
    return make_settings(**{**ROOMY_RATE_LIMITS, **layout, **getattr(request, "param", {})})


@pytest.fixture
async def app(redis_client: aioredis.Redis, settings: Settings) -> AsyncIterator[FastAPI]:
    """The app over the parametrised Redis backend, its lifespan (and sweeper) running."""
    async with app_running(create_app(settings, redis=redis_client)) as application:
        yield application


@pytest.fixture
def services(app: FastAPI) -> Services:
    """The running app's wired services, for seeding data without going through HTTP."""
    wired: Services = app.state.services
    return wired


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process, over the parametrised Redis backend."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ridehail") as c:
        yield c


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
