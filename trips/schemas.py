"""Wire schemas of the rider and trip endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, Field

from dispatch.schemas import LatLng, Schema
from trips.model import Trip


class RiderCreate(Schema):
    name: Annotated[str, Field(min_length=1, max_length=100, strict=True)]


class RiderRegistered(BaseModel):
    rider_id: str
    token: str


class TripCreate(Schema):
    pickup: LatLng
    dropoff: LatLng


class FarePublic(BaseModel):
    amount: float
    currency: str
    source: str


class TripPublic(BaseModel):
    trip_id: str
    rider_id: str
    state: str
    driver_id: str | None
    pickup: LatLng
    dropoff: LatLng
    fare: FarePublic
    created_at: datetime
    updated_at: datetime
    version: int
    offer_expires_at: datetime | None = None

    @classmethod
    def of(cls, trip: Trip) -> TripPublic:
        expires = trip.offer_expires_ms if trip.state.value == "offered" else None
        return cls(
            trip_id=trip.trip_id,
            rider_id=trip.rider_id,
            state=trip.state.value,
            driver_id=trip.driver_id,
            pickup=LatLng(lat=trip.pickup.lat, lng=trip.pickup.lng),
            dropoff=LatLng(lat=trip.dropoff.lat, lng=trip.dropoff.lng),
            fare=FarePublic(
                amount=trip.fare.amount_cents / 100,
                currency=trip.fare.currency,
                source=trip.fare.source,
            ),
            created_at=_at(trip.created_ms),
            updated_at=_at(trip.updated_ms),
            version=trip.version,
            offer_expires_at=_at(expires) if expires else None,
        )


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
