"""`ridehail simulate`: drivers and riders over HTTP for a while, then a JSON summary."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from dispatch.model import Position, haversine_m
from ridehail.sim.agents import LIVE, Api, DriverAgent, RiderAgent, Tuning
from ridehail.sim.city import City, load_city
from ridehail.sim.scenarios import SCENARIOS, Scenario
from ridehail.sim.stats import Stats

TICK_S = 1.0


@dataclass
class RunConfig:
    api: str = "http://127.0.0.1:8000"
    drivers: int = 50
    riders: int = 20
    duration_s: float = 60.0
    seed: int = 1
    scenario: str = "steady"
    output: Path | None = None
    pricing_url: str | None = None
    city: str = "helsinki"
    tuning: Tuning = field(default_factory=Tuning)
    quiet: bool = False


class Simulation:
    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.scenario: Scenario = SCENARIOS[config.scenario]
        self.city: City = load_city(config.city)
        self.rng = random.Random(config.seed)
        self.stats = Stats()
        self.started = 0.0
        self.end = 0.0

    @property
    def progress(self) -> float:
        return min(1.0, (time.monotonic() - self.started) / self.config.duration_s)

    async def run(self) -> dict[str, Any]:
        c = self.config
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        timeout = httpx.Timeout(5.0, connect=2.0)
        async with httpx.AsyncClient(base_url=c.api, timeout=timeout, limits=limits) as client:
            api = Api(client, self.stats)
            await self._wait_until_up(client)
            drivers, riders = await self._register(api)
            self.started = time.monotonic()
            self.end = self.started + c.duration_s
            tasks = [asyncio.create_task(self._drive(d)) for d in drivers]
            tasks.append(asyncio.create_task(self._demand(riders)))
            tasks.append(asyncio.create_task(self._report_progress(drivers)))
            if self.scenario.pricing_outage:
                tasks.append(asyncio.create_task(self._pricing_outage(client)))
            await asyncio.sleep(c.duration_s)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._drain_rides()
            await self._check_invariants(api, drivers)
        summary = self.stats.summary(
            scenario=c.scenario,
            seed=c.seed,
            duration_s=time.monotonic() - self.started,
            drivers=len(drivers),
            riders=len(riders),
        )
        if c.output:
            c.output.write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    async def _wait_until_up(self, client: httpx.AsyncClient) -> None:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/healthz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise SystemExit(f"ridehail simulate: no API answering at {self.config.api}")
            await asyncio.sleep(0.2)

    async def _register(self, api: Api) -> tuple[list[DriverAgent], list[RiderAgent]]:
        c = self.config
        drivers = [
            DriverAgent(api, self.city, self.stats, c.tuning, random.Random(self.rng.random()))
            for _ in range(c.drivers)
        ]
        riders = [
            RiderAgent(api, self.city, self.stats, c.tuning, random.Random(self.rng.random()))
            for _ in range(c.riders)
        ]
        for start in range(0, len(drivers), 50):
            chunk = drivers[start : start + 50]
            await asyncio.gather(
                *(d.register(f"sim driver {start + i}") for i, d in enumerate(chunk))
            )
        for start in range(0, len(riders), 50):
            chunk_r = riders[start : start + 50]
            await asyncio.gather(
                *(r.register(f"sim rider {start + i}") for i, r in enumerate(chunk_r))
            )
        return [d for d in drivers if d.driver_id], [r for r in riders if r.rider_id]

    async def _drive(self, driver: DriverAgent) -> None:
        t = self.config.tuning
        await asyncio.sleep(driver.rng.uniform(0, min(5.0, self.config.duration_s * 0.1)))
        await driver.go_online()
        next_ping = time.monotonic() + driver.rng.uniform(0, t.ping_every_s)
        online_until = self._online_until(driver)
        last = time.monotonic()
        while True:
            now = time.monotonic()
            await driver.step(now - last)  # real elapsed time, so moves track the clock
            last = now
            if driver.online and now >= next_ping:
                await driver.ping()
                next_ping = now + t.ping_every_s * driver.rng.uniform(0.8, 1.2)
            if online_until is not None and now > online_until:
                if driver.online and driver.phase == "idle" and await driver.go_offline():
                    online_until = now + driver.rng.uniform(10, 30)
                elif not driver.online:
                    await driver.go_online()
                    online_until = self._online_until(driver)
            await asyncio.sleep(TICK_S)

    def _online_until(self, driver: DriverAgent) -> float | None:
        mean = self.scenario.mean_online_s
        return None if mean is None else time.monotonic() + driver.rng.expovariate(1 / mean)

    async def _demand(self, riders: list[RiderAgent]) -> None:
        base_rate = max(0.05, len(riders) / 40.0)  # requests per second at multiplier 1
        self._rides: set[asyncio.Task[None]] = set()
        while True:
            rate = base_rate * self.scenario.demand_multiplier(self.progress)
            await asyncio.sleep(self.rng.expovariate(rate))
            idle = [r for r in riders if not r.busy]
            if not idle:
                continue
            rider = self.rng.choice(idle)
            pickup = self._pickup()
            dropoff = self._dropoff(pickup)
            ride = asyncio.create_task(rider.ride(pickup, dropoff, self.end + 2.0))
            self._rides.add(ride)
            ride.add_done_callback(self._rides.discard)

    def _pickup(self) -> Position:
        """Near a hot spot; which spots are hot moves over the run (the day)."""
        spots = self.city.hotspots or ((self.city.center.lat, self.city.center.lng),)
        phase = self.progress
        weights = [
            1.2 + math.cos(2 * math.pi * (phase - i / len(spots))) for i in range(len(spots))
        ]
        lat, lng = self.rng.choices(spots, weights)[0]
        spot = Position(lat + self.rng.gauss(0, 0.003), lng + self.rng.gauss(0, 0.005))
        return self.city.node(*self.city.nearest_node(spot))

    def _dropoff(self, pickup: Position) -> Position:
        for _ in range(20):
            node = self.city.nodes[self.rng.randrange(len(self.city.nodes))]
            there = self.city.node(*node)
            if 600 <= haversine_m(pickup, there) <= 2500:
                return there
        return there

    async def _pricing_outage(self, client: httpx.AsyncClient) -> None:
        url = self.config.pricing_url
        if not url:
            self._say("pricing-outage: no --pricing-url, so nothing to break")
            return
        assert self.scenario.pricing_outage is not None
        start, end = self.scenario.pricing_outage
        await asyncio.sleep(start * self.config.duration_s)
        await client.put(f"{url}/faults", json={"down": True})
        self._say("pricing-outage: pricing is DOWN")
        try:
            await asyncio.sleep((end - start) * self.config.duration_s)
        finally:
            await client.put(f"{url}/faults", json={})
            self._say("pricing-outage: pricing is back")

    async def _drain_rides(self) -> None:
        rides = list(getattr(self, "_rides", ()))
        if rides:
            _, pending = await asyncio.wait(rides, timeout=3.0)
            for ride in pending:
                ride.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _check_invariants(self, api: Api, drivers: list[DriverAgent]) -> None:
        """No driver may be on two live trips: look at every trip each driver accepted."""
        for driver in drivers:
            live = []
            for trip_id in self.stats.accepted_by_driver.get(driver.driver_id, []):
                status, trip = await api.call("GET", f"/v1/trips/{trip_id}", driver.token)
                if (
                    status == 200
                    and trip["state"] in LIVE
                    and trip["driver_id"] == driver.driver_id
                ):
                    live.append(trip_id)
            if len(live) > 1:
                self.stats.violation(f"{driver.driver_id} is on {len(live)} live trips: {live}")

    async def _report_progress(self, drivers: list[DriverAgent]) -> None:
        while True:
            await asyncio.sleep(2.0)
            t = self.stats.trips
            online = sum(d.online for d in drivers)
            errors = sum(v for k, v in self.stats.http.items() if k.startswith(("error", "5")))
            self._say(
                f"[{time.monotonic() - self.started:5.0f}s/{self.config.duration_s:.0f}s] "
                f"trips requested {t['requested']} matched {t['matched']} "
                f"completed {t['completed']} cancelled {t['cancelled']} "
                f"no_driver {t['no_driver']} | drivers online {online} | "
                f"429s {self.stats.http.get('429', 0)} | errors {errors} | "
                f"violations {len(self.stats.violations)}"
            )

    def _say(self, line: str) -> None:
        if not self.config.quiet:
            print(line, file=sys.stderr, flush=True)


def simulate(config: RunConfig) -> dict[str, Any]:
    return asyncio.run(Simulation(config).run())
