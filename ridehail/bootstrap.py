"""The one place adapters are wired into services."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import redis.asyncio as aioredis

from dispatch.matching import Matcher, MatchPolicy, Pause
from dispatch.redis_supply import RedisSupply
from dispatch.service import SupplyPolicy, SupplyService
from ratelimit.bucket import TokenBucket
from ratelimit.model import Limit
from ridehail.auth import Authenticator, Role
from ridehail.keys import Keys
from ridehail.observability import BreakerMetrics, PrometheusPricingMetrics, PrometheusTripMetrics
from ridehail.settings import Settings, parse_limit
from trips.model import RateTable
from trips.pricing_client import PricingClient, PricingPolicy, new_breaker
from trips.redis_riders import RedisRiders
from trips.redis_trips import RedisTrips
from trips.service import TripPolicy, TripService


@dataclass(frozen=True, slots=True)
class Limits:
    trip_requests: Limit
    location_updates: Limit
    registrations: Limit
    pricing: Limit


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    redis: aioredis.Redis
    keys: Keys
    supply: SupplyService
    supply_store: RedisSupply
    riders: RedisRiders
    trips: TripService
    pricing: PricingClient
    auth: Authenticator
    limits: Limits
    buckets: TokenBucket


def build_limits(settings: Settings) -> Limits:
    return Limits(
        trip_requests=parse_limit("trip-requests", settings.limit_trip_requests),
        location_updates=parse_limit("location-updates", settings.limit_location_updates),
        registrations=parse_limit("registrations", settings.limit_registrations),
        pricing=parse_limit("pricing-quota", settings.pricing_quota),
    )


def build_pricing(
    settings: Settings, keys: Keys, buckets: TokenBucket, http: httpx.AsyncClient | None
) -> PricingClient:
    breaker = new_breaker(
        settings.pricing_breaker_fail_max,
        settings.pricing_breaker_reset_s,
        BreakerMetrics("pricing"),
    )
    policy = PricingPolicy(
        deadline_s=settings.pricing_deadline_s,
        attempt_timeout_s=settings.pricing_attempt_timeout_s,
        connect_timeout_s=min(0.05, settings.pricing_attempt_timeout_s),
        max_attempts=settings.pricing_max_attempts,
    )
    return PricingClient(
        http,
        breaker,
        buckets,
        keys.bucket("pricing", "quota"),
        build_limits(settings).pricing,
        RateTable(),
        policy,
        PrometheusPricingMetrics(),
    )


def build_services(
    settings: Settings,
    redis: aioredis.Redis,
    pause_before_claim: Pause | None = None,
    http: httpx.AsyncClient | None = None,
) -> Services:
    """Wire everything onto one Redis client and one HTTP client (None: pricing unconfigured)."""
    limits = build_limits(settings)
    buckets = TokenBucket(redis)
    keys = Keys(settings.key_prefix, cell_resolution=settings.index_resolution)
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
        lock_resolution=settings.match_lock_resolution,
    )
    matcher = Matcher(redis, keys, supply_store, match_policy, pause_before_claim)
    pricing = build_pricing(settings, keys, buckets, http)
    trip_policy = TripPolicy(
        trip_requests=limits.trip_requests,
        offer_ttl_ms=settings.offer_ttl_ms,
        stale_after_ms=settings.stale_after_ms,
        h3_resolution=settings.h3_resolution,
        surge_radius_m=settings.surge_radius_m,
        surge_window_ms=int(settings.surge_window_s * 1000),
    )
    trips = TripService(
        RedisTrips(redis, keys, settings.idempotency_ttl_s),
        supply_store,
        matcher,
        pricing,
        trip_policy,
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
        pricing=pricing,
        auth=auth,
        limits=limits,
        buckets=buckets,
    )
