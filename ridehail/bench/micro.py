"""In-process timings of the batch endpoint's steps, one 1000-row body, no HTTP and no Redis.

They say what a change would save per batch: orjson instead of json for the body, one list
validation instead of one `TypeAdapter` call per row, the store's argument building.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter

from dispatch.model import LocationUpdate
from dispatch.schemas import BatchRow
from ridehail.bench.city import City, driver_id
from ridehail.bench.measure import progress


class _Body(BaseModel):
    updates: list[BatchRow]


def _us(fn: Callable[[], object], repeat: int = 30) -> float:
    """Best of `repeat` runs, in microseconds (best: the least disturbed by the other core)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return round(best * 1e6, 1)


def run_micro(rows: int = 1000) -> dict[str, Any]:
    points = City().random_points(random.Random(3), rows)
    body = json.dumps(
        {
            "updates": [
                {"driver_id": driver_id(i), "lat": p[0], "lng": p[1]} for i, p in enumerate(points)
            ]
        }
    ).encode()
    raw_rows: list[Any] = json.loads(body)["updates"]
    one = TypeAdapter(BatchRow)
    many = TypeAdapter(list[BatchRow])
    whole = TypeAdapter(_Body)
    validated = [one.validate_python(r) for r in raw_rows]

    def per_row() -> None:
        for r in raw_rows:
            one.validate_python(r)

    def to_updates() -> None:
        for row in validated:
            LocationUpdate(row.driver_id, row.to_position(), None)

    def store_args() -> None:
        args: list[str] = []
        for row in validated:
            args += [row.driver_id, repr(row.lng), repr(row.lat), "", "", ""]

    steps = {
        "json.loads body": _us(lambda: json.loads(body)),
        "orjson.loads body": _us(lambda: orjson.loads(body)),
        "validate per row (as the endpoint does)": _us(per_row),
        "validate the list at once (validate_python)": _us(lambda: many.validate_python(raw_rows)),
        "validate the JSON bytes at once (validate_json)": _us(lambda: whole.validate_json(body)),
        "LocationUpdate + Position per row": _us(to_updates),
        "Lua ARGV building per row": _us(store_args),
    }
    for name, us in steps.items():
        progress(f"  micro, {rows} rows: {name}: {us:,.0f} us")
    return {"rows": rows, "body_bytes": len(body), "best_us": steps}
