"""Random sequences of what riders, drivers, time and the workers do, through the real service
on fakeredis: no illegal state is ever reached, versions only grow, and the driver records and
the trips agree after every step (a driver holds at most one live offer or trip)."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from typing import Any

import fakeredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.model import DriverBusy, DriverStatus, LocationUpdate
from ridehail.auth import Principal, Role
from ridehail.bootstrap import Services, build_services
from tests.conftest import make_settings
from tests.fleet import HELSINKI, offset
from tests.integration.trip_helpers import (
    DROPOFF,
    assert_legal_history,
    assert_records_agree,
    by_trip,
    new_key,
    trip_events,
)
from trips.model import (
    DRIVER_ACTIONS,
    TRANSITIONS,
    Action,
    IllegalTransition,
    LiveTripExists,
    NotParty,
    TripState,
)
from trips.service import TripService
from trips.workers import run_pass

DRIVERS = 3
RIDERS = 3
SPOTS = [offset(HELSINKI, 100 * (i + 1), 50 * i) for i in range(4)]
HTTP_ACTIONS = [Action.ACCEPT, Action.DECLINE, Action.ARRIVE, Action.START, Action.COMPLETE]
HTTP_ACTIONS.append(Action.CANCEL)
ACTORS = ["rider", "holder", "other-driver", "other-rider", "admin"]


class World:
    """Three drivers, three riders, the real trip service on one fakeredis, and what was seen."""

    def __init__(self) -> None:
        self.redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        config = make_settings(
            offer_ttl_s=60, limit_trip_requests="1000/1", limit_location_updates="1000/1"
        )
        self.services: Services = build_services(config, self.redis)
        live = self.services.trips
        # The watchdog looks at once (no grace) so a worker pass repairs whatever it can.
        policy = dataclasses.replace(live.policy, watchdog_grace_ms=0, lease_ms=0)
        self.service = TripService(
            live.trips, live.supply, live.matcher, live.pricing, policy, live.metrics
        )
        self.drivers = [f"drv_{secrets.token_hex(8)}" for _ in range(DRIVERS)]
        self.riders = [f"rdr_{secrets.token_hex(8)}" for _ in range(RIDERS)]
        self.trip_ids: list[str] = []
        self.versions: dict[str, int] = {}

    async def start(self) -> None:
        for i, driver_id in enumerate(self.drivers):
            await self.services.supply_store.create_driver(driver_id, f"d{i}", None, "-")
            await self.services.supply.set_status(driver_id, DriverStatus.AVAILABLE)
            await self.services.supply.update_location(LocationUpdate(driver_id, SPOTS[i]))

    # -- riders --------------------------------------------------------------------------------
    async def request(self, rider: int, spot: int) -> None:
        rider_id = self.riders[rider % RIDERS]
        live = await self._live_trip_of(rider_id)
        try:
            trip, created, _ = await self.service.request_trip(
                rider_id, SPOTS[spot % len(SPOTS)], DROPOFF, new_key()
            )
        except LiveTripExists:
            assert live is not None, "refused as live, yet the rider has no live trip"
            return
        assert live is None, f"{rider_id} got a second live trip beside {live}"
        assert created
        self.trip_ids.append(trip.trip_id)

    async def _live_trip_of(self, rider_id: str) -> str | None:
        for trip_id in self.trip_ids:
            trip = await self.service.trips.get(trip_id)
            if trip and trip.rider_id == rider_id and not trip.state.is_terminal:
                return trip_id
        return None

    # -- anybody acting on a trip --------------------------------------------------------------
    async def act(self, pick: int, action: Action, actor: str) -> None:
        if not self.trip_ids:
            return
        trip_id = self.trip_ids[pick % len(self.trip_ids)]
        before = await self.service.trips.get(trip_id)
        assert before is not None
        who = self._principal(actor, before.rider_id, before.driver_id)
        party = (
            (who.role is Role.ADMIN and action is Action.CANCEL)
            or (who.role is Role.RIDER and who.id == before.rider_id and action is Action.CANCEL)
            or (who.role is Role.DRIVER and who.id == before.driver_id and action in DRIVER_ACTIONS)
        )
        try:
            after = await self.service.act(trip_id, action, who)
        except NotParty:
            assert not party, f"{who} is party to {before} for {action}"
            await self._assert_untouched(trip_id, before.version)
            return
        except IllegalTransition:
            # Legal moves may still be refused (an offer past its time); illegal ones must be.
            assert party
            await self._assert_untouched(trip_id, before.version)
            return
        assert party, f"{who} did {action} to {before}"
        assert (before.state, action) in TRANSITIONS, f"{action} succeeded from {before.state}"
        assert after.version > before.version

    async def move_on(self, pick: int, choice: int, actor: str) -> None:
        """What a trip's parties mostly do: one of the moves its state allows."""
        if not self.trip_ids:
            return
        trip = await self.service.trips.get(self.trip_ids[pick % len(self.trip_ids)])
        assert trip is not None
        moves = [a for (state, a) in TRANSITIONS if state is trip.state and a in HTTP_ACTIONS]
        if moves:
            action = moves[choice % len(moves)]
            await self.act(pick, action, "holder" if action is not Action.CANCEL else actor)

    def _principal(self, actor: str, rider_id: str, holder: str | None) -> Principal:
        if actor == "rider":
            return Principal(Role.RIDER, rider_id)
        if actor == "other-rider":
            return Principal(Role.RIDER, next(r for r in self.riders if r != rider_id))
        if actor == "admin":
            return Principal(Role.ADMIN, "admin")
        if actor == "holder" and holder is not None:
            return Principal(Role.DRIVER, holder)
        return Principal(Role.DRIVER, next(d for d in self.drivers if d != holder))

    async def _assert_untouched(self, trip_id: str, version: int) -> None:
        trip = await self.service.trips.get(trip_id)
        assert trip is not None
        assert trip.version == version, f"a refused action changed {trip}"

    # -- drivers -------------------------------------------------------------------------------
    async def set_status(self, driver: int, status: str) -> None:
        driver_id = self.drivers[driver % DRIVERS]
        record = (await self.services.supply.get_driver(driver_id)).driver
        busy = record.status in (DriverStatus.OFFERED, DriverStatus.ON_TRIP)
        try:
            await self.services.supply.set_status(driver_id, DriverStatus(status))
        except DriverBusy:
            assert busy
            return
        assert not busy, f"{record} changed its status while busy"

    async def ping(self, driver: int, spot: int) -> None:
        # Moving changes where a driver is offered trips, never whether it may be.
        update = LocationUpdate(self.drivers[driver % DRIVERS], SPOTS[spot % len(SPOTS)])
        await self.services.supply.update_location(update)

    # -- time and the workers ------------------------------------------------------------------
    async def offer_runs_out(self, driver: int) -> None:
        """Time passes for one driver's offer: its deadline, as stored, is now behind us."""
        driver_id = self.drivers[driver % DRIVERS]
        record = (await self.services.supply.get_driver(driver_id)).driver
        if record.status is not DriverStatus.OFFERED:
            return
        past = int(time.time() * 1000) - 1
        keys = self.services.keys
        await self.redis.hset(keys.driver(driver_id), "oexp", str(past))
        await self.redis.zadd(keys.offer_expiries(), {driver_id: past})

    async def worker_pass(self) -> None:
        await run_pass(self.service)

    # -- what must always hold -----------------------------------------------------------------
    async def check(self) -> None:
        await assert_records_agree(self.services, self.trip_ids, self.drivers)
        events = await trip_events(self.redis, self.services.settings.key_prefix)
        histories = by_trip(events)
        assert set(histories) == set(self.trip_ids)
        for trip_id, history in histories.items():
            assert_legal_history(trip_id, history)
            trip = await self.service.trips.get(trip_id)
            assert trip is not None
            assert (trip.state.value, trip.version) == (history[-1].to_state, history[-1].version)
            assert trip.version >= self.versions.get(trip_id, 0), "a version went back"
            self.versions[trip_id] = trip.version
            offered_to = [e.driver_id for e in history if e.action == "offer"]
            assert len(offered_to) == len(set(offered_to)), f"{trip_id} offered twice to one"
            if trip.state is TripState.NO_DRIVER:
                assert trip.driver_id is None


small = st.integers(0, 1_000)
actors = st.sampled_from(ACTORS)
STEPS = st.one_of(
    st.tuples(st.just("request"), small, small),
    st.tuples(st.just("request"), small, small),
    st.tuples(st.just("act"), small, st.sampled_from(HTTP_ACTIONS), actors),
    st.tuples(st.just("move_on"), small, small, actors),
    st.tuples(st.just("move_on"), small, small, actors),
    st.tuples(st.just("move_on"), small, small, actors),
    st.tuples(st.just("move_on"), small, small, actors),
    st.tuples(st.just("set_status"), small, st.sampled_from(["available", "offline"])),
    st.tuples(st.just("ping"), small, small),
    st.tuples(st.just("offer_runs_out"), small),
    st.tuples(st.just("worker_pass")),
    st.tuples(st.just("worker_pass")),
)


async def play(steps: list[tuple[Any, ...]]) -> None:
    world = World()
    try:
        await world.start()
        for name, *args in steps:
            await getattr(world, name)(*args)
            await world.check()
    finally:
        await world.redis.aclose()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEPS, min_size=15, max_size=45))
def test_random_actions_never_reach_an_illegal_state_nor_double_book_a_driver(
    steps: list[tuple[Any, ...]],
) -> None:
    asyncio.run(play(steps))
