"""The one place adapters are wired into services."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from dispatch.matching import Matcher, MatchPolicy, Pause
from dispatch.redis_supply import RedisSupply
from dispatch.service import SupplyPolicy, SupplyService
from ridehail.auth import Authenticator, Role
from ridehail.keys import Keys
from ridehail.observability import PrometheusTripMetrics
from ridehail.settings import Settings
from trips.model import RateTable
from trips.redis_riders import RedisRiders
from trips.redis_trips import RedisTrips
from trips.service import TripPolicy, TripService


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    redis: aioredis.Redis
    keys: Keys
    supply: SupplyService
    supply_store: RedisSupply
    riders: RedisRiders
    trips: TripService
    auth: Authenticator


def build_services(
    settings: Settings, redis: aioredis.Redis, pause_before_claim: Pause | None = None
) -> Services:
    keys = Keys(settings.key_prefix)
    supply_store = RedisSupply(redis, keys, positions_cap=settings.positions_stream_cap)
    riders = RedisRiders(redis, keys)
    supply_policy = SupplyPolicy(
        stale_after_ms=settings.stale_after_ms,
        initial_radius_m=settings.search_initial_radius_m,
        max_radius_m=settings.search_max_radius_m,
    )
    match_policy = MatchPolicy(
        max_radius_m=settings.dispatch_max_radius_m,
        initial_radius_m=settings.search_initial_radius_m,
        candidates=settings.dispatch_candidates,
        offer_ttl_ms=settings.offer_ttl_ms,
        stale_after_ms=settings.stale_after_ms,
        lock_timeout_s=settings.match_lock_timeout_s,
    )
    matcher = Matcher(redis, keys, supply_store, match_policy, pause_before_claim)
    trips = TripService(
        RedisTrips(redis, keys, settings.idempotency_ttl_s),
        supply_store,
        matcher,
        RateTable(),
        TripPolicy(offer_ttl_ms=settings.offer_ttl_ms, stale_after_ms=settings.stale_after_ms),
        PrometheusTripMetrics(),
    )
    admin = settings.admin_token.get_secret_value() if settings.admin_token else None
    auth = Authenticator(
        {Role.DRIVER: supply_store.token_hash, Role.RIDER: riders.token_hash}, admin
    )
    return Services(
        settings=settings,
        redis=redis,
        keys=keys,
        supply=SupplyService(supply_store, supply_policy),
        supply_store=supply_store,
        riders=riders,
        trips=trips,
        auth=auth,
    )
