"""The one Redis client of a process, and the translation of its errors.

With no `REDIS_URL` the client talks to an embedded fakeredis server in this process: handy for
a demo, lost on exit, and private to one process. With `REDIS_CLUSTER_NODES` it is redis-py's
cluster client, which follows slots as they move and finds a promoted replica after a failover.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    ReadOnlyError,
    RedisClusterUnreachableError,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
)

from ridehail.errors import StoreUnavailable

log = logging.getLogger(__name__)

# Errors that mean "Redis is not answering right now": a 503, not a bug. The cluster ones come
# while a master is down or a failover is under way (CLUSTERDOWN, TRYAGAIN, a slot with no
# known owner, a write that reached a node just demoted to replica).
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    ConnectionError,
    TimeoutError,
    BusyLoadingError,
    OSError,
    ClusterDownError,
    TryAgainError,
    ReadOnlyError,
    SlotNotCoveredError,
    RedisClusterUnreachableError,
)


def connect(
    url: str | None,
    *,
    timeout_s: float,
    max_connections: int,
    cluster_nodes: str | None = None,
) -> aioredis.Redis:
    """A client with bounded timeouts: an outage surfaces in about `2 * timeout_s`, never hangs."""
    if cluster_nodes:
        return connect_cluster(cluster_nodes, timeout_s=timeout_s, max_connections=max_connections)
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


def parse_nodes(nodes: str) -> list[tuple[str, int]]:
    """`host:port,host:port,...` as pairs; ValueError names the first that is not one."""
    pairs = []
    for node in nodes.split(","):
        host, _, port = node.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65_536:
            raise ValueError(f"{node.strip()!r} is not host:port")
        pairs.append((host, int(port)))
    return pairs


def connect_cluster(nodes: str, *, timeout_s: float, max_connections: int) -> aioredis.Redis:
    """redis-py's cluster client over `host:port,...` start nodes.

    While a master is down and its replica not yet promoted, commands for its slots fail with
    a connection error (a 503 to our callers) after one quick retry; the client then reloads
    the slot map, so ridehail carries on after the failover with no restart. Typed as a plain
    client: it offers the same commands, scripts, pipelines and locks that ridehail uses.
    """
    cluster = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in parse_nodes(nodes)],
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        # Per node. The cluster client's pool does not wait for a free connection, so it is
        # sized for a burst: one request fans out to several index cells at once.
        max_connections=max(256, 4 * max_connections),
        retry=Retry(NoBackoff(), retries=1),
        health_check_interval=30,
    )
    return cast(aioredis.Redis, cluster)


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


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


async def read_streams(
    client: Any, cursors: dict[str, str], *, count: int, block_ms: int
) -> list[Any]:
    """XREAD of several streams: `[(name, [(id, fields), ...]), ...]`, maybe empty.

    One blocking XREAD on a single Redis. A cluster refuses an XREAD whose streams are on
    different slots, so there each stream is read without blocking, all at once, and an empty
    round waits `block_ms` before it returns (the caller reads again).
    """
    if not is_cluster(client):
        return list(await client.xread(cursors, count=count, block=block_ms) or [])
    replies = await asyncio.gather(
        *(client.xread({stream: cursor}, count=count) for stream, cursor in cursors.items())
    )
    out = [entry for reply in replies for entry in reply or []]
    if not out:
        await asyncio.sleep(block_ms / 1000)
    return out


def text(value: Any) -> str:
    """A Redis reply value as text (redis-py gives bytes; fakeredis and Lua numbers may not)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def text_or_none(value: Any) -> str | None:
    return None if value is None else text(value)
