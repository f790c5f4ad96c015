"""Every Redis key ridehail uses, built in this one module.

Hash tags (the `{...}` part) decide the Redis Cluster slot. Whatever one Lua script touches
carries the same tag, so every script runs on one slot. Supply has two layouts:

- **one slot** (`cell_resolution=None`, the default on a single Redis): `{sup:0}` holds driver
  records, the GEO index of available drivers, their last-seen times, the offer-expiry queue
  and the position stream, so one script moves or claims a driver *and* its index entry.
- **sharded** (`cell_resolution=R`, required on Redis Cluster): a driver's record, its
  location bucket, and its shard's offer-expiry queue and position stream share
  `{drv:<nn>}`, one of DRIVER_SHARDS tags chosen by the driver id; the index is split by H3
  cell at resolution R, `{geo:<cell>}` holding that cell's GEO set, last-seen set and demand.
  A record and an index entry are then on different slots: a ping is a record script that
  says how the index must change, then an index script (docs/scaling.md).

The rest is the same in both layouts:

- `{trp:<nn>}`: a trip shard, chosen by the rider (`trip_shard`). A rider's live-trip pointer and
  idempotency keys, its trips, the shard's event stream and its watchdog queue share a slot, so
  creating a trip (idempotency + one live trip per rider + the event) is one atomic script.
- `{rdr:<id>}`: a rider's record (name, token hash).
- `{mlk:<cell>}`: the matching lock of one H3 cell of pickups.

Writes that span a driver and a trip are two scripts on two slots, ordered and fenced by the
driver's claim version; see docs/dispatch.md.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import h3

SUPPLY_SHARD = "0"
TRIP_SHARDS = 16
DRIVER_SHARDS = 16
# The one index cell of the one-slot layout (the whole city is one GEO set).
CITY = ""


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


def trip_shard(rider_id: str) -> int:
    """The trip shard of everything a rider does (stable across processes and restarts)."""
    return _crc(rider_id) % TRIP_SHARDS


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
    # H3 resolution of the supply index cells; None keeps all supply on one slot.
    cell_resolution: int | None = None

    @property
    def sharded(self) -> bool:
        return self.cell_resolution is not None

    # -- drivers -----------------------------------------------------------------------------
    def driver_shard(self, driver_id: str) -> str:
        """The tag of everything about one driver (the one supply tag when not sharded)."""
        if self.cell_resolution is None:
            return f"sup:{SUPPLY_SHARD}"
        return f"drv:{_crc(driver_id) % DRIVER_SHARDS:02x}"

    def driver_shards(self) -> list[str]:
        if self.cell_resolution is None:
            return [f"sup:{SUPPLY_SHARD}"]
        return [f"drv:{n:02x}" for n in range(DRIVER_SHARDS)]

    def driver(self, driver_id: str) -> str:
        """Hash: the driver's record, the truth about that driver."""
        return f"{self.prefix}:{{{self.driver_shard(driver_id)}}}:driver:{driver_id}"

    def location_bucket(self, driver_id: str) -> str:
        """Token bucket: the driver's single location updates (in the update script's slot)."""
        return f"{self.prefix}:{{{self.driver_shard(driver_id)}}}:rl:loc:{driver_id}"

    def offer_expiries(self, shard: str | None = None) -> str:
        """Sorted set: driver id holding an offer, scored by when the offer expires (ms).

        One per driver shard, beside the records it is about (`shard` from `driver_shard`).
        """
        return f"{self.prefix}:{{{shard or self.driver_shards()[0]}}}:offers"

    def all_offer_expiries(self) -> list[str]:
        return [self.offer_expiries(shard) for shard in self.driver_shards()]

    def positions(self, shard: str | None = None) -> str:
        """Stream (capped): every applied location update of a driver shard, for the live map."""
        return f"{self.prefix}:{{{shard or self.driver_shards()[0]}}}:positions"

    def all_positions(self) -> list[str]:
        return [self.positions(shard) for shard in self.driver_shards()]

    # -- the supply index --------------------------------------------------------------------
    def index_cell(self, lat: float, lng: float) -> str:
        """The index cell a position belongs to (CITY when the index is not sharded)."""
        if self.cell_resolution is None:
            return CITY
        return str(h3.latlng_to_cell(lat, lng, self.cell_resolution))

    def _index(self, cell: str) -> str:
        if self.cell_resolution is None:
            return f"{self.prefix}:{{sup:{SUPPLY_SHARD}}}"
        return f"{self.prefix}:{{geo:{cell}}}"

    def available_geo(self, cell: str = CITY) -> str:
        """GEO set: available drivers with a recent position (an index, never the truth)."""
        return f"{self._index(cell)}:geo"

    def last_seen(self, cell: str = CITY) -> str:
        """Sorted set: available driver id scored by the server time (ms) of its last ping."""
        return f"{self._index(cell)}:seen"

    def demand(self, cell: str, index_cell: str = CITY) -> str:
        """Sorted set: recent trip requests in an H3 cell, scored by time (ms), for surge.

        Beside the index of `index_cell`, which the surge script counts supply in.
        """
        return f"{self._index(index_cell)}:demand:{cell}"

    def index_cells(self) -> str:
        """Set: every index cell that has held a driver (the sweeper and counts walk it)."""
        return f"{self.prefix}:{{cells}}:index"

    def match_lock(self, cell: str) -> str:
        """The Redis lock that serialises matching for pickups in one H3 cell."""
        if self.cell_resolution is None:
            return f"{self.prefix}:{{sup:{SUPPLY_SHARD}}}:lock:match:{cell}"
        return f"{self.prefix}:{{mlk:{cell}}}:lock"

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
