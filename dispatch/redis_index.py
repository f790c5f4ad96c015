"""The supply index on Redis: available drivers by position, an index and never the truth.

One GEO set and one last-seen set for the whole city in the one-slot layout; one pair per H3
cell when sharded (`ridehail.keys`). Record scripts (dispatch.redis_supply) decide what the
index must become and hand back index steps; this module applies them and answers searches,
exactly across cell borders when sharded (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.typing import EncodableT

from dispatch.cells import cover
from dispatch.model import NearbyDriver, Position
from ridehail import tracing
from ridehail.keys import CITY, Keys
from ridehail.lua import load_script
from ridehail.redis_conn import text, text_or_none, translated_errors

T = TypeVar("T")


async def gather(calls: Sequence[Awaitable[T]]) -> list[T]:
    return list(await asyncio.gather(*calls))


class IndexSteps:
    """Index changes that record scripts asked for, gathered per cell, applied in one round.

    Later steps for the same driver win: a batch that moves a driver A -> B -> A leaves it in A.
    """

    def __init__(self) -> None:
        self.adds: dict[str, dict[str, tuple[str, str, str]]] = {}
        self.dels: dict[str, set[str]] = {}
        self.new_cells: set[str] = set()

    def note(self, driver_id: str, step: Sequence[Any]) -> None:
        op, old, new, lng, lat, seen = (text(v) for v in step)
        if op == "add":
            self.adds.setdefault(new, {})[driver_id] = (lng, lat, seen)
            self.dels.get(new, set()).discard(driver_id)
            if old != new:
                self.new_cells.add(new)
                if old:
                    self._drop(old, driver_id)
        elif op == "del":
            self._drop(old, driver_id)

    def _drop(self, cell: str, driver_id: str) -> None:
        self.dels.setdefault(cell, set()).add(driver_id)
        self.adds.get(cell, {}).pop(driver_id, None)

    def __bool__(self) -> bool:
        return bool(self.adds or self.dels)


class RedisIndex:
    """The index of one supply store (layout from its `Keys`)."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys
        self._inline = not keys.sharded
        self._cells: frozenset[str] = frozenset()
        self._index = client.register_script(load_script("dispatch", "index_apply"))
        self._surge = client.register_script(load_script("dispatch", "surge"))
        self._nearest = client.register_script(load_script("dispatch", "nearest"))
        self._sweep = client.register_script(load_script("dispatch", "sweep_stale"))

    async def apply(self, steps: IndexSteps) -> None:
        """Apply index steps, one script call per cell, all cells at once."""
        if not steps:
            return
        k = self._keys
        calls: list[Awaitable[Any]] = []
        for cell in steps.adds.keys() | steps.dels.keys():
            adds = steps.adds.get(cell, {})
            args: list[EncodableT] = [len(adds)]
            for driver_id, (lng, lat, seen) in adds.items():
                args += [driver_id, lng, lat, seen]
            args += sorted(steps.dels.get(cell, ()))
            calls.append(self._index(keys=[k.available_geo(cell), k.last_seen(cell)], args=args))
        if steps.new_cells:
            calls.append(self._redis.sadd(k.index_cells(), *steps.new_cells))
        async with translated_errors():
            await gather(calls)

    async def follow(self, driver_id: str, step: Sequence[Any]) -> None:
        """Apply one index step a record script returned (nothing in the one-slot layout)."""
        if self._inline or not step:
            return
        steps = IndexSteps()
        steps.note(driver_id, step)
        await self.apply(steps)

    async def cells(self) -> list[str]:
        """Every index cell that has held a driver ([CITY] in the one-slot layout)."""
        if self._inline:
            return [CITY]
        async with translated_errors():
            members = await self._redis.smembers(self._keys.index_cells())
        return sorted(text(m) for m in members)

    async def _known_cells(self, count: int) -> frozenset[str]:
        """`cells`, from this process's copy while the set still has `count` members.

        The set only grows (cells are added when first indexed, never removed), so its size
        tells whether the copy is current.
        """
        if len(self._cells) != count:
            self._cells = frozenset(await self.cells())
        return self._cells

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
        """The k nearest available, fresh drivers within `max_radius_m`, exactly, nearest first.

        Sharded: first the cells the initial circle reaches, each searched up to the maximum
        radius; then any other cell that could hold something nearer than the k-th found so
        far, searched up to that distance. Nothing nearer can be in a cell not searched.
        """
        if self._inline:
            return await self._nearest_in(
                CITY, at, k, initial_radius_m, max_radius_m, stale_after_ms, exclude
            )
        resolution = self._keys.cell_resolution
        assert resolution is not None
        first = [c for _, c in cover(at, initial_radius_m, resolution)]

        def search(group: Sequence[str], radius: float) -> list[Awaitable[list[NearbyDriver]]]:
            start = min(initial_radius_m, radius)
            return [
                self._nearest_in(c, at, k, start, radius, stale_after_ms, exclude) for c in group
            ]

        found = [d for part in await gather(search(first, max_radius_m)) for d in part]
        best = _nearest_first(found, k)
        reach = best[-1].distance_m if len(best) >= k else max_radius_m
        # Cells that could hold something nearer than the k-th found (none, when the first
        # round's cells cover the whole circle of `reach`: the usual case in a busy city).
        rest = [c for _, c in cover(at, reach, resolution) if c not in first]
        if rest:
            async with translated_errors():
                count = int(await self._redis.scard(self._keys.index_cells()))
            known = await self._known_cells(count)
            rest = [c for c in rest if c in known]
        if rest:
            more = await gather(search(rest, reach))
            best = _nearest_first(found + [d for part in more for d in part], k)
        return best

    async def _nearest_in(
        self,
        cell: str,
        at: Position,
        k: int,
        initial_radius_m: float,
        max_radius_m: float,
        stale_after_ms: int,
        exclude: Sequence[str],
    ) -> list[NearbyDriver]:
        keys = [self._keys.available_geo(cell), self._keys.last_seen(cell)]
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
        """Record a request in its cell; (recent requests there, available drivers near `at`).

        Sharded, supply is counted in the pickup's own index cell only: near a cell border
        that undercounts, and surge reads a little high there (docs/scaling.md).
        """
        index_cell = self._keys.index_cell(at.lat, at.lng)
        keys = [self._keys.available_geo(index_cell), self._keys.demand(cell, index_cell)]
        args: list[EncodableT] = [at.lng, at.lat, radius_m, supply_cap, window_ms, request_id]
        async with translated_errors():
            demand, supply = await self._surge(keys=keys, args=args)
        tracing.annotate({"h3.cell": cell, "demand": int(demand), "supply": int(supply)})
        return int(demand), int(supply)

    async def sweep_stale(self, stale_after_ms: int, batch: int = 500) -> int:
        """Drop up to `batch` stale entries from each index cell; how many were dropped."""
        k = self._keys
        cells = await self.cells()
        async with translated_errors():
            removed = await gather(
                [
                    self._sweep(
                        keys=[k.available_geo(c), k.last_seen(c)], args=[stale_after_ms, batch]
                    )
                    for c in cells
                ]
            )
        return sum(int(r) for r in removed)

    async def indexed(self) -> int:
        """Drivers in the index, over every cell."""
        k = self._keys
        cells = await self.cells()
        async with translated_errors():
            return sum(await gather([self._redis.zcard(k.last_seen(c)) for c in cells]))


def _nearest_first(found: Sequence[NearbyDriver], k: int) -> list[NearbyDriver]:
    """The k nearest of `found`, each driver once (an entry can lag in a second cell briefly)."""
    best: dict[str, NearbyDriver] = {}
    for d in found:
        if d.driver_id not in best or d.distance_m < best[d.driver_id].distance_m:
            best[d.driver_id] = d
    return sorted(best.values(), key=lambda d: (d.distance_m, d.driver_id))[:k]
