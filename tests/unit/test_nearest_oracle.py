"""The brute-force check the nearby tests rely on: it must refuse every kind of wrong answer."""

from __future__ import annotations

from typing import Any

import pytest

from dispatch.model import haversine_m
from tests.fleet import HELSINKI, assert_exact_nearest, offset

# Five drivers due north at 100, 200, ... 500 m.
DRIVERS = {f"d{n}": offset(HELSINKI, 100 * n, 0) for n in range(1, 6)}


def answer(*ids: str) -> list[dict[str, Any]]:
    return [
        {
            "driver_id": i,
            "lat": DRIVERS[i].lat,
            "lng": DRIVERS[i].lng,
            "distance_m": round(haversine_m(HELSINKI, DRIVERS[i]), 2),
        }
        for i in ids
    ]


def test_the_right_answer_passes() -> None:
    assert_exact_nearest(answer("d1", "d2", "d3"), DRIVERS, HELSINKI, radius_m=1_000, limit=3)
    assert_exact_nearest(answer("d1", "d2"), DRIVERS, HELSINKI, radius_m=250, limit=10)
    assert_exact_nearest([], DRIVERS, HELSINKI, radius_m=50, limit=10)


def test_a_near_tie_at_the_radius_may_go_either_way() -> None:
    assert_exact_nearest(answer("d1", "d2"), DRIVERS, HELSINKI, radius_m=199.5, limit=10)
    assert_exact_nearest(answer("d1"), DRIVERS, HELSINKI, radius_m=200.5, limit=10)


@pytest.mark.parametrize(
    ("found", "radius_m", "limit"),
    [
        (answer("d1", "d3", "d4"), 1_000, 3),  # skipped d2, which is nearer
        (answer("d2", "d1", "d3"), 1_000, 3),  # not nearest first
        (answer("d1", "d2"), 1_000, 3),  # fewer than k while more are in range
        (answer("d1", "d2", "d3"), 250, 10),  # d3 is beyond the radius
        (answer("d1", "d1"), 1_000, 2),  # a driver twice
        (answer("d1", "d2", "d3"), 1_000, 2),  # more than k
        ([{**answer("d1")[0], "driver_id": "ghost"}], 1_000, 1),  # not an eligible driver
        ([{**answer("d1")[0], "distance_m": 150.0}], 1_000, 1),  # a wrong distance
        ([{**answer("d1")[0], "lat": HELSINKI.lat}], 1_000, 1),  # a wrong position
        ([], 1_000, 1),  # nothing, though d1 is right there
    ],
    ids=[
        "skips a nearer driver",
        "out of order",
        "short while more are in range",
        "beyond the radius",
        "duplicate",
        "more than k",
        "unknown driver",
        "wrong distance",
        "wrong position",
        "empty",
    ],
)
def test_a_wrong_answer_fails(found: list[dict[str, Any]], radius_m: float, limit: int) -> None:
    with pytest.raises(AssertionError):
        assert_exact_nearest(found, DRIVERS, HELSINKI, radius_m=radius_m, limit=limit)


def test_the_offset_helper_puts_a_point_where_the_tests_say() -> None:
    assert haversine_m(HELSINKI, DRIVERS["d3"]) == pytest.approx(300, abs=0.01)
    assert haversine_m(HELSINKI, offset(HELSINKI, 300, 400)) == pytest.approx(500, abs=0.05)
