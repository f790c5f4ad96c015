"""The pure supply model: positions, distances, times."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dispatch.model import (
    EARTH_RADIUS_M,
    MAX_LATITUDE,
    Driver,
    DriverStatus,
    Position,
    haversine_m,
    is_too_far_in_future,
    to_epoch_ms,
)

METRES_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180


@pytest.mark.parametrize(
    ("lat", "lng"),
    [
        (math.nan, 24.9),
        (60.1, math.nan),
        (math.inf, 24.9),
        (60.1, -math.inf),
        (85.05112879, 0.0),
        (-85.06, 0.0),
        (90.0, 0.0),
        (0.0, 180.000001),
        (0.0, -180.5),
    ],
)
def test_a_position_that_is_not_finite_or_beyond_what_redis_geo_stores_is_refused(
    lat: float, lng: float
) -> None:
    with pytest.raises(ValueError, match="coordinates"):
        Position(lat, lng)


@pytest.mark.parametrize(
    ("lat", "lng"),
    [(MAX_LATITUDE, 180.0), (-MAX_LATITUDE, -180.0), (0.0, 0.0), (-0.0, -0.0)],
)
def test_a_position_on_the_edge_of_the_map_is_accepted(lat: float, lng: float) -> None:
    assert Position(lat, lng) == Position(lat, lng)


def test_a_position_cannot_be_changed_after_it_is_made() -> None:
    position = Position(60.1, 24.9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        position.lat = 0.0  # type: ignore[misc]


def test_haversine_matches_the_distance_redis_documents_between_palermo_and_catania() -> None:
    # GEODIST Sicily Palermo Catania answers 166274.1516 m on the Redis docs' example; Redis
    # measures between geohash-decoded points, a few centimetres from these.
    palermo, catania = Position(38.115556, 13.361389), Position(37.502669, 15.087269)
    assert haversine_m(palermo, catania) == pytest.approx(166_274.15, abs=0.5)


@pytest.mark.parametrize(
    ("a", "b", "expected_m"),
    [
        (Position(0, 0), Position(1, 0), METRES_PER_DEGREE),
        (Position(60, 25), Position(61, 25), METRES_PER_DEGREE),
        (Position(0, 0), Position(0, 90), EARTH_RADIUS_M * math.pi / 2),
        (Position(0, 0), Position(0, 180), EARTH_RADIUS_M * math.pi),
        (Position(0, 179.5), Position(0, -179.5), METRES_PER_DEGREE),
        (Position(60, 0), Position(60, 180), EARTH_RADIUS_M * math.radians(60)),
    ],
    ids=[
        "a degree of latitude on the equator",
        "a degree of latitude in Helsinki",
        "a quarter of the equator",
        "half the equator",
        "across the antimeridian",
        "over the pole",
    ],
)
def test_haversine_gives_the_great_circle_distance_on_the_redis_sphere(
    a: Position, b: Position, expected_m: float
) -> None:
    assert haversine_m(a, b) == pytest.approx(expected_m, rel=1e-9)


def test_haversine_between_london_and_paris_is_about_344_km() -> None:
    london, paris = Position(51.5074, -0.1278), Position(48.8566, 2.3522)
    assert haversine_m(london, paris) == pytest.approx(343_600, abs=500)


def test_epoch_ms_of_the_epoch_is_zero() -> None:
    assert to_epoch_ms(datetime(1970, 1, 1, tzinfo=UTC)) == 0


def test_epoch_ms_takes_a_naive_time_as_utc() -> None:
    assert to_epoch_ms(datetime(2024, 1, 1)) == 1_704_067_200_000


def test_epoch_ms_honours_the_time_zone_offset() -> None:
    helsinki_winter = timezone(timedelta(hours=2))
    local = datetime(2024, 1, 1, 2, 0, tzinfo=helsinki_winter)
    assert to_epoch_ms(local) == to_epoch_ms(datetime(2024, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(("micros", "ms"), [(1_000, 1), (999, 0), (1_999, 1), (999_999, 999)])
def test_epoch_ms_keeps_whole_milliseconds_and_drops_the_rest(micros: int, ms: int) -> None:
    moment = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    assert to_epoch_ms(moment) == 1_704_067_200_000 + ms


def test_every_millisecond_of_a_second_maps_to_its_own_epoch_ms() -> None:
    base = datetime(2031, 7, 14, 12, 30, 1, tzinfo=UTC)
    got = [to_epoch_ms(base + timedelta(milliseconds=i)) for i in range(1000)]
    assert got == [to_epoch_ms(base) + i for i in range(1000)]


@pytest.mark.parametrize(
    ("recorded_ms", "too_far"),
    [(10_000, False), (15_000, False), (15_001, True), (0, False), (-5, False)],
)
def test_a_time_is_too_far_in_the_future_only_beyond_the_tolerance(
    recorded_ms: int, too_far: bool
) -> None:
    assert is_too_far_in_future(recorded_ms, now_ms=10_000, tolerance_ms=5_000) is too_far


def test_with_no_tolerance_only_a_time_after_now_is_too_far_in_the_future() -> None:
    assert not is_too_far_in_future(10_000, now_ms=10_000, tolerance_ms=0)
    assert is_too_far_in_future(10_001, now_ms=10_000, tolerance_ms=0)


def _driver(last_seen_ms: int | None) -> Driver:
    return Driver(
        driver_id="drv_0",
        name="Aino",
        vehicle=None,
        status=DriverStatus.AVAILABLE,
        position=Position(60.1, 24.9),
        last_seen_ms=last_seen_ms,
        version=0,
    )


def test_a_driver_is_fresh_until_its_last_ping_is_older_than_the_limit() -> None:
    assert _driver(1_000).is_fresh(now_ms=31_000, stale_after_ms=30_000)
    assert not _driver(1_000).is_fresh(now_ms=31_001, stale_after_ms=30_000)


def test_a_driver_that_never_pinged_is_not_fresh() -> None:
    assert not _driver(None).is_fresh(now_ms=0, stale_after_ms=30_000)
