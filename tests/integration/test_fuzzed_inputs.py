"""Whatever a client sends to the supply endpoints, the answer is never a 5xx.

Hypothesis drives arbitrary JSON (NaN and infinities included), arbitrary path ids and query
strings at one running app. The app runs on its own event loop, since Hypothesis calls the
test body synchronously, once per example.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import fakeredis
import httpx
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ridehail.app import create_app
from tests.conftest import ROOMY_RATE_LIMITS, make_settings
from tests.support import ADMIN_TOKEN, app_running

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
fields = st.sampled_from(
    ["lat", "lng", "heading_deg", "speed_mps", "recorded_at", "driver_id", "status", "x"]
)
values = st.one_of(
    json_values,
    st.floats(-200, 200),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.text(max_size=30),
)
bodies = st.dictionaries(fields, values, max_size=6) | json_values
queries = st.dictionaries(
    st.sampled_from(["lat", "lng", "radius_m", "limit"]), st.text(max_size=12)
)


class Caller:
    """Sends requests to the app on its own loop and remembers every 5xx."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient) -> None:
        self.loop = loop
        self.client = client
        self.failures: list[tuple[str, str, int, str]] = []

    def __call__(self, method: str, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        if body is not None:
            kwargs["content"] = json.dumps(body).encode()  # NaN and Infinity as JS literals
            kwargs["headers"] = {**kwargs.get("headers", {}), "content-type": "application/json"}
        reply = self.loop.run_until_complete(self.client.request(method, path, **kwargs))
        if reply.status_code >= 500:
            self.failures.append((method, path, reply.status_code, reply.text[:300]))
        return reply


@pytest.fixture(params=["real", "fake"])
def call(request: pytest.FixtureRequest) -> Iterator[Caller]:
    loop = asyncio.new_event_loop()
    redis: aioredis.Redis
    if request.param == "real":
        redis = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    else:
        redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    app = create_app(make_settings(**ROOMY_RATE_LIMITS), redis=redis)
    running = app_running(app)
    loop.run_until_complete(running.__aenter__())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ridehail")
    try:
        yield Caller(loop, client)
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(running.__aexit__(None, None, None))
        loop.run_until_complete(redis.aclose())
        loop.close()


@pytest.mark.timeout(120)
def test_no_input_to_the_supply_endpoints_gets_a_5xx(call: Caller) -> None:
    driver = call("POST", "/v1/drivers", {"name": "Fuzz"}).json()
    mine = {"Authorization": f"Bearer {driver['token']}"}
    path = f"/v1/drivers/{driver['driver_id']}"

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        body=bodies,
        rows=st.lists(bodies, max_size=4),
        some_id=st.text(min_size=1, max_size=70),
        query=queries,
    )
    def never_a_5xx(body: Any, rows: list[Any], some_id: str, query: dict[str, str]) -> None:
        call("PUT", f"{path}/location", body, headers=mine)
        call("PUT", f"{path}/status", body, headers=mine)
        call("POST", "/v1/drivers/locations", {"updates": rows}, headers=ADMIN)
        call("POST", "/v1/drivers", body)
        other = f"/v1/drivers/{quote(some_id, safe='')}"
        call("PUT", f"{other}/location", {"lat": 1.0, "lng": 1.0}, headers=ADMIN)
        call("GET", other, headers=ADMIN)
        call("GET", "/v1/drivers/nearby", params=query, headers=mine)
        assert not call.failures, call.failures

    never_a_5xx()
    # The driver that took all that is still a driver, readable and well-formed.
    assert call("GET", path, headers=mine).status_code == 200
