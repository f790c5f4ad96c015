"""The one Redis client of a process, and the translation of its errors.

With no `REDIS_URL` the client talks to an embedded fakeredis server in this process: handy for
a demo, lost on exit, and private to one process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

from ridehail.errors import StoreUnavailable

log = logging.getLogger(__name__)

# Errors that mean "Redis is not answering right now": a 503, not a bug.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    ConnectionError,
    TimeoutError,
    BusyLoadingError,
    OSError,
)


def connect(url: str | None, *, timeout_s: float, max_connections: int) -> aioredis.Redis:
    """A client with bounded timeouts: an outage surfaces in about `2 * timeout_s`, never hangs."""
    if url is None:
        import fakeredis

        log.warning(
            "REDIS_URL is unset: using the embedded in-process Redis (fakeredis); "
            "data lives only as long as this process",
            extra={"redis": "embedded"},
        )
        client: aioredis.Redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        return client
    # One quick retry on a broken connection (a pooled socket that Redis closed when it
    # restarted); none on a timeout, which would only double the wait.
    retry = Retry(NoBackoff(), retries=1, supported_errors=(ConnectionError,))
    # A blocking pool: a burst beyond `max_connections` waits (up to the timeout) for a free
    # connection instead of failing at once with MaxConnectionsError, taken for an outage.
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=retry,
        health_check_interval=30,
    )
    return aioredis.Redis.from_pool(pool)


@asynccontextmanager
async def translated_errors() -> AsyncIterator[None]:
    """Turn a Redis outage into `StoreUnavailable`; other Redis errors stay bugs (500)."""
    try:
        yield
    except OUTAGE_ERRORS as exc:
        raise StoreUnavailable(f"Redis unavailable: {type(exc).__name__}") from exc


async def ping(client: Any) -> bool:
    try:
        async with translated_errors():
            return bool(await client.ping())
    except StoreUnavailable:
        return False


def text(value: Any) -> str:
    """A Redis reply value as text (redis-py gives bytes; fakeredis and Lua numbers may not)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def text_or_none(value: Any) -> str | None:
    return None if value is None else text(value)
