"""The supply domain: drivers, positions, location updates. Pure: no Redis, HTTP or clock."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ridehail.errors import Conflict, NotFound

# Redis GEO stores latitudes only within the Web Mercator range.
MAX_LATITUDE = 85.05112878
MAX_LONGITUDE = 180.0
EARTH_RADIUS_M = 6_372_797.560856  # the radius Redis uses for GEODIST / GEOSEARCH


class DispatchError(Exception):
    """Base of the supply/dispatch errors (each also derives from a ridehail error kind)."""


class DriverNotFound(DispatchError, NotFound):
    title = "Driver not found"


class DriverBusy(DispatchError, Conflict):
    title = "Driver is busy"


class DriverStatus(StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    OFFERED = "offered"  # holds one offer; set only by a claim
    ON_TRIP = "on_trip"  # accepted a trip; set only by accepting


@dataclass(frozen=True, slots=True)
class Position:
    lat: float
    lng: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lat) and math.isfinite(self.lng)):
            raise ValueError("coordinates must be finite")
        if abs(self.lat) > MAX_LATITUDE or abs(self.lng) > MAX_LONGITUDE:
            raise ValueError("coordinates out of range")


def haversine_m(a: Position, b: Position) -> float:
    """Great-circle distance in metres, on the sphere Redis GEO uses."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat = lat2 - lat1
    dlng = math.radians(b.lng - a.lng)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlng / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class LocationUpdate:
    driver_id: str
    position: Position
    recorded_ms: int | None = None  # None: the server's time when it is applied
    heading_deg: float | None = None
    speed_mps: float | None = None


class UpdateOutcome(StrEnum):
    APPLIED = "applied"
    IGNORED = "ignored"  # not newer than the last applied update, or older than the limit
    UNKNOWN_DRIVER = "unknown_driver"


@dataclass(frozen=True, slots=True)
class Driver:
    driver_id: str
    name: str
    vehicle: str | None
    status: DriverStatus
    position: Position | None
    last_seen_ms: int | None
    version: int  # the claim version: bumped by every claim, the fencing token of the offer
    trip_id: str | None = None
    offer_json: str | None = None
    offer_expires_ms: int | None = None

    def is_fresh(self, now_ms: int, stale_after_ms: int) -> bool:
        return self.last_seen_ms is not None and now_ms - self.last_seen_ms <= stale_after_ms


@dataclass(frozen=True, slots=True)
class Claim:
    """A driver claimed for a trip: `token` must accompany every later write about it."""

    driver_id: str
    token: int
    expires_ms: int


@dataclass(frozen=True, slots=True)
class NearbyDriver:
    driver_id: str
    position: Position
    distance_m: float


def to_epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def is_too_far_in_future(recorded_ms: int, now_ms: int, tolerance_ms: int) -> bool:
    return recorded_ms - now_ms > tolerance_ms
