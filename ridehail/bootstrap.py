"""The one place adapters are wired into services."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from dispatch.redis_supply import RedisSupply
from dispatch.service import SupplyPolicy, SupplyService
from ridehail.auth import Authenticator, Role
from ridehail.keys import Keys
from ridehail.settings import Settings
from trips.redis_riders import RedisRiders


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    redis: aioredis.Redis
    supply: SupplyService
    supply_store: RedisSupply
    riders: RedisRiders
    auth: Authenticator


def build_services(settings: Settings, redis: aioredis.Redis) -> Services:
    keys = Keys(settings.key_prefix)
    supply_store = RedisSupply(redis, keys)
    riders = RedisRiders(redis, keys)
    policy = SupplyPolicy(
        stale_after_ms=settings.stale_after_ms,
        initial_radius_m=settings.search_initial_radius_m,
        max_radius_m=settings.search_max_radius_m,
    )
    admin = settings.admin_token.get_secret_value() if settings.admin_token else None
    auth = Authenticator(
        {Role.DRIVER: supply_store.token_hash, Role.RIDER: riders.token_hash}, admin
    )
    return Services(
        settings=settings,
        redis=redis,
        supply=SupplyService(supply_store, policy),
        supply_store=supply_store,
        riders=riders,
        auth=auth,
    )
