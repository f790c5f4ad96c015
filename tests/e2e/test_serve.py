"""`ridehail serve` as a real process: the embedded backend, and refusing bad settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.fleet import HELSINKI, offset
from tests.support import ADMIN_TOKEN, free_port, running_ridehail

pytestmark = pytest.mark.e2e

RIDEHAIL = str(Path(sys.executable).with_name("ridehail"))


def test_the_embedded_backend_serves_a_register_ping_and_nearby_round() -> None:
    with (
        running_ridehail(None, RIDEHAIL_ACCESS_LOG="false") as api,
        httpx.Client(base_url=api, timeout=10) as client,
    ):
        assert client.get("/readyz").status_code == 200
        reply = client.post("/v1/drivers", json={"name": "Aino"})
        assert reply.status_code == 201
        driver = reply.json()
        me = {"Authorization": f"Bearer {driver['token']}"}
        path = f"/v1/drivers/{driver['driver_id']}"
        assert client.put(f"{path}/status", json={"status": "available"}, headers=me).is_success
        at = offset(HELSINKI, 300, 400)
        ack = client.put(f"{path}/location", json={"lat": at.lat, "lng": at.lng}, headers=me)
        assert ack.json() == {"applied": True, "offer": None}
        query = {"lat": HELSINKI.lat, "lng": HELSINKI.lng, "radius_m": 1000}
        found = client.get("/v1/drivers/nearby", params=query, headers=me).json()
        assert [d["driver_id"] for d in found] == [driver["driver_id"]]
        assert found[0]["distance_m"] == pytest.approx(500, abs=1)
        state = client.get(path, headers=me).json()
        assert (state["lat"], state["lng"], state["fresh"]) == (at.lat, at.lng, True)
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert client.get(path, headers=admin).status_code == 200


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RIDEHAIL_STALE_AFTER_S", "-1"),
        ("REDIS_URL", "http://x"),
        ("RIDEHAIL_MAX_BATCH_UPDATES", "-3"),
        ("RIDEHAIL_ADMIN_TOKEN", "short"),
    ],
)
def test_a_bad_setting_stops_serve_with_one_line_naming_it(name: str, value: str) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("RIDEHAIL_") and k != "REDIS_URL"
    }
    env[name] = value
    done = subprocess.run(
        [RIDEHAIL, "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert name in lines[0]
    assert "Traceback" not in done.stderr
