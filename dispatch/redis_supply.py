"""The supply store on Redis: driver records (the truth) and the GEO index (an index).

Each operation is one round trip: a Lua script from `dispatch/lua/` doing the whole step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from dispatch.model import (
    Claim,
    Driver,
    DriverBusy,
    DriverStatus,
    LocationUpdate,
    NearbyDriver,
    Position,
    UpdateOutcome,
)
from ratelimit.model import Decision, Limit
from ridehail import tracing
from ridehail.keys import Keys
from ridehail.lua import load_script
from ridehail.redis_conn import text_or_none, translated_errors

# Per update: its outcome, the driver's pending offer (JSON) and the offer's expiry (ms).
Applied = tuple[UpdateOutcome, str | None, int | None]

_CODES = {1: UpdateOutcome.APPLIED, 0: UpdateOutcome.IGNORED, -1: UpdateOutcome.UNKNOWN_DRIVER}


def _opt(value: float | None) -> str:
    return "" if value is None else repr(value)


def _driver_from_view(driver_id: str, view: Sequence[Any]) -> Driver:
    status, lat, lng, seen, name, vehicle, version, trip, offer, oexp = (
        text_or_none(v) for v in view[:10]
    )
    position = Position(float(lat), float(lng)) if lat is not None and lng is not None else None
    return Driver(
        driver_id=driver_id,
        name=name or "",
        vehicle=vehicle or None,
        status=DriverStatus(status or DriverStatus.OFFLINE.value),
        position=position,
        last_seen_ms=int(seen) if seen is not None else None,
        version=int(version or 0),
        trip_id=trip or None,
        offer_json=offer or None,
        offer_expires_ms=int(oexp) if oexp else None,
    )


BATCH_CHUNK = 250


def _parse(reply: Sequence[Any]) -> tuple[Decision, list[Applied]]:
    decision = Decision(bool(int(reply[0])), int(reply[1]), int(reply[2]), int(reply[3]))
    rows = [
        (
            _CODES[int(reply[i])],
            text_or_none(reply[i + 1]) or None,
            int(reply[i + 2]) if reply[i + 2] else None,
        )
        for i in range(4, len(reply), 3)
    ]
    return decision, rows


class RedisSupply:
    """`SupplyStore` on one Redis (or fakeredis) client."""

    def __init__(self, client: aioredis.Redis, keys: Keys, positions_cap: int = 0) -> None:
        self._redis = client
        self._keys = keys
        self._positions_cap = positions_cap
        self._claim = client.register_script(load_script("dispatch", "claim_driver"))
        self._accept = client.register_script(load_script("dispatch", "accept_offer"))
        self._release = client.register_script(load_script("dispatch", "release_driver"))
        self._lease = client.register_script(load_script("ridehail", "lease_due"))
        self._update = client.register_script(
            load_script("dispatch", "update_locations", include=("ratelimit:bucket",))
        )
        self._surge = client.register_script(load_script("dispatch", "surge"))
        self._nearest = client.register_script(load_script("dispatch", "nearest"))
        self._sweep = client.register_script(load_script("dispatch", "sweep_stale"))
        self._set_status = client.register_script(load_script("dispatch", "set_status"))
        self._get = client.register_script(load_script("dispatch", "get_driver"))

    async def create_driver(
        self, driver_id: str, name: str, vehicle: str | None, token_hash: str
    ) -> None:
        fields: dict[FieldT, EncodableT] = {
            "status": DriverStatus.OFFLINE.value,
            "name": name,
            "tok": token_hash,
            "ver": 0,
        }
        if vehicle:
            fields["veh"] = vehicle
        async with translated_errors():
            await self._redis.hset(self._keys.driver(driver_id), mapping=fields)

    async def token_hash(self, driver_id: str) -> str | None:
        async with translated_errors():
            return text_or_none(await self._redis.hget(self._keys.driver(driver_id), "tok"))

    async def apply_location(
        self, update: LocationUpdate, stale_after_ms: int, limit: Limit | None
    ) -> tuple[Decision, list[Applied]]:
        """One driver's update, if its own token bucket (`limit`) allows it: one round trip."""
        bucket = self._keys.location_bucket(update.driver_id)
        return await self._apply([update], stale_after_ms, bucket, limit)

    async def apply_locations(
        self, updates: Sequence[LocationUpdate], stale_after_ms: int
    ) -> list[Applied]:
        """A batch of updates in order (a gateway's), in one round trip.

        Sent as script calls of BATCH_CHUNK rows in one pipeline: each call stays short (a
        1000-row script could approach the socket timeout on a busy server) and other clients'
        commands can run between them.
        """
        if not updates:
            return []
        no_bucket = self._keys.positions()
        async with translated_errors():
            pipe = self._redis.pipeline(transaction=False)
            for start in range(0, len(updates), BATCH_CHUNK):
                chunk = updates[start : start + BATCH_CHUNK]
                keys, args = self._call(chunk, stale_after_ms, no_bucket, None)
                await self._update(keys=keys, args=args, client=pipe)
            replies = await pipe.execute()
        return [row for reply in replies for row in _parse(reply)[1]]

    async def _apply(
        self,
        updates: Sequence[LocationUpdate],
        stale_after_ms: int,
        bucket: str,
        limit: Limit | None,
    ) -> tuple[Decision, list[Applied]]:
        """The limit's decision and, per update (none when refused), what became of it."""
        keys, args = self._call(updates, stale_after_ms, bucket, limit)
        async with translated_errors():
            reply = await self._update(keys=keys, args=args)
        return _parse(reply)

    def _call(
        self,
        updates: Sequence[LocationUpdate],
        stale_after_ms: int,
        bucket: str,
        limit: Limit | None,
    ) -> tuple[list[str], list[str]]:
        """KEYS and ARGV of update_locations.lua for these updates."""
        keys = [self._keys.available_geo(), self._keys.last_seen(), self._keys.positions(), bucket]
        args: list[str] = [str(self._positions_cap), str(stale_after_ms)]
        if limit is None:
            args += ["0", "0", "0"]
        else:
            args += [str(limit.capacity), str(limit.refill), str(limit.period_ms)]
        for u in updates:
            keys.append(self._keys.driver(u.driver_id))
            recorded = "" if u.recorded_ms is None else str(u.recorded_ms)
            args += [
                u.driver_id,
                repr(u.position.lng),
                repr(u.position.lat),
                recorded,
                _opt(u.heading_deg),
                _opt(u.speed_mps),
            ]
        return keys, args

    async def nearest(
        self,
        at: Position,
        k: int,
        *,
        initial_radius_m: float,
        max_radius_m: float,
        stale_after_ms: int,
        exclude: Sequence[str] = (),
    ) -> list[NearbyDriver]:
        keys = [self._keys.available_geo(), self._keys.last_seen()]
        args: list[str | int | float] = [
            at.lng,
            at.lat,
            k,
            initial_radius_m,
            max_radius_m,
            stale_after_ms,
            *exclude,
        ]
        async with translated_errors():
            reply = await self._nearest(keys=keys, args=args)
        return [
            NearbyDriver(
                driver_id=text_or_none(reply[i]) or "",
                distance_m=float(reply[i + 1]),
                position=Position(lat=float(reply[i + 3]), lng=float(reply[i + 2])),
            )
            for i in range(0, len(reply), 4)
        ]

    @tracing.traced("trip.surge")
    async def surge_inputs(
        self,
        at: Position,
        cell: str,
        request_id: str,
        *,
        radius_m: float,
        supply_cap: int,
        window_ms: int,
    ) -> tuple[int, int]:
        """Record a request in its cell; (recent requests there, available drivers near `at`)."""
        keys = [self._keys.available_geo(), self._keys.demand(cell)]
        args: list[EncodableT] = [at.lng, at.lat, radius_m, supply_cap, window_ms, request_id]
        async with translated_errors():
            demand, supply = await self._surge(keys=keys, args=args)
        tracing.annotate({"h3.cell": cell, "demand": int(demand), "supply": int(supply)})
        return int(demand), int(supply)

    async def sweep_stale(self, stale_after_ms: int, batch: int = 500) -> int:
        keys = [self._keys.available_geo(), self._keys.last_seen()]
        async with translated_errors():
            return int(await self._sweep(keys=keys, args=[stale_after_ms, batch]))

    async def set_status(
        self, driver_id: str, status: DriverStatus, stale_after_ms: int
    ) -> tuple[Driver, int] | None:
        """The driver after the change and the server time; None when unknown.

        Raises DriverBusy while the driver holds an offer or a trip.
        """
        keys = [self._keys.driver(driver_id), self._keys.available_geo(), self._keys.last_seen()]
        async with translated_errors():
            view = await self._set_status(keys=keys, args=[driver_id, status.value, stale_after_ms])
        if len(view) == 1:
            raise DriverBusy(f"driver {driver_id} holds an offer or a trip")
        return (_driver_from_view(driver_id, view), int(view[-1])) if view else None

    async def claim(
        self, driver_id: str, trip_id: str, *, stale_after_ms: int, ttl_ms: int, offer_json: str
    ) -> Claim | None:
        """Claim an available, fresh driver for a trip (one CAS); None when it cannot be."""
        keys = self._claim_keys(driver_id)
        args: list[EncodableT] = [driver_id, trip_id, stale_after_ms, ttl_ms, offer_json]
        async with translated_errors():
            version, expires = await self._claim(keys=keys, args=args)
        if int(version) == 0:
            return None
        return Claim(driver_id=driver_id, token=int(version), expires_ms=int(expires))

    async def accept_offer(self, driver_id: str, trip_id: str, token: int) -> int:
        """1 accepted, 0 the driver does not hold that offer, -1 it has expired."""
        keys = [self._keys.driver(driver_id), self._keys.offer_expiries()]
        async with translated_errors():
            return int(await self._accept(keys=keys, args=[driver_id, trip_id, token]))

    async def release(
        self,
        driver_id: str,
        trip_id: str,
        token: int,
        *,
        stale_after_ms: int,
        only_if_expired: bool = False,
    ) -> bool:
        """Make the driver available again where it is, if it still holds `trip_id` at `token`."""
        keys = self._claim_keys(driver_id)
        args: list[EncodableT] = [driver_id, trip_id, token, stale_after_ms]
        args.append("1" if only_if_expired else "0")
        async with translated_errors():
            return bool(await self._release(keys=keys, args=args))

    async def lease_expired_offers(self, batch: int, lease_ms: int) -> list[str]:
        """Driver ids whose offer has expired, each leased to this caller for `lease_ms`."""
        async with translated_errors():
            ids = await self._lease(keys=[self._keys.offer_expiries()], args=[batch, lease_ms])
        return [text_or_none(i) or "" for i in ids]

    async def forget_offer(self, driver_id: str) -> None:
        async with translated_errors():
            await self._redis.zrem(self._keys.offer_expiries(), driver_id)

    def _claim_keys(self, driver_id: str) -> list[str]:
        return [
            self._keys.driver(driver_id),
            self._keys.available_geo(),
            self._keys.last_seen(),
            self._keys.offer_expiries(),
        ]

    async def get_driver(self, driver_id: str) -> tuple[Driver, int] | None:
        """The driver and the server's time in ms, or None when no such driver exists."""
        async with translated_errors():
            view = await self._get(keys=[self._keys.driver(driver_id)], args=[])
        return (_driver_from_view(driver_id, view), int(view[-1])) if view else None
