"""Every Redis key ridehail uses, built in this one module.

Hash tags (the `{...}` part) decide the Redis Cluster slot. Whatever one Lua script touches
carries the same tag, so every script runs on one slot:

- `{sup:<shard>}`: a supply shard. Driver records, the GEO index of available drivers, their
  last-seen times, the offer-expiry queue, the matching lock and the position stream live
  together, so one script can claim or move a driver and its index entry atomically. There is
  one shard today; sharding supply by geo cell is how it grows.
- `{trp:<nn>}`: a trip shard, chosen by the rider (`trip_shard`). A rider's live-trip pointer and
  idempotency keys, its trips, the shard's event stream and its watchdog queue share a slot, so
  creating a trip (idempotency + one live trip per rider + the event) is one atomic script.
- `{rdr:<id>}`: a rider's record (name, token hash).

Writes that span a driver and a trip are two scripts on two slots, ordered and fenced by the
driver's claim version; see docs/dispatch.md.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

SUPPLY_SHARD = "0"
TRIP_SHARDS = 16


def trip_shard(rider_id: str) -> int:
    """The trip shard of everything a rider does (stable across processes and restarts)."""
    return zlib.crc32(rider_id.encode()) % TRIP_SHARDS


def shard_of_trip(trip_id: str) -> int:
    """Trip ids carry their shard: `trp_<2 hex digits of shard><random hex>`.

    An id not of that form names no trip; it still maps to a shard, so looking it up finds
    nothing (a 404) rather than failing.
    """
    try:
        return int(trip_id[4:6], 16) % TRIP_SHARDS
    except ValueError:
        return 0


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "rh"

    # -- supply ------------------------------------------------------------------------------
    def _supply(self, shard: str = SUPPLY_SHARD) -> str:
        return f"{self.prefix}:{{sup:{shard}}}"

    def driver(self, driver_id: str) -> str:
        """Hash: the driver's record, the truth about that driver."""
        return f"{self._supply()}:driver:{driver_id}"

    def available_geo(self) -> str:
        """GEO set: available drivers with a recent position (an index, never the truth)."""
        return f"{self._supply()}:geo"

    def last_seen(self) -> str:
        """Sorted set: available driver id scored by the server time (ms) of its last ping."""
        return f"{self._supply()}:seen"

    def offer_expiries(self) -> str:
        """Sorted set: driver id holding an offer, scored by when the offer expires (ms)."""
        return f"{self._supply()}:offers"

    def match_lock(self, cell: str) -> str:
        """The Redis lock that serialises matching for pickups in one H3 cell."""
        return f"{self._supply()}:lock:match:{cell}"

    def location_bucket(self, driver_id: str) -> str:
        """Token bucket: the driver's single location updates (in the update script's slot)."""
        return f"{self._supply()}:rl:loc:{driver_id}"

    def demand(self, cell: str) -> str:
        """Sorted set: recent trip requests in an H3 cell, scored by time (ms), for surge."""
        return f"{self._supply()}:demand:{cell}"

    def positions(self) -> str:
        """Stream (capped): every applied location update, for the live map."""
        return f"{self._supply()}:positions"

    # -- trips -------------------------------------------------------------------------------
    def _trips(self, shard: int) -> str:
        return f"{self.prefix}:{{trp:{shard:02x}}}"

    def trip(self, trip_id: str) -> str:
        """Hash: one trip, with its state and version."""
        return f"{self._trips(shard_of_trip(trip_id))}:trip:{trip_id}"

    def trip_events(self, shard: int) -> str:
        """Stream: every transition of the shard's trips, in order."""
        return f"{self._trips(shard)}:events"

    def all_trip_events(self) -> list[str]:
        return [self.trip_events(shard) for shard in range(TRIP_SHARDS)]

    def trip_watchdog(self, shard: int) -> str:
        """Sorted set: trip id scored by when a worker must next look at it (ms)."""
        return f"{self._trips(shard)}:due"

    def live_trip(self, rider_id: str) -> str:
        """String: the rider's live trip id, so a rider has at most one."""
        return f"{self._trips(trip_shard(rider_id))}:live:{rider_id}"

    def idempotency(self, rider_id: str, key: str) -> str:
        """String: `<body hash> <trip id>` for an Idempotency-Key the rider has used."""
        return f"{self._trips(trip_shard(rider_id))}:idem:{rider_id}:{key}"

    def trip_bucket(self, rider_id: str) -> str:
        """Token bucket: the rider's trip requests (in the trip-request scripts' slot)."""
        return f"{self._trips(trip_shard(rider_id))}:rl:trips:{rider_id}"

    # -- rate limits of their own ------------------------------------------------------------
    def bucket(self, scope: str, subject: str) -> str:
        """Token bucket of one subject, e.g. ("register", client address) or ("pricing", "")."""
        return f"{self.prefix}:{{rl:{scope}:{subject}}}"

    # -- riders ------------------------------------------------------------------------------
    def rider(self, rider_id: str) -> str:
        """Hash: the rider's record."""
        return f"{self.prefix}:{{rdr:{rider_id}}}:rider"
