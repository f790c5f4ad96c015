"""Do our nearest search, the fixed-radius GEOSEARCH and the brute force find the same drivers?"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from dispatch.model import Position
from dispatch.redis_supply import RedisSupply
from dispatch.service import SupplyPolicy
from ridehail.bench.city import BruteForce, LatLng
from ridehail.bench.seed import SEED_STALE_MS

Hit = tuple[str, float]  # driver id, metres
TIE_M = 1.0  # GEO stores positions to about 0.5 m; drivers this close to the k-th are ties


def same_drivers(a: Sequence[Hit], b: Sequence[Hit], tie_m: float = TIE_M) -> bool:
    """The same k drivers, allowing a swap of drivers within `tie_m` of the k-th distance."""
    if len(a) != len(b):
        return False
    if any(abs(x[1] - y[1]) > tie_m for x, y in zip(a, b, strict=True)):
        return False
    differ = {i for i, _ in a} ^ {i for i, _ in b}
    if not differ:
        return True
    kth = max(a[-1][1], b[-1][1])
    distance = dict(a) | dict(b)
    return all(distance[i] >= kth - tie_m for i in differ)


def rounds_for(kth_m: float, initial_m: float) -> int:
    """How many circles our search tries before one holds the k-th nearest driver."""
    return 1 if kth_m <= initial_m else 1 + math.ceil(math.log2(kth_m / initial_m))


async def ours(store: RedisSupply, policy: SupplyPolicy, at: LatLng, k: int) -> list[Hit]:
    found = await store.nearest(
        Position(*at),
        k,
        initial_radius_m=policy.initial_radius_m,
        max_radius_m=policy.max_radius_m,
        stale_after_ms=SEED_STALE_MS,
    )
    return [(d.driver_id, d.distance_m) for d in found]


async def command(client: aioredis.Redis, *args: str | float) -> Any:
    """A raw Redis command (redis-py leaves `execute_command` untyped)."""
    return await client.execute_command(*args)  # type: ignore[no-untyped-call]


async def fixed_radius(
    client: aioredis.Redis, geo_key: str, at: LatLng, k: int, radius_m: float
) -> list[Hit]:
    reply = await command(
        client, "GEOSEARCH", geo_key, "FROMLONLAT", at[1], at[0], "BYRADIUS", radius_m, "m",
        "ASC", "COUNT", k, "WITHDIST",
    )  # fmt: skip
    return [(m.decode(), float(d)) for m, d in reply]


async def compare(
    client: aioredis.Redis,
    store: RedisSupply,
    policy: SupplyPolicy,
    geo_key: str,
    brute: BruteForce,
    points: Sequence[LatLng],
    *,
    k: int,
    baseline_radius_m: float,
    brute_points: int,
) -> dict[str, Any]:
    """Run all three on the same points; count agreements and describe our search's work."""
    vs_base = base_full = vs_brute = brute_checked = 0
    kth: list[float] = []
    bad: list[dict[str, Any]] = []
    for n, at in enumerate(points):
        mine = await ours(store, policy, at, k)
        kth.append(mine[-1][1] if mine else float("nan"))
        base = await fixed_radius(client, geo_key, at, k, baseline_radius_m)
        if len(base) == k:
            base_full += 1
            vs_base += same_drivers(mine, base)
            if not same_drivers(mine, base) and len(bad) < 3:
                bad.append({"at": at, "ours": mine, "baseline": base})
        if n < brute_points:
            brute_checked += 1
            truth = brute.nearest(at[0], at[1], k)
            vs_brute += same_drivers(mine, truth)
            if not same_drivers(mine, truth) and len(bad) < 6:
                bad.append({"at": at, "ours": mine, "brute": truth})
    members = []
    for at in points[:20]:
        reply = await command(
            client,
            "GEOSEARCH",
            geo_key,
            "FROMLONLAT",
            at[1],
            at[0],
            "BYRADIUS",
            baseline_radius_m,
            "m",
        )
        members.append(len(reply))
    rounds = [rounds_for(d, policy.initial_radius_m) for d in kth if not math.isnan(d)]
    return {
        "points": len(points),
        "baseline_found_k": base_full,
        "same_as_baseline": vs_base,
        "brute_checked": brute_checked,
        "same_as_brute": vs_brute,
        "ok": vs_base == base_full and vs_brute == brute_checked,
        "kth_distance_m_median": round(statistics.median(kth), 1),
        "our_rounds_mean": round(statistics.fmean(rounds), 2),
        "our_final_radius_m_median": policy.initial_radius_m
        * 2 ** (statistics.median_low(rounds) - 1),
        "members_within_baseline_radius_median": statistics.median(members),
        "examples_of_disagreement": bad,
    }
