"""Properties every distance on a sphere has, checked over arbitrary points Redis GEO can store."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.model import EARTH_RADIUS_M, MAX_LATITUDE, Position, haversine_m

positions = st.builds(
    Position,
    lat=st.floats(-MAX_LATITUDE, MAX_LATITUDE, allow_nan=False),
    lng=st.floats(-180.0, 180.0, allow_nan=False),
)
# haversine loses a few centimetres of precision near antipodal points (asin near 1).
SLACK_M = 0.1

thorough = settings(max_examples=200, deadline=None)


@thorough
@given(a=positions)
def test_the_distance_from_a_point_to_itself_is_zero(a: Position) -> None:
    assert haversine_m(a, a) == 0.0


@thorough
@given(a=positions, b=positions)
def test_the_distance_is_the_same_both_ways(a: Position, b: Position) -> None:
    assert math.isclose(haversine_m(a, b), haversine_m(b, a), rel_tol=1e-12, abs_tol=1e-6)


@thorough
@given(a=positions, b=positions)
def test_the_distance_is_never_negative_nor_more_than_half_the_globe(
    a: Position, b: Position
) -> None:
    assert 0.0 <= haversine_m(a, b) <= math.pi * EARTH_RADIUS_M + SLACK_M


@thorough
@given(a=positions, b=positions, c=positions)
def test_going_via_a_third_point_is_never_shorter(a: Position, b: Position, c: Position) -> None:
    assert haversine_m(a, c) <= haversine_m(a, b) + haversine_m(b, c) + SLACK_M


@thorough
@given(
    lat1=st.floats(-MAX_LATITUDE, MAX_LATITUDE),
    lat2=st.floats(-MAX_LATITUDE, MAX_LATITUDE),
    lng=st.floats(-180.0, 180.0),
)
def test_along_a_meridian_the_distance_is_the_arc_of_the_latitude_difference(
    lat1: float, lat2: float, lng: float
) -> None:
    expected = EARTH_RADIUS_M * math.radians(abs(lat1 - lat2))
    assert math.isclose(
        haversine_m(Position(lat1, lng), Position(lat2, lng)), expected, rel_tol=1e-9, abs_tol=1e-6
    )


def wrapped(lng: float) -> float:
    """The same meridian as `lng`, in [-180, 180)."""
    return math.fmod(lng + 540.0, 360.0) - 180.0


@thorough
@given(a=positions, b=positions, turn=st.floats(-360.0, 360.0))
def test_turning_the_globe_about_its_axis_keeps_every_distance(
    a: Position, b: Position, turn: float
) -> None:
    turned_a, turned_b = (
        Position(a.lat, wrapped(a.lng + turn)),
        Position(b.lat, wrapped(b.lng + turn)),
    )
    assert math.isclose(haversine_m(a, b), haversine_m(turned_a, turned_b), abs_tol=SLACK_M)
