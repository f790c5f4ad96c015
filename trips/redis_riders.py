"""Rider records on Redis."""

from __future__ import annotations

import redis.asyncio as aioredis

from ridehail.keys import Keys
from ridehail.redis_conn import text_or_none, translated_errors


class RedisRiders:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    async def create_rider(self, rider_id: str, name: str, token_hash: str) -> None:
        async with translated_errors():
            await self._redis.hset(
                self._keys.rider(rider_id), mapping={"name": name, "tok": token_hash}
            )

    async def token_hash(self, rider_id: str) -> str | None:
        async with translated_errors():
            value = await self._redis.hget(self._keys.rider(rider_id), "tok")
        return text_or_none(value)
