"""Simulated drivers and riders. They speak only the HTTP contract (shared/API.md)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from dispatch.model import Position, haversine_m
from ridehail.sim.city import City
from ridehail.sim.stats import Stats
from ridehail.sim.streets import Vehicle

log = logging.getLogger(__name__)

LIVE = {"requested", "offered", "accepted", "arrived", "in_progress"}
TERMINAL = {"completed", "cancelled", "no_driver"}


class Api:
    """One shared HTTP client; every answer's status is counted in the stats."""

    def __init__(self, client: httpx.AsyncClient, stats: Stats) -> None:
        self.client = client
        self.stats = stats
        self.last_retry_after_s = 1.0

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        try:
            reply = await self.client.request(method, path, json=json, headers=all_headers)
        except httpx.HTTPError as exc:
            self.stats.http[f"error:{type(exc).__name__}"] += 1
            return 0, None
        self.stats.http[str(reply.status_code)] += 1
        try:
            body = reply.json()
        except ValueError:
            body = None
        if reply.status_code == 429:
            self.last_retry_after_s = float(reply.headers.get("Retry-After", "1"))
        return reply.status_code, body

    async def register(self, path: str, name: str) -> tuple[int, Any]:
        """Register, waiting out a registration limit a few times (we are many from one host)."""
        for _ in range(4):
            status, body = await self.call("POST", path, json={"name": name})
            if status != 429:
                return status, body
            await asyncio.sleep(min(5.0, self.last_retry_after_s))
        return status, body


@dataclass
class Tuning:
    """Behaviour knobs of the simulated people (probabilities per decision)."""

    ping_every_s: float = 3.0
    accept: float = 0.8
    decline: float = 0.15  # the rest let the offer time out
    rider_cancel: float = 0.08
    boarding_s: float = 8.0
    time_scale: float = 1.0  # >1 moves vehicles (and boarding) faster than real time


@dataclass
class DriverAgent:
    api: Api
    city: City
    stats: Stats
    tuning: Tuning
    rng: random.Random
    driver_id: str = ""
    token: str = ""
    vehicle: Vehicle | None = None
    trip: dict[str, Any] | None = None  # the trip this driver is on (as last seen)
    phase: str = "idle"  # idle | to_pickup | boarding | to_dropoff | offline
    online: bool = False
    seen_offers: set[str] = field(default_factory=set)

    async def register(self, name: str) -> bool:
        status, body = await self.api.register("/v1/drivers", name)
        if status != 201:
            return False
        self.driver_id, self.token = body["driver_id"], body["token"]
        start = self.city.nodes[self.rng.randrange(len(self.city.nodes))]
        self.vehicle = Vehicle(self.city, start, speed_mps=self.rng.uniform(7, 12))
        return True

    @property
    def path(self) -> str:
        return f"/v1/drivers/{self.driver_id}"

    async def go_online(self) -> None:
        await self.ping()
        status, _ = await self.api.call(
            "PUT", f"{self.path}/status", self.token, {"status": "available"}
        )
        self.online = status == 200
        self.phase = "idle" if self.online else "offline"

    async def go_offline(self) -> bool:
        status, _ = await self.api.call(
            "PUT", f"{self.path}/status", self.token, {"status": "offline"}
        )
        if status == 200:
            self.online, self.phase = False, "offline"
        return status == 200

    async def ping(self) -> None:
        assert self.vehicle is not None
        p = self.vehicle.position
        body = {"lat": p.lat, "lng": p.lng, "recorded_at": datetime.now(UTC).isoformat()}
        status, reply = await self.api.call("PUT", f"{self.path}/location", self.token, body)
        if status == 200 and reply and reply.get("offer"):
            await self.consider(reply["offer"])

    async def consider(self, offer: dict[str, Any]) -> None:
        trip_id = offer["trip_id"]
        if trip_id in self.seen_offers:
            return
        self.seen_offers.add(trip_id)
        self.stats.offers_by_trip[trip_id] += 1
        if self.trip is not None and self.trip.get("state") in LIVE:
            await self.resync()  # the server thinks we are free: is our trip over?
            if self.trip is not None and self.trip.get("state") in LIVE:
                self.stats.violation(f"{self.driver_id} offered {trip_id} while on a live trip")
        roll = self.rng.random()
        if roll < self.tuning.accept:
            status, trip = await self.api.call("POST", f"/v1/trips/{trip_id}/accept", self.token)
            if status == 200:
                assert self.vehicle is not None
                pickup = Position(trip["pickup"]["lat"], trip["pickup"]["lng"])
                self.stats.pickup_distance_m.append(haversine_m(self.vehicle.position, pickup))
                self.stats.accepted_by_driver[self.driver_id].append(trip_id)
                self.trip, self.phase = trip, "to_pickup"
                self.vehicle.go_to(pickup)
        elif roll < self.tuning.accept + self.tuning.decline:
            await self.api.call("POST", f"/v1/trips/{trip_id}/decline", self.token)
        # else: let it time out

    async def resync(self) -> None:
        if self.trip is None:
            return
        status, trip = await self.api.call("GET", f"/v1/trips/{self.trip['trip_id']}", self.token)
        if status == 200:
            self.trip = trip
        if status in (403, 404) or (status == 200 and trip["state"] in TERMINAL):
            self.trip, self.phase = None, "idle"

    async def act(self, action: str) -> bool:
        assert self.trip is not None
        path = f"/v1/trips/{self.trip['trip_id']}/{action}"
        status, trip = await self.api.call("POST", path, self.token)
        if status == 200:
            self.trip = trip
            return True
        await self.resync()
        return False

    async def step(self, seconds: float) -> None:
        """Move, and do what the phase asks once the destination is reached."""
        assert self.vehicle is not None
        if self.phase == "offline":
            return
        self.vehicle.advance(seconds * self.tuning.time_scale)
        if self.phase == "idle" and self.vehicle.arrived and self.rng.random() < 0.3:
            self.vehicle.wander(self.rng)
        elif self.phase == "to_pickup" and self.vehicle.arrived:
            if await self.act("arrive"):
                self.phase = "boarding"
                await asyncio.sleep(self.tuning.boarding_s / self.tuning.time_scale)
                if self.trip is not None and await self.act("start"):
                    dropoff = Position(self.trip["dropoff"]["lat"], self.trip["dropoff"]["lng"])
                    self.vehicle.go_to(dropoff)
                    self.phase = "to_dropoff"
        elif self.phase == "to_dropoff" and self.vehicle.arrived and await self.act("complete"):
            self.trip, self.phase = None, "idle"


@dataclass
class RiderAgent:
    api: Api
    city: City
    stats: Stats
    tuning: Tuning
    rng: random.Random
    rider_id: str = ""
    token: str = ""
    busy: bool = False

    async def register(self, name: str) -> bool:
        status, body = await self.api.register("/v1/riders", name)
        if status != 201:
            return False
        self.rider_id, self.token = body["rider_id"], body["token"]
        return True

    async def ride(self, pickup: Position, dropoff: Position, deadline: float) -> None:
        """Request a trip and follow it to its end (or the run's end)."""
        self.busy = True
        try:
            await self._ride(pickup, dropoff, deadline)
        finally:
            self.busy = False

    async def _ride(self, pickup: Position, dropoff: Position, deadline: float) -> None:
        body = {
            "pickup": {"lat": pickup.lat, "lng": pickup.lng},
            "dropoff": {"lat": dropoff.lat, "lng": dropoff.lng},
        }
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        started = time.monotonic()
        status, trip = await self.api.call("POST", "/v1/trips", self.token, body, headers)
        if status not in (200, 201):
            return
        self.stats.trips["requested"] += 1
        self.stats.fares[trip["fare"]["source"]] += 1
        offered = arrived = matched = False
        cancel_after = None
        if self.rng.random() < self.tuning.rider_cancel:
            cancel_after = started + self.rng.uniform(2, 20) / self.tuning.time_scale
        while True:
            state = trip["state"]
            now = time.monotonic()
            if state != "requested" and not offered:
                offered = True
                self.stats.request_to_offer_s.append(now - started)
            if state in ("arrived", "in_progress", "completed") and not arrived:
                arrived = True
                self.stats.request_to_pickup_s.append(now - started)
            if state in ("accepted", "arrived", "in_progress", "completed") and not matched:
                matched = True
                self.stats.trips["matched"] += 1
            if state in TERMINAL:
                self.stats.trips[state] += 1
                return
            if now > deadline:
                return
            cancellable = state in ("requested", "offered", "accepted")
            if cancel_after is not None and now > cancel_after and cancellable:
                cancel_after = None
                path = f"/v1/trips/{trip['trip_id']}/cancel"
                status, reply = await self.api.call("POST", path, self.token)
                if status == 200:
                    trip = reply
                    continue
            await asyncio.sleep(1.0)
            path = f"/v1/trips/{trip['trip_id']}"
            status, latest = await self.api.call("GET", path, self.token)
            if status == 200:
                trip = latest
