"""`GET /v1/events` over a real server: the backlog, then live events with no gap."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import ADMIN_TOKEN, running_ridehail

pytestmark = pytest.mark.e2e
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def frames(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    kind, data = "", ""
    for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and kind:
            yield kind, json.loads(data)
            kind, data = "", ""


def test_a_new_stream_starts_with_each_drivers_latest_position_then_follows_live(
    redis_url: str,
) -> None:
    with (
        running_ridehail(redis_url, RIDEHAIL_LIMIT_REGISTRATIONS="1000/1") as base,
        httpx.Client(base_url=base, timeout=5) as api,
    ):
        reg = api.post("/v1/drivers", json={"name": "Aino"}).json()
        me = {"Authorization": f"Bearer {reg['token']}"}
        path = f"/v1/drivers/{reg['driver_id']}"
        api.put(f"{path}/status", json={"status": "available"}, headers=me)
        for lat in (60.170, 60.171, 60.172):  # three pings before anyone listens
            api.put(f"{path}/location", json={"lat": lat, "lng": 24.94}, headers=me)

        with httpx.stream("GET", f"{base}/v1/events", headers=ADMIN, timeout=10) as stream:
            seen = frames(stream.iter_lines())
            kind, first = next(seen)
            assert kind == "position"
            assert first["d"] == reg["driver_id"]
            assert float(first["lat"]) == pytest.approx(60.172)  # the latest, and only it
            api.put(f"{path}/location", json={"lat": 60.173, "lng": 24.94}, headers=me)
            kind, live = next(seen)
            assert (kind, float(live["lat"])) == ("position", pytest.approx(60.173))


def test_the_event_stream_is_for_the_admin_only(redis_url: str) -> None:
    with running_ridehail(redis_url) as base:
        rider = httpx.post(f"{base}/v1/riders", json={"name": "R"}).json()
        as_rider = httpx.get(
            f"{base}/v1/events", headers={"Authorization": f"Bearer {rider['token']}"}
        )
        assert as_rider.status_code == 403
        assert httpx.get(f"{base}/v1/events").status_code == 401
        assert httpx.get(f"{base}/v1/events?access_token=wrong-token").status_code == 401
