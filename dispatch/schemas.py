"""Wire schemas of the supply endpoints (apart from the domain classes in `dispatch.model`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dispatch.model import MAX_LATITUDE, MAX_LONGITUDE, NearbyDriver, Position
from dispatch.service import DriverSnapshot

# strict: a JSON string is not a number; allow_inf_nan=False: NaN and 1e309 (inf) are refused.
Latitude = Annotated[
    float, Field(ge=-MAX_LATITUDE, le=MAX_LATITUDE, strict=True, allow_inf_nan=False)
]
Longitude = Annotated[
    float, Field(ge=-MAX_LONGITUDE, le=MAX_LONGITUDE, strict=True, allow_inf_nan=False)
]
Name = Annotated[str, Field(min_length=1, max_length=100, strict=True)]
DriverId = Annotated[str, Field(min_length=1, max_length=64)]


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LatLng(Schema):
    lat: Latitude
    lng: Longitude

    def to_position(self) -> Position:
        return Position(lat=self.lat, lng=self.lng)


class DriverCreate(Schema):
    name: Name
    vehicle: Annotated[str, Field(max_length=100, strict=True)] | None = None


class DriverRegistered(BaseModel):
    driver_id: str
    token: str


class LocationIn(LatLng):
    heading_deg: Annotated[float, Field(ge=0, lt=360, strict=True, allow_inf_nan=False)] | None = (
        None
    )
    speed_mps: Annotated[float, Field(ge=0, le=120, strict=True, allow_inf_nan=False)] | None = None
    recorded_at: AwareDatetime | None = None


class LocationAck(BaseModel):
    applied: bool
    offer: dict[str, Any] | None = None


class BatchRow(LatLng):
    driver_id: DriverId
    recorded_at: AwareDatetime | None = None


class BatchIn(Schema):
    # Rows are validated one by one in the handler, so one bad row never sinks the others.
    updates: list[Any]


class Rejected(BaseModel):
    index: int
    reason: str


class BatchAck(BaseModel):
    accepted: int
    ignored: int
    rejected: list[Rejected]


class StatusIn(Schema):
    status: Literal["available", "offline"]


def offer_public(offer_json: str | None, expires_ms: int | None) -> dict[str, Any] | None:
    """The offer a driver sees: `{trip_id, expires_at, pickup, dropoff, fare}`."""
    if offer_json is None or expires_ms is None:
        return None
    offer: dict[str, Any] = json.loads(offer_json)
    moment = datetime.fromtimestamp(expires_ms / 1000, tz=UTC)
    offer["expires_at"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return offer


class DriverPublic(BaseModel):
    driver_id: str
    name: str
    vehicle: str | None
    status: str
    lat: float | None
    lng: float | None
    last_seen: datetime | None
    fresh: bool
    trip_id: str | None = None
    offer: dict[str, Any] | None = None

    @classmethod
    def of(cls, snapshot: DriverSnapshot) -> DriverPublic:
        d = snapshot.driver
        seen = d.last_seen_ms
        return cls(
            driver_id=d.driver_id,
            name=d.name,
            vehicle=d.vehicle,
            status=d.status.value,
            lat=d.position.lat if d.position else None,
            lng=d.position.lng if d.position else None,
            last_seen=datetime.fromtimestamp(seen / 1000, tz=UTC) if seen is not None else None,
            fresh=snapshot.fresh,
            trip_id=d.trip_id,
            offer=offer_public(d.offer_json, d.offer_expires_ms),
        )


class NearbyPublic(BaseModel):
    driver_id: str
    lat: float
    lng: float
    distance_m: float

    @classmethod
    def of(cls, found: NearbyDriver) -> NearbyPublic:
        return cls(
            driver_id=found.driver_id,
            lat=found.position.lat,
            lng=found.position.lng,
            distance_m=round(found.distance_m, 2),
        )
