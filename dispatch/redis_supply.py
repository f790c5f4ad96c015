"""The supply store on Redis: driver records (the truth) and the GEO index (an index).

In the one-slot layout each operation is one round trip: a Lua script from `dispatch/lua/`
doing the whole step, record and index. Sharded by cell (Redis Cluster, see `ridehail.keys`),
the record script returns the index steps it implies and a second round applies them to the
index cells, all cells at once; the record stays the truth and every claim is still one
compare-and-set on it, so an index entry that lags behind is wasted work, never a double
booking (docs/scaling.md).
"""

from __future__ import annotations

import math
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
from dispatch.redis_index import IndexSteps, RedisIndex, gather
from ratelimit.model import Decision, Limit
from ridehail.keys import CITY, DRIVER_SHARDS, Keys
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
STEP_WIDTH = 6  # values of one index step in a script's reply (see dispatch/lua/_common.lua)


def _parse(reply: Sequence[Any], width: int) -> tuple[Decision, list[Applied], list[Any]]:
    """The decision, each row's outcome and, when sharded, each row's index step."""
    decision = Decision(bool(int(reply[0])), int(reply[1]), int(reply[2]), int(reply[3]))
    rows: list[Applied] = []
    steps: list[Any] = []
    for i in range(4, len(reply), width):
        rows.append(
            (
                _CODES[int(reply[i])],
                text_or_none(reply[i + 1]) or None,
                int(reply[i + 2]) if reply[i + 2] else None,
            )
        )
        if width > 3:
            steps.append(reply[i + 3 : i + 3 + STEP_WIDTH])
    return decision, rows, steps


class RedisSupply:
    """`SupplyStore` on one Redis (or fakeredis, or Redis Cluster) client."""

    def __init__(self, client: aioredis.Redis, keys: Keys, positions_cap: int = 0) -> None:
        self._redis = client
        self._keys = keys
        self._inline = not keys.sharded
        self._inline_arg = "1" if self._inline else "0"
        # Sharded, the cap is shared by the shards' streams.
        self._positions_cap = (
            positions_cap if self._inline else math.ceil(positions_cap / DRIVER_SHARDS)
        )
        self.index = RedisIndex(client, keys)
        self._claim = client.register_script(load_script("dispatch", "claim_driver"))
        self._accept = client.register_script(load_script("dispatch", "accept_offer"))
        self._release = client.register_script(load_script("dispatch", "release_driver"))
        self._lease = client.register_script(load_script("ridehail", "lease_due"))
        self._update = client.register_script(
            load_script("dispatch", "update_locations", include=("ratelimit:bucket",))
        )
        self._set_status = client.register_script(load_script("dispatch", "set_status"))
        self._get = client.register_script(load_script("dispatch", "get_driver"))

    @property
    def keys(self) -> Keys:
        return self._keys

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

    # -- location updates --------------------------------------------------------------------
    async def apply_location(
        self, update: LocationUpdate, stale_after_ms: int, limit: Limit | None
    ) -> tuple[Decision, list[Applied]]:
        """One driver's update, if its own token bucket (`limit`) allows it.

        One round trip in the one-slot layout; sharded, a second one when the index changes.
        """
        bucket = self._keys.location_bucket(update.driver_id)
        keys, args = self._call([update], stale_after_ms, bucket, limit)
        async with translated_errors():
            reply = await self._update(keys=keys, args=args)
        decision, rows, steps = _parse(reply, self._row_width)
        if steps:
            index = IndexSteps()
            index.note(update.driver_id, steps[0])
            await self.index.apply(index)
        return decision, rows

    async def apply_locations(
        self, updates: Sequence[LocationUpdate], stale_after_ms: int
    ) -> list[Applied]:
        """A batch of updates in order (a gateway's): one round trip in the one-slot layout.

        Sent as script calls of BATCH_CHUNK rows: each call stays short (a 1000-row script could
        approach the socket timeout on a busy server) and other clients' commands can run
        between them. Sharded, rows go to their driver shard's call (order kept within a
        driver), all shards at once, then the index steps, all cells at once.
        """
        if not updates:
            return []
        if self._inline:
            return await self._apply_inline(updates, stale_after_ms)
        by_shard: dict[str, list[int]] = {}
        for i, u in enumerate(updates):
            by_shard.setdefault(self._keys.driver_shard(u.driver_id), []).append(i)
        calls: list[list[int]] = []
        for rows in by_shard.values():
            calls += [rows[s : s + BATCH_CHUNK] for s in range(0, len(rows), BATCH_CHUNK)]
        async with translated_errors():
            replies = await gather(
                [
                    self._update(
                        *self._call([updates[i] for i in rows], stale_after_ms, None, None)
                    )
                    for rows in calls
                ]
            )
        out: list[Applied | None] = [None] * len(updates)
        index = IndexSteps()
        for rows, reply in zip(calls, replies, strict=True):
            _, applied, steps = _parse(reply, self._row_width)
            for i, row, step in zip(rows, applied, steps, strict=True):
                out[i] = row
                index.note(updates[i].driver_id, step)
        await self.index.apply(index)
        return [row for row in out if row is not None]

    async def _apply_inline(
        self, updates: Sequence[LocationUpdate], stale_after_ms: int
    ) -> list[Applied]:
        async with translated_errors():
            pipe = self._redis.pipeline(transaction=False)
            for start in range(0, len(updates), BATCH_CHUNK):
                chunk = updates[start : start + BATCH_CHUNK]
                keys, args = self._call(chunk, stale_after_ms, None, None)
                await self._update(keys=keys, args=args, client=pipe)
            replies = await pipe.execute()
        return [row for reply in replies for row in _parse(reply, 3)[1]]

    @property
    def _row_width(self) -> int:
        return 3 if self._inline else 3 + STEP_WIDTH

    def _call(
        self,
        updates: Sequence[LocationUpdate],
        stale_after_ms: int,
        bucket: str | None,
        limit: Limit | None,
    ) -> tuple[list[str], list[str]]:
        """KEYS and ARGV of update_locations.lua for these updates (all of one driver shard).

        With no `bucket` (no limit) the stream stands in for it, on the same slot, untouched.
        """
        k = self._keys
        stream = k.positions(k.driver_shard(updates[0].driver_id))
        keys = [stream, bucket or stream, *self._index_keys(stream)]
        args: list[str] = [self._inline_arg, str(self._positions_cap), str(stale_after_ms)]
        if limit is None:
            args += ["0", "0", "0"]
        else:
            args += [str(limit.capacity), str(limit.refill), str(limit.period_ms)]
        for u in updates:
            keys.append(k.driver(u.driver_id))
            recorded = "" if u.recorded_ms is None else str(u.recorded_ms)
            cell = CITY if self._inline else k.index_cell(u.position.lat, u.position.lng)
            args += [
                u.driver_id,
                repr(u.position.lng),
                repr(u.position.lat),
                recorded,
                _opt(u.heading_deg),
                _opt(u.speed_mps),
                cell,
            ]
        return keys, args

    def _index_keys(self, same_slot: str) -> list[str]:
        """The index keys a record script is given: the real ones inline, else placeholders
        on the script's own slot (never touched), so the script stays on one slot."""
        if self._inline:
            return [self._keys.available_geo(), self._keys.last_seen()]
        return [same_slot, same_slot]

    # -- the index (dispatch.redis_index) ---------------------------------------------------
    async def index_cells(self) -> list[str]:
        """Every index cell that has held a driver ([CITY] in the one-slot layout)."""
        return await self.index.cells()

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
        """The k nearest available, fresh drivers within `max_radius_m`, exactly, nearest first."""
        return await self.index.nearest(
            at,
            k,
            initial_radius_m=initial_radius_m,
            max_radius_m=max_radius_m,
            stale_after_ms=stale_after_ms,
            exclude=exclude,
        )

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
        return await self.index.surge_inputs(
            at, cell, request_id, radius_m=radius_m, supply_cap=supply_cap, window_ms=window_ms
        )

    async def sweep_stale(self, stale_after_ms: int, batch: int = 500) -> int:
        return await self.index.sweep_stale(stale_after_ms, batch)

    async def counts(self) -> tuple[int, int]:
        """(drivers in the index, drivers holding an offer), summed over every shard."""
        queues = self._keys.all_offer_expiries()
        async with translated_errors():
            offers = await gather([self._redis.zcard(q) for q in queues])
        return await self.index.indexed(), sum(offers)

    # -- status, claims and offers -----------------------------------------------------------
    async def set_status(
        self, driver_id: str, status: DriverStatus, stale_after_ms: int
    ) -> tuple[Driver, int] | None:
        """The driver after the change and the server time; None when unknown.

        Raises DriverBusy while the driver holds an offer or a trip.
        """
        record = self._keys.driver(driver_id)
        keys = [record, *self._index_keys(record)]
        args = [self._inline_arg, driver_id, status.value, stale_after_ms]
        async with translated_errors():
            view = await self._set_status(keys=keys, args=args)
        if len(view) == 1:
            raise DriverBusy(f"driver {driver_id} holds an offer or a trip")
        if not view:
            return None
        await self.index.follow(driver_id, view[11 : 11 + STEP_WIDTH])
        return _driver_from_view(driver_id, view), int(view[10])

    async def claim(
        self, driver_id: str, trip_id: str, *, stale_after_ms: int, ttl_ms: int, offer_json: str
    ) -> Claim | None:
        """Claim an available, fresh driver for a trip (one CAS); None when it cannot be."""
        keys = self._claim_keys(driver_id)
        args: list[EncodableT] = [
            self._inline_arg,
            driver_id,
            trip_id,
            stale_after_ms,
            ttl_ms,
            offer_json,
        ]
        async with translated_errors():
            reply = await self._claim(keys=keys, args=args)
        if int(reply[0]) == 0:
            return None
        await self.index.follow(driver_id, reply[2 : 2 + STEP_WIDTH])
        return Claim(driver_id=driver_id, token=int(reply[0]), expires_ms=int(reply[1]))

    async def accept_offer(
        self, driver_id: str, trip_id: str, token: int, *, even_if_expired: bool = False
    ) -> int:
        """1 accepted, 0 the driver does not hold that offer, -1 it has expired.

        `even_if_expired`: the trip has accepted already; bring the record up to it.
        """
        keys = [self._keys.driver(driver_id), self._offers_of(driver_id)]
        args: list[EncodableT] = [driver_id, trip_id, token, "1" if even_if_expired else "0"]
        async with translated_errors():
            return int(await self._accept(keys=keys, args=args))

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
        args: list[EncodableT] = [self._inline_arg, driver_id, trip_id, token, stale_after_ms]
        args.append("1" if only_if_expired else "0")
        async with translated_errors():
            reply = await self._release(keys=keys, args=args)
        if int(reply[0]) == 0:
            return False
        await self.index.follow(driver_id, reply[1 : 1 + STEP_WIDTH])
        return True

    async def lease_expired_offers(self, batch: int, lease_ms: int) -> list[str]:
        """Driver ids whose offer has expired, each leased to this caller for `lease_ms`."""
        queues = self._keys.all_offer_expiries()
        async with translated_errors():
            found = await gather([self._lease(keys=[q], args=[batch, lease_ms]) for q in queues])
        return [text_or_none(i) or "" for ids in found for i in ids]

    async def forget_offer(self, driver_id: str) -> None:
        async with translated_errors():
            await self._redis.zrem(self._offers_of(driver_id), driver_id)

    def _offers_of(self, driver_id: str) -> str:
        return self._keys.offer_expiries(self._keys.driver_shard(driver_id))

    def _claim_keys(self, driver_id: str) -> list[str]:
        record = self._keys.driver(driver_id)
        return [record, self._offers_of(driver_id), *self._index_keys(record)]

    async def get_driver(self, driver_id: str) -> tuple[Driver, int] | None:
        """The driver and the server's time in ms, or None when no such driver exists."""
        async with translated_errors():
            view = await self._get(keys=[self._keys.driver(driver_id)], args=[])
        return (_driver_from_view(driver_id, view), int(view[-1])) if view else None
