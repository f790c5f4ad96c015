"""The cells a search circle reaches: none that could hold a point within the radius is left out."""

from __future__ import annotations

import math

import h3
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.cells import cover
from dispatch.model import Position, haversine_m

EARTH_M = 6_372_797.560856  # Redis GEO's sphere


def destination(at: Position, bearing_deg: float, distance_m: float) -> Position:
    """The point `distance_m` from `at` along `bearing_deg` on Redis's sphere."""
    d = distance_m / EARTH_M
    b = math.radians(bearing_deg)
    lat1, lng1 = math.radians(at.lat), math.radians(at.lng)
    lat2 = math.asin(math.sin(lat1) * math.cos(d) + math.cos(lat1) * math.sin(d) * math.cos(b))
    lng2 = lng1 + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(lat1), math.cos(d) - math.sin(lat1) * math.sin(lat2)
    )
    return Position(math.degrees(lat2), (math.degrees(lng2) + 540) % 360 - 180)


@settings(max_examples=500)
@given(
    lat=st.floats(-70, 70),
    lng=st.floats(-179, 179),
    radius=st.floats(50, 20_000),
    bearing=st.floats(0, 360),
    share=st.floats(0, 1),
    resolution=st.sampled_from([5, 6, 7, 8]),
)
def test_every_point_within_the_radius_is_in_a_covered_cell_with_a_true_lower_bound(
    lat: float,
    lng: float,
    radius: float,
    bearing: float,
    share: float,
    resolution: int,
) -> None:
    at = Position(lat, lng)
    target = destination(at, bearing, radius * share)
    bounds = dict((cell, bound) for bound, cell in cover(at, radius, resolution))
    cell = h3.latlng_to_cell(target.lat, target.lng, resolution)
    assert cell in bounds
    assert bounds[cell] <= haversine_m(at, target) + 1e-6


def test_cells_come_nearest_first_and_the_pickup_cell_first_of_all() -> None:
    at = Position(60.1699, 24.9384)
    cells = cover(at, 10_000, 6)
    assert cells[0] == (0.0, h3.latlng_to_cell(at.lat, at.lng, 6))
    assert [b for b, _ in cells] == sorted(b for b, _ in cells)
    assert 7 <= len(cells) <= 40  # a 10 km circle over cells of ~36 km²


@settings(max_examples=300)
@given(
    pentagon=st.integers(0, 11),
    resolution=st.sampled_from([5, 6, 7]),
    start=st.tuples(st.floats(0, 360), st.floats(0, 1)),
    radius=st.floats(50, 20_000),
    bearing=st.floats(0, 360),
    share=st.floats(0, 1),
)
def test_the_cover_holds_next_to_an_h3_pentagon_too(
    pentagon: int,
    resolution: int,
    start: tuple[float, float],
    radius: float,
    bearing: float,
    share: float,
) -> None:
    centre = Position(*h3.cell_to_latlng(sorted(h3.get_pentagons(resolution))[pentagon]))
    edge = h3.average_hexagon_edge_length(resolution, unit="m")
    at = destination(centre, start[0], start[1] * 3 * edge)
    target = destination(at, bearing, radius * share)
    bounds = {cell: bound for bound, cell in cover(at, radius, resolution)}
    cell = h3.latlng_to_cell(target.lat, target.lng, resolution)
    assert cell in bounds
    assert bounds[cell] <= haversine_m(at, target) + 1e-6


@settings(max_examples=300)
@given(
    lat=st.floats(-60, 60),
    side=st.sampled_from([-1, 1]),
    offset=st.floats(0, 0.05),
    radius=st.floats(50, 20_000),
    bearing=st.floats(0, 360),
    share=st.floats(0, 1),
)
def test_the_cover_holds_across_the_antimeridian(
    lat: float, side: int, offset: float, radius: float, bearing: float, share: float
) -> None:
    at = Position(lat, side * (180 - offset))
    target = destination(at, bearing, radius * share)
    bounds = {cell: bound for bound, cell in cover(at, radius, 6)}
    cell = h3.latlng_to_cell(target.lat, target.lng, 6)
    assert cell in bounds
    assert bounds[cell] <= haversine_m(at, target) + 1e-6
