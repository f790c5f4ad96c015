"""Double-booking check after a trips bench: every driver record and every trip, scanned.

A double booking is a driver named by two live trips (offered, accepted, arrived, in progress),
or a live trip whose driver's record does not name that trip back.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import redis

from ridehail.keys import Keys
from trips.model import HOLDS_DRIVER

_LIVE = {s.value for s in HOLDS_DRIVER}


def _scan(client: redis.Redis, pattern: str, fields: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    keys = list(client.scan_iter(match=pattern, count=5000))
    for n in range(0, len(keys), 1000):
        chunk = keys[n : n + 1000]
        pipe = client.pipeline(transaction=False)
        for key in chunk:
            pipe.hmget(key, fields)
        for key, values in zip(chunk, pipe.execute(), strict=True):
            name = key.decode().rsplit(":", 1)[1]
            out[name] = [v.decode() if v else "" for v in values]
    return out


def check(redis_url: str, keys: Keys) -> dict[str, Any]:
    client = redis.Redis.from_url(redis_url)
    try:
        drivers = _scan(client, keys.driver("*"), ("status", "trip"))
        trips = _scan(client, f"{keys.prefix}:{{trp:*}}:trip:*", ("state", "driver"))
    finally:
        client.close()
    live = {t: d for t, (state, d) in trips.items() if state in _LIVE and d}
    per_driver = Counter(live.values())
    not_named_back = sum(1 for t, d in live.items() if drivers.get(d, ["", ""])[1] != t)
    holding = {d: t for d, (status, t) in drivers.items() if status != "available" and t}
    dangling = sum(1 for d, t in holding.items() if live.get(t) != d)
    return {
        "drivers_scanned": len(drivers),
        "trips_scanned": len(trips),
        "live_trips": len(live),
        "trip_states": dict(Counter(state for state, _ in trips.values())),
        "drivers_in_two_live_trips": sum(1 for n in per_driver.values() if n > 1),
        "trips_not_named_back": not_named_back,
        "drivers_naming_a_trip_that_is_not_theirs": dangling,
        "double_bookings": sum(1 for n in per_driver.values() if n > 1) + not_named_back,
    }
