"""The trip domain: states, the transition table, fares. Pure: no Redis, HTTP or clock.

The state machine is data: `TRANSITIONS` maps (state, action) to the next state, and nothing else
decides what is legal. docs/state-machine.md is generated from it (`python -m trips.diagram`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from dispatch.model import Position, haversine_m
from ridehail.errors import Conflict, Forbidden, NotFound, Unprocessable


class TripError(Exception):
    """Base of the trip errors (each also derives from a ridehail error kind)."""


class TripNotFound(TripError, NotFound):
    title = "Trip not found"


class IllegalTransition(TripError, Conflict):
    title = "Illegal transition"


class LiveTripExists(TripError, Conflict):
    title = "Rider has a live trip"

    def __init__(self, trip_id: str) -> None:
        super().__init__(f"the rider already has live trip {trip_id}")
        self.extra = {"trip_id": trip_id}


class NotParty(TripError, Forbidden):
    title = "Not a party to this trip"


class IdempotencyKeyReused(TripError, Unprocessable):
    """The same Idempotency-Key with another body (422)."""

    title = "Idempotency key reused"


class TripState(StrEnum):
    REQUESTED = "requested"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    ARRIVED = "arrived"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_DRIVER = "no_driver"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({TripState.COMPLETED, TripState.CANCELLED, TripState.NO_DRIVER})


class Action(StrEnum):
    OFFER = "offer"  # dispatch claimed a driver
    ACCEPT = "accept"
    DECLINE = "decline"
    EXPIRE = "expire"  # the offer timed out
    ARRIVE = "arrive"
    START = "start"
    COMPLETE = "complete"
    CANCEL = "cancel"
    GIVE_UP = "give_up"  # nobody left within the search limits


S, A = TripState, Action
TRANSITIONS: dict[tuple[TripState, Action], TripState] = {
    (S.REQUESTED, A.OFFER): S.OFFERED,
    (S.REQUESTED, A.GIVE_UP): S.NO_DRIVER,
    (S.REQUESTED, A.CANCEL): S.CANCELLED,
    (S.OFFERED, A.ACCEPT): S.ACCEPTED,
    (S.OFFERED, A.DECLINE): S.REQUESTED,
    (S.OFFERED, A.EXPIRE): S.REQUESTED,
    (S.OFFERED, A.CANCEL): S.CANCELLED,
    (S.ACCEPTED, A.ARRIVE): S.ARRIVED,
    (S.ACCEPTED, A.CANCEL): S.CANCELLED,
    (S.ARRIVED, A.START): S.IN_PROGRESS,
    (S.ARRIVED, A.CANCEL): S.CANCELLED,
    (S.IN_PROGRESS, A.COMPLETE): S.COMPLETED,
}
del S, A

# States in which the trip holds its driver (the driver is offered or on the trip).
HOLDS_DRIVER = frozenset(
    {TripState.OFFERED, TripState.ACCEPTED, TripState.ARRIVED, TripState.IN_PROGRESS}
)
# Actions a driver takes on its own trip over HTTP, and the one a rider takes.
DRIVER_ACTIONS = frozenset(
    {Action.ACCEPT, Action.DECLINE, Action.ARRIVE, Action.START, Action.COMPLETE, Action.CANCEL}
)
RIDER_ACTIONS = frozenset({Action.CANCEL})


def next_state(state: TripState, action: Action) -> TripState:
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition(f"cannot {action.value} a trip that is {state.value}") from None


def states_allowing(action: Action) -> list[TripState]:
    return [state for (state, act) in TRANSITIONS if act is action]


@dataclass(frozen=True, slots=True)
class Fare:
    amount_cents: int
    currency: str
    source: str  # "pricing" or "fallback"


@dataclass(frozen=True, slots=True)
class RateTable:
    """The local fallback tariff: used whenever the pricing service cannot answer."""

    base_cents: int = 300
    per_km_cents: int = 120
    minimum_cents: int = 600
    currency: str = "EUR"

    def quote(self, pickup: Position, dropoff: Position, surge: float = 1.0) -> Fare:
        km = haversine_m(pickup, dropoff) / 1000
        cents = self.base_cents + math.ceil(km * self.per_km_cents)
        return Fare(max(self.minimum_cents, math.ceil(cents * surge)), self.currency, "fallback")


MAX_SURGE = 3.0


def surge_factor(recent_requests: int, available_drivers: int) -> float:
    """1.0 while drivers outnumber recent requests; up by 0.25 per extra request per driver.

    Rounded to 0.1 and capped at MAX_SURGE, so a fare never jumps on noise.
    """
    if recent_requests <= available_drivers:
        return 1.0
    pressure = (recent_requests - available_drivers) / max(available_drivers, 1)
    return min(MAX_SURGE, round(1.0 + 0.25 * pressure, 1))


@dataclass(frozen=True, slots=True)
class Trip:
    trip_id: str
    rider_id: str
    state: TripState
    pickup: Position
    dropoff: Position
    fare: Fare
    created_ms: int
    updated_ms: int
    version: int
    driver_id: str | None = None
    token: int | None = None  # the driver's claim version (fencing token) while held
    offer_expires_ms: int | None = None
    tried: tuple[str, ...] = ()  # drivers already offered this trip: never offered again
    surge: float = 1.0

    def holder(self) -> tuple[str, int]:
        """The driver holding the trip and its fencing token; IllegalTransition if none."""
        if self.state not in HOLDS_DRIVER or self.driver_id is None or self.token is None:
            raise IllegalTransition(f"trip {self.trip_id} has no driver")
        return self.driver_id, self.token
