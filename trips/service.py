"""Trip use cases: request, dispatch, the driver's and rider's actions, and the repair workers.

Writes that concern both a driver and a trip are two compare-and-sets on two records. The
driver's record decides (claim, accept, release are CASes on it, fenced by the claim version);
the trip follows, guarded by the same token. Whatever a crash leaves half done, a worker finds
in a Redis queue and finishes: expired offers in the supply shard's offer queue, trips in their
shard's watchdog queue. See docs/dispatch.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

import h3

from dispatch.matching import Matcher, MatchOutcome
from dispatch.model import DriverStatus, Position
from dispatch.redis_supply import RedisSupply
from ratelimit.model import Decision, Limit
from ridehail import log_context, tracing
from ridehail.auth import Principal
from ridehail.errors import RateLimited
from ridehail.keys import trip_shard
from trips.model import (
    HOLDS_DRIVER,
    Action,
    Fare,
    IdempotencyKeyReused,
    IllegalTransition,
    LiveTripExists,
    Trip,
    TripNotFound,
    TripState,
    next_state,
    surge_factor,
)
from trips.parties import authorize
from trips.redis_trips import RedisTrips, offer_json

log = logging.getLogger(__name__)

_CLEAR_OFFER = (("driver", ""), ("token", ""), ("oexp", ""))


class TripMetrics(Protocol):
    def transition(self, action: Action) -> None: ...
    def offer_outcome(self, outcome: str) -> None: ...
    def matched(self, seconds: float) -> None: ...


DEFAULT_TRIP_LIMIT = Limit("trip-requests", capacity=10, refill=10, period_s=60)


class Pricing(Protocol):
    async def quote(self, pickup: Position, dropoff: Position, surge: float) -> Fare: ...


@dataclass(frozen=True, slots=True)
class TripPolicy:
    trip_requests: Limit = DEFAULT_TRIP_LIMIT
    watchdog_grace_ms: int = 3_000  # when a worker looks at a trip whose fast path stalled
    offer_ttl_ms: int = 15_000
    stale_after_ms: int = 30_000
    lease_ms: int = 5_000
    batch: int = 100
    h3_resolution: int = 8
    surge_radius_m: float = 1_000.0
    surge_window_ms: int = 300_000
    surge_supply_cap: int = 200


def new_trip_id(rider_id: str) -> str:
    return f"trp_{trip_shard(rider_id):02x}{secrets.token_hex(8)}"


def body_hash(pickup: Position, dropoff: Position) -> str:
    canonical = json.dumps([pickup.lat, pickup.lng, dropoff.lat, dropoff.lng])
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class TripService:
    def __init__(
        self,
        trips: RedisTrips,
        supply: RedisSupply,
        matcher: Matcher,
        pricing: Pricing,
        policy: TripPolicy,
        metrics: TripMetrics,
    ) -> None:
        self.trips = trips
        self.supply = supply
        self.matcher = matcher
        self.pricing = pricing
        self.policy = policy
        self.metrics = metrics

    # -- requests ----------------------------------------------------------------------------
    @tracing.traced("trip.request")
    async def request_trip(
        self, rider_id: str, pickup: Position, dropoff: Position, idempotency_key: str
    ) -> tuple[Trip, bool, Decision]:
        """The trip, whether this call created it (False: the same request seen before), and
        the rider's rate-limit decision. Raises RateLimited, LiveTripExists (409) or
        IdempotencyKeyReused (422)."""
        p = self.policy
        started = time.perf_counter()
        digest = body_hash(pickup, dropoff)
        seen, decision = await self.trips.precheck(
            rider_id, digest, idempotency_key, p.trip_requests
        )
        new: Trip | None = None
        if seen.outcome == "new":
            new = await self._priced_trip(rider_id, pickup, dropoff)
            seen = await self.trips.create(new, digest, idempotency_key, p.watchdog_grace_ms)
        if seen.trip_id:
            log_context.bind(trip_id=seen.trip_id)
        tracing.annotate({"rider.id": rider_id, "trip.id": seen.trip_id, "outcome": seen.outcome})
        if seen.outcome == "mismatch":
            raise IdempotencyKeyReused("this Idempotency-Key was used with another body")
        if seen.outcome == "limited":
            raise RateLimited(p.trip_requests, decision)
        if seen.outcome == "live":
            raise LiveTripExists(seen.trip_id)
        created = seen.outcome == "created"
        if created:
            await self.dispatch(seen.trip_id, just_created=new)
        trip = await self._load(seen.trip_id)
        if created and trip.state is TripState.OFFERED:
            self.metrics.matched(time.perf_counter() - started)
        return trip, created, decision

    async def _priced_trip(self, rider_id: str, pickup: Position, dropoff: Position) -> Trip:
        p = self.policy
        trip_id = new_trip_id(rider_id)
        cell = h3.latlng_to_cell(pickup.lat, pickup.lng, p.h3_resolution)
        demand, supply = await self.supply.surge_inputs(
            pickup,
            cell,
            trip_id,
            radius_m=p.surge_radius_m,
            supply_cap=p.surge_supply_cap,
            window_ms=p.surge_window_ms,
        )
        surge = surge_factor(demand, supply)
        return Trip(
            trip_id=trip_id,
            rider_id=rider_id,
            state=TripState.REQUESTED,
            pickup=pickup,
            dropoff=dropoff,
            fare=await self.pricing.quote(pickup, dropoff, surge),
            created_ms=0,
            updated_ms=0,
            version=1,
            surge=surge,
        )

    async def get_trip(self, trip_id: str, actor: Principal) -> Trip:
        log_context.bind(trip_id=trip_id)
        trip = await self._load(trip_id)
        authorize(trip, actor, None)
        return trip

    @tracing.traced("trip.act")
    async def act(self, trip_id: str, action: Action, actor: Principal) -> Trip:
        """A driver's or rider's action over HTTP; 409 when the state does not allow it."""
        log_context.bind(trip_id=trip_id)
        tracing.annotate({"trip.id": trip_id, "action": action.value})
        trip = await self._load(trip_id)
        authorize(trip, actor, action)
        if action is Action.CANCEL:
            return await self._cancel(trip, actor)
        next_state(trip.state, action)  # IllegalTransition (409) before anything is written
        if action is Action.ACCEPT:
            await self._accept(trip)
        elif action is Action.DECLINE:
            await self._decline(trip)
        elif action is Action.COMPLETE:
            await self._complete(trip)
        else:
            await self._step(trip, action)
        return await self._load(trip_id)

    # -- dispatch ----------------------------------------------------------------------------
    @tracing.traced("trip.dispatch")
    async def dispatch(self, trip_id: str, just_created: Trip | None = None) -> None:
        """Offer a requested trip to the nearest driver not yet tried, or end it no_driver.

        `just_created`: the trip as this process created it a moment ago (version 1), which
        spares reading it back; a transition that finds it changed reads it again.
        """
        for attempt in range(3):
            trip = just_created if attempt == 0 and just_created else await self.trips.get(trip_id)
            if trip is None or trip.state is not TripState.REQUESTED:
                return
            result = await self.matcher.claim_nearest(
                trip_id, trip.pickup, trip.tried, offer_json(trip)
            )
            if result.outcome is MatchOutcome.BUSY:
                return  # the trip stays in the watchdog queue; a worker tries again
            if result.outcome is MatchOutcome.NOBODY:
                done = await self.trips.transition(
                    trip,
                    Action.GIVE_UP,
                    allowed_from=[TripState.REQUESTED],
                    to=TripState.NO_DRIVER,
                    expect_version=trip.version,
                    watchdog_ms="-",
                    ends_live_trip=True,
                )
                if done.ok:
                    self.metrics.transition(Action.GIVE_UP)
                    return
                continue
            claim = result.claim
            assert claim is not None
            offered = await self.trips.transition(
                trip,
                Action.OFFER,
                allowed_from=[TripState.REQUESTED],
                to=TripState.OFFERED,
                expect_version=trip.version,
                watchdog_ms=self.policy.offer_ttl_ms + self.policy.watchdog_grace_ms,
                fields=[
                    ("driver", claim.driver_id),
                    ("token", str(claim.token)),
                    ("oexp", str(claim.expires_ms)),
                    ("tried", ",".join([*trip.tried, claim.driver_id])),
                ],
            )
            if offered.ok:
                self.metrics.transition(Action.OFFER)
                return
            # The trip changed under us (cancelled, or another dispatcher won): give back.
            await self._release(claim.driver_id, trip_id, claim.token)

    # -- actions -----------------------------------------------------------------------------
    async def _accept(self, trip: Trip) -> None:
        driver_id, token = trip.holder()
        held = await self.supply.accept_offer(driver_id, trip.trip_id, token)
        if held != 1:
            raise IllegalTransition("the offer has expired" if held < 0 else "offer not held")
        done = await self.trips.transition(
            trip,
            Action.ACCEPT,
            allowed_from=[TripState.OFFERED],
            to=TripState.ACCEPTED,
            expect_driver=driver_id,
            expect_token=token,
            watchdog_ms="-",
        )
        if not done.ok:
            now = await self._load(trip.trip_id)
            accepted = now.state in HOLDS_DRIVER and now.state is not TripState.OFFERED
            if accepted and now.driver_id == driver_id and now.token == token:
                return  # the watchdog finished this very accept meanwhile
            await self._release(driver_id, trip.trip_id, token)  # cancelled: back to supply
            raise IllegalTransition(f"the trip is {now.state} now")
        self.metrics.transition(Action.ACCEPT)
        self.metrics.offer_outcome("accepted")

    async def _decline(self, trip: Trip) -> None:
        driver_id, token = trip.holder()
        if not await self._release(driver_id, trip.trip_id, token):
            raise IllegalTransition("the offer is no longer held")
        await self._back_to_dispatch(trip, Action.DECLINE, driver_id, token)
        self.metrics.offer_outcome("declined")

    async def _complete(self, trip: Trip) -> None:
        driver_id, token = trip.holder()
        done = await self.trips.transition(
            trip,
            Action.COMPLETE,
            allowed_from=[TripState.IN_PROGRESS],
            to=TripState.COMPLETED,
            expect_driver=driver_id,
            expect_token=token,
            watchdog_ms=self.policy.watchdog_grace_ms,  # frees the driver if we die here
            ends_live_trip=True,
        )
        if not done.ok:
            raise IllegalTransition(f"the trip is {done.state} now")
        self.metrics.transition(Action.COMPLETE)
        await self._release(driver_id, trip.trip_id, token)
        await self.trips.forget_due(trip.trip_id)

    async def _step(self, trip: Trip, action: Action) -> None:
        """arrive, start: the trip moves on; the driver's record does not change."""
        done = await self.trips.transition(
            trip,
            action,
            allowed_from=[trip.state],
            to=next_state(trip.state, action),
            expect_driver=trip.driver_id,
            expect_token=trip.token,
        )
        if not done.ok:
            raise IllegalTransition(f"the trip is {done.state} now")
        self.metrics.transition(action)

    async def _cancel(self, trip: Trip, actor: Principal) -> Trip:
        for _ in range(5):
            next_state(trip.state, Action.CANCEL)  # 409 when cancelling is not allowed now
            holds = trip.state in HOLDS_DRIVER
            done = await self.trips.transition(
                trip,
                Action.CANCEL,
                allowed_from=[trip.state],
                to=TripState.CANCELLED,
                expect_version=trip.version,
                watchdog_ms=self.policy.watchdog_grace_ms if holds else "-",
                ends_live_trip=True,
            )
            if done.ok:
                self.metrics.transition(Action.CANCEL)
                if holds and trip.driver_id and trip.token is not None:
                    await self._release(trip.driver_id, trip.trip_id, trip.token)
                    await self.trips.forget_due(trip.trip_id)
                return await self._load(trip.trip_id)
            trip = await self._load(trip.trip_id)  # it moved on meanwhile: look again
            authorize(trip, actor, Action.CANCEL)
        raise IllegalTransition("the trip keeps changing; try again")

    # -- repair workers ----------------------------------------------------------------------
    async def expire_offers(self) -> int:
        """Handle every offer whose time is up, once: the driver back to supply, the trip on."""
        handled = 0
        p = self.policy
        for driver_id in await self.supply.lease_expired_offers(p.batch, p.lease_ms):
            handled += await self._expire_offer(driver_id)
        return handled

    @tracing.traced("trip.expire_offer")
    async def _expire_offer(self, driver_id: str) -> bool:
        found = await self.supply.get_driver(driver_id)
        driver = found[0] if found else None
        if driver is None or driver.status is not DriverStatus.OFFERED or not driver.trip_id:
            await self.supply.forget_offer(driver_id)
            return False
        trip_id, token = driver.trip_id, driver.version
        tracing.annotate({"trip.id": trip_id, "driver.id": driver_id})
        trip = await self.trips.get(trip_id)
        if trip is not None and _took_offer(trip, driver_id, token):
            # The trip accepted, but the driver's record lost its accept (a Redis failover
            # after an asynchronous write): the record follows the trip, it is not freed.
            await self.supply.accept_offer(driver_id, trip_id, token, even_if_expired=True)
            return False
        if not await self._release(driver_id, trip_id, token, only_if_expired=True):
            return False  # accepted or declined meanwhile
        self.metrics.offer_outcome("expired")
        if trip is not None:
            await self._back_to_dispatch(trip, Action.EXPIRE, driver_id, token)
        return True

    async def watch(self, shard: int) -> int:
        """Look at every trip of the shard whose watchdog time has come, and repair it."""
        trip_ids = await self.trips.lease_due(shard, self.policy.batch, self.policy.lease_ms)
        for trip_id in trip_ids:
            await self.reconcile(trip_id)
        return len(trip_ids)

    @tracing.traced("trip.reconcile")
    async def reconcile(self, trip_id: str) -> None:
        """Make the driver's record and the trip agree, whatever a crash left half done."""
        tracing.annotate({"trip.id": trip_id})
        trip = await self.trips.get(trip_id)
        if trip is None:
            await self.trips.forget_due(trip_id)
        elif trip.state is TripState.REQUESTED:
            await self.dispatch(trip_id)
        elif trip.state is TripState.OFFERED:
            await self._reconcile_offer(trip)
        elif trip.state.is_terminal and trip.driver_id and trip.token is not None:
            await self._release(trip.driver_id, trip_id, trip.token)
            await self.trips.forget_due(trip_id)
        else:
            await self.trips.forget_due(trip_id)

    async def _reconcile_offer(self, trip: Trip) -> None:
        assert trip.driver_id is not None
        found = await self.supply.get_driver(trip.driver_id)
        driver = found[0] if found else None
        held = driver is not None and driver.trip_id == trip.trip_id
        held = held and driver is not None and driver.version == trip.token
        if held and driver is not None and driver.status is DriverStatus.ON_TRIP:
            # The accept reached the driver's record but not the trip: finish it.
            await self.trips.transition(
                trip,
                Action.ACCEPT,
                allowed_from=[TripState.OFFERED],
                to=TripState.ACCEPTED,
                expect_token=trip.token,
                watchdog_ms="-",
            )
        elif not held:
            await self._back_to_dispatch(trip, Action.EXPIRE, trip.driver_id, trip.token)
        # else: the driver still holds the offer; the offer-expiry worker decides its end.

    # -- helpers -----------------------------------------------------------------------------
    async def _back_to_dispatch(
        self, trip: Trip, action: Action, driver_id: str, token: int | None
    ) -> None:
        done = await self.trips.transition(
            trip,
            action,
            allowed_from=[TripState.OFFERED],
            to=TripState.REQUESTED,
            expect_driver=driver_id,
            expect_token=token,
            watchdog_ms=self.policy.watchdog_grace_ms,
            fields=_CLEAR_OFFER,
        )
        if done.ok:
            self.metrics.transition(action)
            await self.dispatch(trip.trip_id)

    async def _release(
        self, driver_id: str, trip_id: str, token: int, *, only_if_expired: bool = False
    ) -> bool:
        return await self.supply.release(
            driver_id,
            trip_id,
            token,
            stale_after_ms=self.policy.stale_after_ms,
            only_if_expired=only_if_expired,
        )

    async def _load(self, trip_id: str) -> Trip:
        trip = await self.trips.get(trip_id)
        if trip is None:
            raise TripNotFound(trip_id)
        return trip


def _took_offer(trip: Trip, driver_id: str, token: int) -> bool:
    """Whether the trip has moved past `offered` holding this very claim."""
    past_offer = trip.state in HOLDS_DRIVER and trip.state is not TripState.OFFERED
    return past_offer and trip.driver_id == driver_id and trip.token == token
