"""The Redis Cluster fixture itself: keys spread over its masters, and it survives a failover."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ClusterError, ConnectionError, RedisClusterException, TimeoutError

from ridehail.devcluster import Cluster

pytestmark = [pytest.mark.real_redis, pytest.mark.timeout(60)]

# What a cluster client may raise while the topology it knows is out of date.
FAILOVER_ERRORS = (ConnectionError, TimeoutError, ClusterError, RedisClusterException)


def owners(cluster: Cluster, keys: list[str]) -> Counter[int]:
    """How many of `keys` each master should hold, by CLUSTER KEYSLOT and the slot map."""
    return Counter(cluster.master_for_slot(cluster.keyslot(key)) for key in keys)


async def test_keys_with_different_hash_tags_spread_over_several_masters(
    redis_cluster: Cluster, cluster_client: RedisCluster
) -> None:
    keys = [f"{{rider-{secrets.token_hex(6)}}}:trip" for _ in range(60)]
    for key in keys:
        await cluster_client.set(key, "1")

    expected = await asyncio.to_thread(owners, redis_cluster, keys)
    stats = await asyncio.to_thread(redis_cluster.per_master_stats)

    assert len(expected) >= 2
    assert {port: s["keys"] for port, s in stats.items() if s["keys"]} == expected
    # One SET per key, each counted on the master that served it, and nothing else counted.
    assert {port: s["commands"] for port, s in stats.items() if s["commands"]} == expected


async def test_keys_sharing_a_hash_tag_all_land_on_one_master(
    redis_cluster: Cluster, cluster_client: RedisCluster
) -> None:
    tag = f"driver-{secrets.token_hex(6)}"
    for field in ("location", "status", "offer", "trip"):
        await cluster_client.set(f"{{{tag}}}:{field}", "1")

    stats = await asyncio.to_thread(redis_cluster.per_master_stats)

    assert sorted(s["keys"] for s in stats.values()) == [0, 0, 4]


async def test_after_a_master_is_killed_its_replica_takes_over_and_its_slots_take_writes(
    redis_cluster: Cluster, cluster_client: RedisCluster
) -> None:
    key = f"{{failover-{secrets.token_hex(6)}}}:k"
    await cluster_client.set(key, "before")
    victim = await asyncio.to_thread(redis_cluster.master_for_slot, redis_cluster.keyslot(key))
    await asyncio.to_thread(redis_cluster.wait_replicated, victim)

    await asyncio.to_thread(redis_cluster.stop_master, victim)
    try:
        promoted = await asyncio.to_thread(redis_cluster.wait_failover, victim)
        masters = await asyncio.to_thread(redis_cluster.masters)
        assert promoted in masters
        assert victim not in masters
        assert len(masters) == 3

        # The client learns the new topology on its own; a few tries leave it the time to.
        deadline = time.monotonic() + 10
        while True:
            try:
                survived = await cluster_client.get(key)
                await cluster_client.set(key, "after")
                break
            except FAILOVER_ERRORS:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.25)
        assert survived == b"before"
        assert await cluster_client.get(key) == b"after"
    finally:
        await asyncio.to_thread(redis_cluster.restart, victim)

    assert victim in await asyncio.to_thread(redis_cluster.replicas)
    assert len(await asyncio.to_thread(redis_cluster.masters)) == 3
