"""Every Redis key ridehail uses, built in this one module.

Hash tags (the `{...}` part) decide the Redis Cluster slot. Whatever one Lua script touches
carries the same tag, so every script runs on one slot:

- `{sup:<shard>}`: a supply shard. A driver's record, the GEO index of available drivers and
  their last-seen times live together, so one script can move a driver and its index entry
  atomically. There is one shard today; sharding supply by geo cell is how it grows.
- `{rdr:<id>}`: a rider's record.
"""

from __future__ import annotations

from dataclasses import dataclass

SUPPLY_SHARD = "0"


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "rh"

    def _supply(self, shard: str = SUPPLY_SHARD) -> str:
        return f"{self.prefix}:{{sup:{shard}}}"

    def driver(self, driver_id: str) -> str:
        """Hash: the driver's record, the truth about that driver."""
        return f"{self._supply()}:driver:{driver_id}"

    def available_geo(self) -> str:
        """GEO set: available drivers with a recent position (an index, never the truth)."""
        return f"{self._supply()}:geo"

    def last_seen(self) -> str:
        """Sorted set: driver id scored by the server time (ms) of its last applied ping."""
        return f"{self._supply()}:seen"

    def rider(self, rider_id: str) -> str:
        """Hash: the rider's record."""
        return f"{self.prefix}:{{rdr:{rider_id}}}:rider"
