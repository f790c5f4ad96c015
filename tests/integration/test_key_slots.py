"""What a real Redis Cluster node says about our keys: one supply script, one slot."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from ridehail.keys import Keys
from tests.conftest import require_redis_server
from tests.support import running_redis
from tests.unit.test_keys import cluster_slot


@pytest.fixture
async def cluster_node() -> AsyncIterator[aioredis.Redis]:
    """A lone cluster-enabled redis-server: enough to ask CLUSTER KEYSLOT."""
    require_redis_server()
    with running_redis("--cluster-enabled", "yes") as url:
        async with aioredis.Redis.from_url(url) as client:
            yield client


async def slot(node: aioredis.Redis, key: str) -> int:
    return int(await node.execute_command("CLUSTER", "KEYSLOT", key))


async def test_every_supply_key_is_in_one_cluster_slot_by_redis_own_reckoning(
    cluster_node: aioredis.Redis,
) -> None:
    keys = Keys("rh")
    supply = [
        keys.available_geo(),
        keys.last_seen(),
        keys.offer_expiries(),
        keys.match_lock("871126d33ffffff"),
        keys.positions(),
        *(keys.driver(f"drv_{secrets.token_hex(8)}") for _ in range(50)),
        keys.driver("drv_{weird}"),
    ]
    assert len({await slot(cluster_node, k) for k in supply}) == 1


async def test_riders_land_on_many_slots_by_redis_own_reckoning(
    cluster_node: aioredis.Redis,
) -> None:
    keys = Keys("rh")
    riders = [keys.rider(f"rdr_{secrets.token_hex(8)}") for _ in range(50)]
    assert len({await slot(cluster_node, k) for k in riders}) > 25


async def test_the_slot_the_unit_tests_compute_is_the_one_redis_computes(
    cluster_node: aioredis.Redis,
) -> None:
    keys = Keys("t" + secrets.token_hex(3))
    sample = [
        keys.available_geo(),
        keys.driver("drv_1"),
        keys.rider("rdr_1"),
        "no-tag-at-all",
        "empty{}tag",
        "{a}{b}",
        *(secrets.token_hex(6) for _ in range(30)),
    ]
    for key in sample:
        assert cluster_slot(key) == await slot(cluster_node, key), key
