"""A burst of requests larger than the Redis connection pool waits its turn; Redis is fine."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ridehail.app import create_app
from tests.conftest import ROOMY_RATE_LIMITS, make_settings
from tests.support import ADMIN_TOKEN, app_running

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.mark.timeout(60)
async def test_more_concurrent_requests_than_pooled_connections_all_succeed(
    redis_url: str,
) -> None:
    # The production path: the app makes its own client from REDIS_URL, default pool size. The
    # roomy timeout spares a loaded machine; an exhausted pool that refuses fails at once.
    app = create_app(make_settings(REDIS_URL=redis_url, redis_timeout_s=5, **ROOMY_RATE_LIMITS))
    async with app_running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ridehail") as client:
            burst = [
                client.get("/v1/drivers/nearby?lat=60.17&lng=24.94", headers=ADMIN)
                for _ in range(3 * app.state.services.settings.redis_max_connections)
            ]
            statuses = [r.status_code for r in await asyncio.gather(*burst)]
    assert statuses.count(200) == len(statuses), f"{statuses.count(503)} answered 503"
