"""Fixtures for the Redis Cluster tier, over the session's cluster (`redis_cluster`, in
tests/conftest.py, which the `layouts` modules of tests/integration share)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.cluster import RedisCluster

from ridehail.devcluster import Cluster


@pytest.fixture
async def cluster_client(redis_cluster: Cluster) -> AsyncIterator[RedisCluster]:
    """An async cluster client over an empty cluster (every master flushed, stats reset)."""
    await asyncio.to_thread(redis_cluster.wait_ready)
    await asyncio.to_thread(redis_cluster.flush_all)
    client = RedisCluster.from_url(redis_cluster.url, socket_timeout=5, socket_connect_timeout=2)
    await client.initialize()
    yield client
    await client.aclose()
