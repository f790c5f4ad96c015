"""The metrics catalogue in docs/operations.md and the app's GET /metrics agree, both ways.

A short exercise (a driver, a ping, a trip request priced against a pricing service that is not
there, an accept, a path with no route) touches every metric; then each one listed must be
exported with at least one sample, its type and its label names, and every `ridehail_*` metric
exported must be listed.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import fakeredis
import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from ridehail.redis_conn import connect
from tests.conftest import make_settings
from tests.fleet import HELSINKI, available_at, ping
from tests.integration.trip_helpers import acted, register_rider, request_trip, running_app
from tests.support import ADMIN_TOKEN, free_port

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "ridehail.json"
QUIET = {"sweep_interval_s": 3600, "worker_interval_s": 3600}


@dataclass(frozen=True, slots=True)
class Listed:
    kind: str
    labels: frozenset[str]


def catalogue() -> dict[str, Listed]:
    """The table between the metrics markers of docs/operations.md: name, type, labels."""
    text = OPERATIONS.read_text()
    block = text.split("<!-- metrics:begin -->")[1].split("<!-- metrics:end -->")[0]
    listed = {}
    for row in block.splitlines():
        if not row.startswith("| `"):
            continue
        name, kind, labels, meaning = (cell.strip() for cell in row.strip().strip("|").split("|"))
        assert meaning, f"{name} has no meaning in the catalogue"
        listed[name.strip("`")] = Listed(kind, frozenset(re.findall(r"`([^`]+)`", labels)))
    assert len(listed) >= 10, "the catalogue table was not found"
    return listed


@dataclass
class Exported:
    kind: str
    labels: set[str]
    samples: int


async def exported(client: httpx.AsyncClient) -> dict[str, Exported]:
    """Each `ridehail_*` metric of /metrics under the name it is queried by (`…_total`)."""
    reply = await client.get("/metrics")
    assert reply.status_code == 200
    found = {}
    for family in text_string_to_metric_families(reply.text):
        if not family.name.startswith("ridehail_"):
            continue
        name = f"{family.name}_total" if family.type == "counter" else family.name
        labels = {label for s in family.samples for label in s.labels if label != "le"}
        found[name] = Exported(family.type, labels, len(family.samples))
    # The creation time of an unlabelled counter or histogram is parsed as a family of its own.
    created = {f"{name.removesuffix('_total')}_created" for name in found}
    return {name: metric for name, metric in found.items() if name not in created}


async def test_every_metric_in_the_catalogue_is_exported_and_every_exported_one_is_listed(
    redis_client: aioredis.Redis,
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # pricing is down: outage, breaker opens
    settings = make_settings(
        PRICING_URL=nowhere, pricing_breaker_fail_max=1, pricing_max_attempts=1, **QUIET
    )
    async with running_app(settings, redis_client) as running:
        client = running.client
        driver = await available_at(client, HELSINKI)
        await ping(client, driver, HELSINKI)
        rider = await register_rider(client)
        trip = await request_trip(client, rider, HELSINKI)
        assert trip["fare"]["source"] == "fallback"
        await acted(client, driver.headers, trip["trip_id"], "accept")
        assert (await client.get("/no/such/route")).status_code == 404
        metrics = await exported(client)

    listed = catalogue()
    for name, entry in listed.items():
        assert name in metrics, f"{name} is in the catalogue but not in /metrics"
        metric = metrics[name]
        assert metric.kind == entry.kind, f"{name}: exported as a {metric.kind}"
        assert metric.samples > 0, f"{name}: no sample after the exercise"
        assert metric.labels == entry.labels, f"{name}: exported with labels {metric.labels}"
    unlisted = sorted(set(metrics) - set(listed))
    assert not unlisted, f"exported but not in docs/operations.md: {unlisted}"


@pytest.fixture(params=["real", "fake"])
async def redis_down(request: pytest.FixtureRequest) -> AsyncIterator[aioredis.Redis]:
    """A Redis that does not answer: a port where nothing listens, or a disconnected fakeredis."""
    client: aioredis.Redis
    if request.param == "real":
        client = connect(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2, max_connections=4)
    else:
        server = fakeredis.FakeServer()
        server.connected = False
        client = fakeredis.FakeAsyncRedis(server=server)
    yield client
    await client.aclose()


async def unavailable_count(client: httpx.AsyncClient) -> float:
    reply = await client.get("/metrics")
    [family] = [
        f
        for f in text_string_to_metric_families(reply.text)
        if f.name == "ridehail_redis_unavailable"
    ]
    return sum(s.value for s in family.samples if s.name == "ridehail_redis_unavailable_total")


async def test_each_503_for_an_unreachable_redis_is_counted(redis_down: aioredis.Redis) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with running_app(make_settings(**QUIET), redis_down) as running:
        client = running.client
        before = await unavailable_count(client)
        for _ in range(3):
            reply = await client.put(
                "/v1/drivers/drv_0123456789abcdef/location",
                json={"lat": HELSINKI.lat, "lng": HELSINKI.lng},
                headers=admin,
            )
            assert reply.status_code == 503
        assert (await client.get("/readyz")).status_code == 503  # its own answer, not counted
        assert await unavailable_count(client) - before == 3


def test_the_grafana_dashboard_queries_only_catalogued_metrics() -> None:
    listed = set(catalogue())
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"ridehail_[a-z_]+", target["expr"])
    }
    assert queried, "the dashboard queries nothing"
    assert queried <= listed, f"not in the catalogue: {sorted(queried - listed)}"
    assert len(queried) >= len(listed) - 1, f"unused: {sorted(listed - queried)}"
