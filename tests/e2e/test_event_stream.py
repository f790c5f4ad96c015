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


def test_a_driver_hears_of_its_offer_at_once_on_its_own_stream(redis_url: str) -> None:
    with (
        running_ridehail(redis_url, RIDEHAIL_LIMIT_REGISTRATIONS="1000/1") as base,
        httpx.Client(base_url=base, timeout=5) as api,
    ):
        reg = api.post("/v1/drivers", json={"name": "Aino"}).json()
        me = {"Authorization": f"Bearer {reg['token']}"}
        path = f"/v1/drivers/{reg['driver_id']}"
        api.put(f"{path}/status", json={"status": "available"}, headers=me)
        api.put(f"{path}/location", json={"lat": 60.17, "lng": 24.94}, headers=me)
        other = api.post("/v1/drivers", json={"name": "Other"}).json()
        as_other = {"Authorization": f"Bearer {other['token']}"}
        assert api.get(f"{path}/events", headers=as_other).status_code == 403
        assert api.get("/v1/drivers/drv_0000000000000000/events", headers=ADMIN).status_code == 404

        with httpx.stream("GET", f"{base}{path}/events", headers=me, timeout=10) as stream:
            seen = frames(stream.iter_lines())
            rider = api.post("/v1/riders", json={"name": "R"}).json()
            trip = api.post(
                "/v1/trips",
                json={
                    "pickup": {"lat": 60.171, "lng": 24.94},
                    "dropoff": {"lat": 60.18, "lng": 24.95},
                },
                headers={"Authorization": f"Bearer {rider['token']}", "Idempotency-Key": "k1"},
            ).json()
            assert trip["driver_id"] == reg["driver_id"]
            kind, event = next(seen)
            assert (kind, event["action"], event["trip"]) == ("trip", "offer", trip["trip_id"])
            kind, offer = next(seen)
            assert kind == "offer"
            assert offer["trip_id"] == trip["trip_id"]
            assert {"pickup", "dropoff", "fare", "expires_at"} <= set(offer)

        # A stream opened while the offer is held starts with it.
        with httpx.stream("GET", f"{base}{path}/events", headers=me, timeout=10) as stream:
            kind, offer = next(frames(stream.iter_lines()))
            assert (kind, offer["trip_id"]) == ("offer", trip["trip_id"])
