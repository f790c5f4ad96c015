"""Which supply-index cells a search circle reaches, and how near each one can be.

With the index sharded by H3 cell (docs/scaling.md), an exact nearest search must look in
every cell that may hold a point within its radius. A cell can hold nothing nearer than its
centre's distance less its circumradius (the farthest vertex from the centre, plus a margin
for the curved edges): a cheap first bound. Cells that pass it get a tight one, the distance
to the cell's outline in a flat projection around the search point, less a margin for the
projection and the edges' curvature; that is the bound used to order and prune cells.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache

import h3

from dispatch.model import Position, haversine_m

# Edges of H3 cells are not quite great circles; this covers the bulge, generously.
_MARGIN = 1.02
# The flat projection's error over a few cells, and the edges' bulge: the tight bound is cut
# by this share (and a metre) so that it stays below the true distance.
_FLAT_SLACK = 0.03
_M_PER_DEG = math.pi * 6_372_797.560856 / 180  # Redis GEO's sphere


@lru_cache(maxsize=65_536)
def _shape(cell: str) -> tuple[Position, float]:
    """A cell's centre and circumradius (m)."""
    lat, lng = h3.cell_to_latlng(cell)
    centre = Position(lat, lng)
    far = max(haversine_m(centre, Position(a, b)) for a, b in h3.cell_to_boundary(cell))
    return centre, far * _MARGIN + 1.0


@lru_cache(maxsize=65_536)
def _outline(cell: str) -> tuple[tuple[float, float], ...]:
    return tuple(h3.cell_to_boundary(cell))


def _to_outline_m(at: Position, cell: str) -> float:
    """Distance in m from `at` to the cell (0 inside), in a flat projection around `at`."""
    kx = _M_PER_DEG * math.cos(math.radians(at.lat))
    points = [  # longitudes taken the short way round (a cell across the antimeridian)
        (((lng - at.lng + 540) % 360 - 180) * kx, (lat - at.lat) * _M_PER_DEG)
        for lat, lng in _outline(cell)
    ]
    inside = False
    nearest = math.inf
    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1], strict=True):
        if (y1 > 0) != (y2 > 0) and (x2 - x1) * (0 - y1) / (y2 - y1) + x1 > 0:
            inside = not inside
        dx, dy = x2 - x1, y2 - y1
        t = max(0.0, min(1.0, -(x1 * dx + y1 * dy) / (dx * dx + dy * dy or 1.0)))
        nearest = min(nearest, math.hypot(x1 + t * dx, y1 + t * dy))
    return 0.0 if inside else nearest


def _bound(at: Position, cell: str) -> float:
    centre, reach = _shape(cell)
    rough = haversine_m(at, centre) - reach
    if rough > 0:
        return rough
    return max(0.0, _to_outline_m(at, cell) * (1 - _FLAT_SLACK) - 1.0)


def cover(at: Position, radius_m: float, resolution: int) -> list[tuple[float, str]]:
    """(lower bound of the distance from `at` in m, cell) for every cell the circle may reach.

    Nearest first. Rings of cells around the one holding `at` are taken outwards until two
    rings in a row lie wholly beyond the radius (one would do on a regular grid; the second
    covers H3's distortion near its pentagons).
    """
    origin = h3.latlng_to_cell(at.lat, at.lng, resolution)
    out: list[tuple[float, str]] = []
    beyond = 0
    for ring in _rings(origin):
        inside = [(b, c) for c in ring if (b := _bound(at, c)) <= radius_m]
        out += inside
        beyond = 0 if inside else beyond + 1
        if beyond == 2:
            break
    out.sort()
    return out


def _rings(origin: str) -> Iterator[tuple[str, ...]]:
    rings = 0
    while True:
        yield _ring(origin, rings)
        rings += 1


@lru_cache(maxsize=16_384)
def _ring(origin: str, distance: int) -> tuple[str, ...]:
    try:
        return tuple(h3.grid_ring(origin, distance))
    except h3.H3BaseException:  # near a pentagon: the disk's outer ring, the slow way
        inner = set(h3.grid_disk(origin, distance - 1)) if distance else set()
        return tuple(c for c in h3.grid_disk(origin, distance) if c not in inner)
