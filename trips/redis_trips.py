"""Trips on Redis: one hash per trip, a stream and a watchdog queue per trip shard."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.typing import EncodableT

from dispatch.model import Position
from ratelimit.model import Decision, Limit
from ridehail import tracing
from ridehail.keys import TRIP_SHARDS, Keys, shard_of_trip
from ridehail.lua import load_script
from ridehail.redis_conn import text, translated_errors
from trips.model import Action, Fare, Trip, TripState


@dataclass(frozen=True, slots=True)
class Created:
    outcome: str  # created | existing | mismatch | live
    trip_id: str


@dataclass(frozen=True, slots=True)
class Transitioned:
    ok: bool
    state: TripState | None  # on failure: the state found (None: no such trip)
    version: int


def trip_fields(trip: Trip) -> list[str]:
    """The record of a new trip as field/value pairs (state, version and times are the script's)."""
    return [
        "plat", repr(trip.pickup.lat), "plng", repr(trip.pickup.lng),
        "dlat", repr(trip.dropoff.lat), "dlng", repr(trip.dropoff.lng),
        "fare", str(trip.fare.amount_cents), "cur", trip.fare.currency, "src", trip.fare.source,
        "surge", repr(trip.surge),
    ]  # fmt: skip


def trip_from_record(trip_id: str, raw: dict[Any, Any]) -> Trip:
    r = {text(k): text(v) for k, v in raw.items()}
    tried = tuple(t for t in r.get("tried", "").split(",") if t)
    return Trip(
        trip_id=trip_id,
        rider_id=r["rider"],
        state=TripState(r["state"]),
        pickup=Position(float(r["plat"]), float(r["plng"])),
        dropoff=Position(float(r["dlat"]), float(r["dlng"])),
        fare=Fare(int(r["fare"]), r["cur"], r["src"]),
        created_ms=int(r["created"]),
        updated_ms=int(r["updated"]),
        version=int(r["version"]),
        driver_id=r.get("driver") or None,
        token=int(r["token"]) if r.get("token") else None,
        offer_expires_ms=int(r["oexp"]) if r.get("oexp") else None,
        tried=tried,
        surge=float(r.get("surge", "1.0")),
    )


class RedisTrips:
    def __init__(self, client: aioredis.Redis, keys: Keys, idempotency_ttl_s: int) -> None:
        self._redis = client
        self._keys = keys
        self._idempotency_ttl_s = idempotency_ttl_s
        self._create = client.register_script(load_script("trips", "create_trip"))
        self._transition = client.register_script(load_script("trips", "transition"))
        self._lease = client.register_script(load_script("ridehail", "lease_due"))
        self._precheck = client.register_script(
            load_script("trips", "precheck", include=("ratelimit:bucket",))
        )

    @tracing.traced("trip.precheck")
    async def precheck(
        self, rider_id: str, body_hash: str, idempotency_key: str, limit: Limit
    ) -> tuple[Created, Decision]:
        """Idempotency, the rider's bucket and its live trip, before a request costs anything.

        Outcome: existing, mismatch, limited, live or new (then create() checks again).
        """
        keys = [
            self._keys.idempotency(rider_id, idempotency_key),
            self._keys.live_trip(rider_id),
            self._keys.trip_bucket(rider_id),
        ]
        args: list[EncodableT] = [body_hash, limit.capacity, limit.refill, limit.period_ms]
        async with translated_errors():
            outcome, trip_id, allowed, remaining, retry, reset = await self._precheck(
                keys=keys, args=args
            )
        decision = Decision(bool(int(allowed)), int(remaining), int(retry), int(reset))
        tracing.annotate({"outcome": text(outcome)})
        return Created(text(outcome), text(trip_id)), decision

    @tracing.traced("trip.create")
    async def create(
        self, trip: Trip, body_hash: str, idempotency_key: str, watchdog_ms: int
    ) -> Created:
        shard = shard_of_trip(trip.trip_id)
        keys = [
            self._keys.idempotency(trip.rider_id, idempotency_key),
            self._keys.live_trip(trip.rider_id),
            self._keys.trip(trip.trip_id),
            self._keys.trip_events(shard),
            self._keys.trip_watchdog(shard),
        ]
        args: list[EncodableT] = [body_hash, trip.trip_id, trip.rider_id]
        args += [self._idempotency_ttl_s, watchdog_ms, *trip_fields(trip)]
        async with translated_errors():
            outcome, trip_id = await self._create(keys=keys, args=args)
        tracing.annotate({"trip.id": trip.trip_id, "outcome": text(outcome)})
        return Created(text(outcome), text(trip_id))

    async def get(self, trip_id: str) -> Trip | None:
        async with translated_errors():
            raw = await self._redis.hgetall(self._keys.trip(trip_id))
        return trip_from_record(trip_id, raw) if raw else None

    @tracing.traced("trip.transition")
    async def transition(
        self,
        trip: Trip,
        action: Action,
        *,
        allowed_from: Iterable[TripState],
        to: TripState,
        expect_version: int | None = None,
        expect_driver: str | None = None,
        expect_token: int | None = None,
        watchdog_ms: int | str | None = None,
        ends_live_trip: bool = False,
        fields: Sequence[tuple[str, str]] = (),
    ) -> Transitioned:
        """Guarded CAS of one transition; `watchdog_ms`: None leave, "-" remove, N in N ms."""
        tracing.annotate({"trip.id": trip.trip_id, "action": action.value, "to": to.value})
        shard = shard_of_trip(trip.trip_id)
        keys = [
            self._keys.trip(trip.trip_id),
            self._keys.trip_events(shard),
            self._keys.trip_watchdog(shard),
            self._keys.live_trip(trip.rider_id),
        ]
        args: list[EncodableT] = [
            action.value,
            ",".join(s.value for s in allowed_from),
            to.value,
            "" if expect_version is None else expect_version,
            expect_driver or "",
            "" if expect_token is None else expect_token,
            "" if watchdog_ms is None else watchdog_ms,
            "1" if ends_live_trip else "0",
        ]
        for name, value in fields:
            args += [name, value]
        async with translated_errors():
            ok, state_or_version, from_or_state = await self._transition(keys=keys, args=args)
        tracing.annotate({"ok": bool(int(ok))})
        if int(ok):
            return Transitioned(True, to, int(state_or_version))
        found = text(state_or_version)
        return Transitioned(False, TripState(found) if found else None, int(from_or_state))

    async def lease_due(self, shard: int, batch: int, lease_ms: int) -> list[str]:
        """Trips of a shard the watchdog must look at now, each leased to this caller."""
        async with translated_errors():
            ids = await self._lease(keys=[self._keys.trip_watchdog(shard)], args=[batch, lease_ms])
        return [text(i) for i in ids]

    async def forget_due(self, trip_id: str) -> None:
        async with translated_errors():
            await self._redis.zrem(self._keys.trip_watchdog(shard_of_trip(trip_id)), trip_id)

    @staticmethod
    def shards() -> range:
        return range(TRIP_SHARDS)


def offer_json(trip: Trip) -> str:
    """What a driver is shown of a trip it is offered."""
    return json.dumps(
        {
            "trip_id": trip.trip_id,
            "pickup": {"lat": trip.pickup.lat, "lng": trip.pickup.lng},
            "dropoff": {"lat": trip.dropoff.lat, "lng": trip.dropoff.lng},
            "fare": {
                "amount": trip.fare.amount_cents / 100,
                "currency": trip.fare.currency,
                "source": trip.fare.source,
            },
        },
        separators=(",", ":"),
    )
