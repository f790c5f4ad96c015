"""Supply sharded by cell: a pickup at a cell border finds the true nearest driver next door.

Each border is walked from a point just inside one H3 cell of the index to a driver just
across it in the neighbouring cell, with a decoy farther away on the pickup's own side. In the
one-slot layout the same tests hold trivially (there is one index), so they run there too.
"""

from __future__ import annotations

import h3
import httpx
import pytest

from dispatch.model import Position, haversine_m
from ridehail.bootstrap import Services
from tests.fleet import HELSINKI, available_at, nearby
from tests.integration.trip_helpers import register_rider, request_trip

pytestmark = pytest.mark.layouts

RESOLUTION = 6  # the sharded backends' resolution (tests/conftest.py)


def toward(a: Position, b: Position, share: float) -> Position:
    return Position(a.lat + (b.lat - a.lat) * share, a.lng + (b.lng - a.lng) * share)


def border_points(edge: int) -> tuple[Position, Position, Position]:
    """(pickup just inside the Helsinki cell, a point just across the edge, a decoy inside)."""
    home = h3.latlng_to_cell(HELSINKI.lat, HELSINKI.lng, RESOLUTION)
    centre = Position(*h3.cell_to_latlng(home))
    corners = [Position(*v) for v in h3.cell_to_boundary(home)]
    a, b = corners[edge], corners[(edge + 1) % len(corners)]
    middle = toward(a, b, 0.5)
    # A few tens of metres either side of the border (the cell is ~7 km across).
    pickup = toward(middle, centre, 0.004)
    across = toward(middle, centre, -0.004)
    decoy = toward(middle, centre, 0.06)
    assert h3.latlng_to_cell(pickup.lat, pickup.lng, RESOLUTION) == home
    assert h3.latlng_to_cell(decoy.lat, decoy.lng, RESOLUTION) == home
    assert h3.latlng_to_cell(across.lat, across.lng, RESOLUTION) != home
    assert haversine_m(pickup, across) < haversine_m(pickup, decoy)
    return pickup, across, decoy


@pytest.mark.parametrize("edge", range(6))
async def test_the_nearest_driver_across_a_cell_border_is_found(
    client: httpx.AsyncClient, edge: int
) -> None:
    pickup, across, decoy = border_points(edge)
    neighbour = await available_at(client, across)
    await available_at(client, decoy)
    asker = await available_at(client, HELSINKI)
    found = await nearby(client, asker.headers, pickup, 5_000, limit=1)
    assert [d["driver_id"] for d in found] == [neighbour.driver_id]


async def test_a_trip_at_a_cell_border_is_offered_to_the_driver_across_it(
    client: httpx.AsyncClient, services: Services
) -> None:
    pickup, across, decoy = border_points(0)
    neighbour = await available_at(client, across)
    await available_at(client, decoy)
    trip = await request_trip(client, await register_rider(client), pickup)
    assert (trip["state"], trip["driver_id"]) == ("offered", neighbour.driver_id)
