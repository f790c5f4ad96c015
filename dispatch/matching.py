"""Matching: pick the nearest available driver and claim it, under a Redis lock.

The lock serialises matching work so that two dispatchers do not race for the same nearest
driver (a lost race is wasted work). Correctness does not rest on it: the claim is a
compare-and-set on the driver's record, so a dispatcher that stalls past the lock's expiry finds
the driver taken and moves on. See docs/dispatch.md.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import h3
import redis.asyncio as aioredis
from redis.exceptions import LockError

from dispatch.model import Claim, Position
from dispatch.redis_supply import RedisSupply
from ridehail import tracing
from ridehail.keys import Keys
from ridehail.redis_conn import translated_errors

log = logging.getLogger(__name__)

Pause = Callable[[], Awaitable[None]]


class MatchOutcome(StrEnum):
    CLAIMED = "claimed"
    NOBODY = "nobody"  # no available, fresh driver within the search limits
    BUSY = "busy"  # the lock was not free in time; try again later


@dataclass(frozen=True, slots=True)
class MatchResult:
    outcome: MatchOutcome
    claim: Claim | None = None


@dataclass(frozen=True, slots=True)
class MatchPolicy:
    max_radius_m: float = 10_000.0
    initial_radius_m: float = 100.0
    candidates: int = 5
    offer_ttl_ms: int = 15_000
    stale_after_ms: int = 30_000
    lock_timeout_s: float = 2.0
    lock_wait_s: float = 1.0
    lock_resolution: int = (
        7  # H3 cells of about 5 km²: matching in different cells runs in parallel
    )


class Matcher:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        supply: RedisSupply,
        policy: MatchPolicy,
        pause_before_claim: Pause | None = None,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._supply = supply
        self.policy = policy
        # A seam for tests that stall a dispatcher mid-section (e.g. past its lock's expiry).
        self._pause_before_claim = pause_before_claim

    @tracing.traced("match.lock")  # the span lasts from acquire to release
    async def claim_nearest(
        self, trip_id: str, pickup: Position, exclude: Sequence[str], offer_json: str
    ) -> MatchResult:
        p = self.policy
        # A fresh Lock object per critical section, always with a timeout.
        lock = self._redis.lock(
            self._keys.match_lock(h3.latlng_to_cell(pickup.lat, pickup.lng, p.lock_resolution)),
            timeout=p.lock_timeout_s,
            blocking_timeout=p.lock_wait_s,
            sleep=0.002,  # sections last about a millisecond; redis-py's default polls at 100 ms
        )
        async with translated_errors():
            acquired = await lock.acquire()
        tracing.annotate({"trip.id": trip_id, "lock.acquired": bool(acquired)})
        if not acquired:
            return MatchResult(MatchOutcome.BUSY)
        try:
            result = await self._claim_locked(trip_id, pickup, exclude, offer_json)
            tracing.annotate({"outcome": result.outcome.value})
            return result
        finally:
            try:
                async with translated_errors():
                    await lock.release()
            except LockError:
                log.warning("match lock expired before release", extra={"trip_id": trip_id})

    async def _claim_locked(
        self, trip_id: str, pickup: Position, exclude: Sequence[str], offer_json: str
    ) -> MatchResult:
        p = self.policy
        skipped = list(exclude)
        for _ in range(3):  # a candidate can be taken between the search and the claim
            with tracing.span("match.nearest") as span:
                candidates = await self._supply.nearest(
                    pickup,
                    p.candidates,
                    initial_radius_m=p.initial_radius_m,
                    max_radius_m=p.max_radius_m,
                    stale_after_ms=p.stale_after_ms,
                    exclude=skipped,
                )
                span.set_attribute("candidates", len(candidates))
            if not candidates:
                return MatchResult(MatchOutcome.NOBODY)
            if self._pause_before_claim is not None:
                await self._pause_before_claim()
            for candidate in candidates:
                with tracing.span("match.claim", {"driver.id": candidate.driver_id}) as span:
                    claim = await self._supply.claim(
                        candidate.driver_id,
                        trip_id,
                        stale_after_ms=p.stale_after_ms,
                        ttl_ms=p.offer_ttl_ms,
                        offer_json=offer_json,
                    )
                    span.set_attribute("claimed", claim is not None)
                if claim is not None:
                    return MatchResult(MatchOutcome.CLAIMED, claim)
                skipped.append(candidate.driver_id)
        return MatchResult(MatchOutcome.BUSY)
