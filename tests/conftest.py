"""Fixtures shared by every tier.

`backend` runs a test twice: against a real redis-server started for the session on a free port,
and against the embedded fakeredis backend. Without a redis-server binary the real half is
skipped, loudly (and in CI, where RIDEHAIL_REQUIRE_REAL_REDIS=1, it fails instead).
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


@pytest.fixture(params=["real", "fake"])
async def redis_client(request: pytest.FixtureRequest) -> AsyncIterator[aioredis.Redis]:
    """An empty Redis: a real server, then the embedded fakeredis."""
    client: aioredis.Redis
    if request.param == "real":
        url = request.getfixturevalue("redis_url")
        client = aioredis.Redis.from_url(url, socket_timeout=5)
        await client.flushdb()
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
    return make_settings(**{**ROOMY_RATE_LIMITS, **getattr(request, "param", {})})


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
