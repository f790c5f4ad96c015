"""Redis keys: whatever one supply script touches lands in one Redis Cluster slot."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ridehail.keys import Keys

CLUSTER_SLOTS = 16_384


def crc16_xmodem(data: bytes) -> int:
    """The CRC16 Redis Cluster hashes keys with (XMODEM: poly 0x1021, init 0)."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def hash_tag(key: str) -> str | None:
    """What is between the first `{` and the next `}`, if that is not empty (Redis's rule)."""
    start = key.find("{")
    end = key.find("}", start + 1)
    if start == -1 or end == -1 or end == start + 1:
        return None
    return key[start + 1 : end]


def cluster_slot(key: str) -> int:
    tag = hash_tag(key)
    return crc16_xmodem((key if tag is None else tag).encode()) % CLUSTER_SLOTS


def supply_script_keys(keys: Keys, driver_ids: list[str]) -> list[str]:
    """The keys the supply scripts take: the index, the last-seen set and driver records."""
    return [keys.available_geo(), keys.last_seen(), *(keys.driver(d) for d in driver_ids)]


def test_crc16_matches_the_check_value_of_the_redis_cluster_spec() -> None:
    assert crc16_xmodem(b"123456789") == 0x31C3


@pytest.mark.parametrize(
    ("key", "slot"),
    [("foo", 12182), ("bar", 5061), ("{user1000}.following", cluster_slot("user1000"))],
)
def test_cluster_slot_matches_what_redis_answers_to_cluster_keyslot(key: str, slot: int) -> None:
    assert cluster_slot(key) == slot


def test_an_empty_hash_tag_does_not_count_as_a_tag() -> None:
    assert hash_tag("a{}b") is None
    assert hash_tag("a{b}c{d}") == "b"


def test_every_key_of_a_supply_script_carries_the_same_hash_tag() -> None:
    keys = Keys("rh")
    tags = {hash_tag(k) for k in supply_script_keys(keys, ["drv_1", "drv_2", "drv_ffff"])}
    assert tags == {"sup:0"}


def test_every_key_of_a_supply_script_is_in_one_cluster_slot() -> None:
    keys = Keys("rh")
    slots = {cluster_slot(k) for k in supply_script_keys(keys, [f"drv_{i}" for i in range(50)])}
    assert len(slots) == 1


def test_different_riders_spread_over_different_slots() -> None:
    keys = Keys("rh")
    slots = {cluster_slot(keys.rider(f"rdr_{i:016x}")) for i in range(100)}
    assert len(slots) > 50


def test_a_rider_record_is_tagged_by_its_rider() -> None:
    assert hash_tag(Keys("rh").rider("rdr_abc")) == "rdr:rdr_abc"


def test_keys_of_different_prefixes_never_collide() -> None:
    a, b = Keys("a"), Keys("b")
    assert {a.driver("d"), a.available_geo(), a.last_seen()}.isdisjoint(
        {b.driver("d"), b.available_geo(), b.last_seen()}
    )


@given(
    prefix=st.from_regex(r"[a-z][a-z0-9_-]{0,15}", fullmatch=True),
    driver_ids=st.lists(st.text(min_size=1, max_size=64), min_size=1, max_size=5),
)
def test_any_prefix_and_any_driver_ids_keep_a_supply_script_on_one_slot(
    prefix: str, driver_ids: list[str]
) -> None:
    # Driver ids come from the URL path; braces in them must not move a record off the shard.
    keys = Keys(prefix)
    script_keys = supply_script_keys(keys, driver_ids)
    assert {hash_tag(k) for k in script_keys} == {"sup:0"}
    assert len({cluster_slot(k) for k in script_keys}) == 1


# -- the sharded layout (Redis Cluster) ---------------------------------------------------------
SHARDED = Keys("rh", cell_resolution=6)
PICKUPS = st.tuples(st.floats(59.9, 60.4), st.floats(24.5, 25.3))


@given(driver_id=st.text(min_size=1, max_size=64))
def test_sharded_a_driver_script_touches_its_record_bucket_queue_and_stream_on_one_slot(
    driver_id: str,
) -> None:
    shard = SHARDED.driver_shard(driver_id)
    script_keys = [
        SHARDED.driver(driver_id),
        SHARDED.location_bucket(driver_id),
        SHARDED.offer_expiries(shard),
        SHARDED.positions(shard),
    ]
    assert len({cluster_slot(k) for k in script_keys}) == 1


@given(at=PICKUPS, cell=st.sampled_from(["871126d33ffffff", "881126d339fffff"]))
def test_sharded_an_index_script_touches_one_cell_on_one_slot(
    at: tuple[float, float], cell: str
) -> None:
    index_cell = SHARDED.index_cell(*at)
    script_keys = [
        SHARDED.available_geo(index_cell),
        SHARDED.last_seen(index_cell),
        SHARDED.demand(cell, index_cell),
    ]
    assert len({cluster_slot(k) for k in script_keys}) == 1


def test_sharded_drivers_and_cells_spread_over_many_slots() -> None:
    drivers = {cluster_slot(SHARDED.driver(f"drv_{i:016x}")) for i in range(1_000)}
    import h3

    cells = h3.grid_disk(SHARDED.index_cell(60.17, 24.94), 3)
    index = {cluster_slot(SHARDED.available_geo(c)) for c in cells}
    assert len(drivers) == 16  # DRIVER_SHARDS
    assert len(index) == len(cells)  # 37 cells, 37 slots


def test_one_slot_layout_keeps_the_keys_it_always_had() -> None:
    keys = Keys("rh")
    assert keys.driver("d") == "rh:{sup:0}:driver:d"
    assert keys.available_geo() == "rh:{sup:0}:geo"
    assert keys.offer_expiries() == "rh:{sup:0}:offers"
    assert keys.all_positions() == ["rh:{sup:0}:positions"]
