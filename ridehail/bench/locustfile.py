# mypy: ignore-errors
"""A mixed workload for locust: drivers ping and serve trips, riders request and follow them.

Run by `ridehail bench locust` (which starts the stack); by hand:

    locust -f ridehail/bench/locustfile.py --host http://127.0.0.1:8000 \\
        --headless -u 50 -r 10 -t 30s

- **DriverUser** (3 of 5 users): registers, goes available, then pings `PUT /location` about once
  a second from a point that drifts a few metres; when a ping's reply carries an offer it plays
  the trip: `accept`, `arrive`, `start`, `complete` (half a second apart), then pings again.
- **RiderUser** (2 of 5): registers, requests a trip (`POST /v1/trips`, a fresh Idempotency-Key)
  in the same 4 x 4 km square as the drivers, and polls `GET /v1/trips/{id}` every second until
  it is completed, or cancels it if no driver has accepted it after 20 s; then waits 1-3 s and
  asks again.

A conflict on an action (409: the offer expired or went to another driver, the trip moved on) is
marked a success and counted under its own name, so the failure rate is of real errors.
"""

from __future__ import annotations

import math
import random
import time
import uuid

from locust import HttpUser, between, constant, task

LAT, LNG, SIDE_M = 60.17, 24.94, 4_000.0
_DLAT = SIDE_M / 2 / 111_195.0
_DLNG = _DLAT / math.cos(math.radians(LAT))
RIDER_PATIENCE_S = 20.0


def _point() -> dict[str, float]:
    return {"lat": LAT + random.uniform(-_DLAT, _DLAT), "lng": LNG + random.uniform(-_DLNG, _DLNG)}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class DriverUser(HttpUser):
    weight = 3
    wait_time = constant(1)

    def on_start(self) -> None:
        r = self.client.post("/v1/drivers", json={"name": "locust driver"}, name="register driver")
        body = r.json()
        self.driver_id, self.headers = body["driver_id"], _auth(body["token"])
        self.client.put(f"/v1/drivers/{self.driver_id}/status", json={"status": "available"},
                        headers=self.headers, name="driver status")  # fmt: skip
        self.at = _point()

    @task
    def ping(self) -> None:
        self.at = {"lat": self.at["lat"] + random.uniform(-5e-5, 5e-5),
                   "lng": self.at["lng"] + random.uniform(-1e-4, 1e-4)}  # fmt: skip
        r = self.client.put(f"/v1/drivers/{self.driver_id}/location", json=self.at,
                            headers=self.headers, name="driver ping")  # fmt: skip
        if r.status_code != 200:
            return
        offer = r.json().get("offer")
        if offer:
            self._serve(offer["trip_id"])

    def _serve(self, trip_id: str) -> None:
        for action in ("accept", "arrive", "start", "complete"):
            with self.client.post(f"/v1/trips/{trip_id}/{action}", headers=self.headers,
                                  name=f"trip {action}", catch_response=True) as r:  # fmt: skip
                if r.status_code == 409:
                    r.success()
                    self.environment.events.request.fire(
                        request_type="POST", name=f"trip {action} (409 conflict)",
                        response_time=r.elapsed.total_seconds() * 1000, response_length=0,
                        exception=None, context={},
                    )  # fmt: skip
                    return
                if r.status_code != 200:
                    return
            time.sleep(0.5)


class RiderUser(HttpUser):
    weight = 2
    wait_time = between(1, 3)

    def on_start(self) -> None:
        r = self.client.post("/v1/riders", json={"name": "locust rider"}, name="register rider")
        self.headers = _auth(r.json()["token"])

    @task
    def ride(self) -> None:
        headers = self.headers | {"Idempotency-Key": uuid.uuid4().hex}
        r = self.client.post("/v1/trips", json={"pickup": _point(), "dropoff": _point()},
                             headers=headers, name="trip request")  # fmt: skip
        if r.status_code not in (200, 201):
            return
        trip_id = r.json()["trip_id"]
        asked = time.monotonic()
        while True:
            time.sleep(1)
            r = self.client.get(f"/v1/trips/{trip_id}", headers=self.headers, name="trip poll")
            if r.status_code != 200:
                return
            trip = r.json()
            if trip["state"] in ("completed", "cancelled", "no_driver"):
                return
            waiting = trip["state"] in ("requested", "offered")
            if waiting and time.monotonic() - asked > RIDER_PATIENCE_S:
                with self.client.post(f"/v1/trips/{trip_id}/cancel", headers=self.headers,
                                      name="trip cancel", catch_response=True) as c:  # fmt: skip
                    if c.status_code == 409:
                        c.success()
                return
