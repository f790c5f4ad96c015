"""Which supply-index cells a search circle reaches, and how near each one can be.

With the index sharded by H3 cell (docs/scaling.md), an exact nearest search must look in
every cell that may hold a point within its radius. A cell can hold nothing nearer than its
centre's distance less its circumradius (the farthest vertex from the centre, plus a margin
for the curved edges), which is the bound used to order and prune cells.
"""

from __future__ import annotations

import math
from functools import lru_cache

import h3

from dispatch.model import Position, haversine_m

# Edges of H3 cells are not quite great circles; this covers the bulge, generously.
_MARGIN = 1.02


@lru_cache(maxsize=65_536)
def _shape(cell: str) -> tuple[Position, float]:
    """A cell's centre and circumradius (m)."""
    lat, lng = h3.cell_to_latlng(cell)
    centre = Position(lat, lng)
    far = max(haversine_m(centre, Position(a, b)) for a, b in h3.cell_to_boundary(cell))
    return centre, far * _MARGIN + 1.0


@lru_cache(maxsize=4_096)
def _disk(origin: str, rings: int) -> tuple[str, ...]:
    return tuple(h3.grid_disk(origin, rings))


def cover(at: Position, radius_m: float, resolution: int) -> list[tuple[float, str]]:
    """(lower bound of the distance from `at` in m, cell) for every cell the circle may reach.

    Nearest first. The ring count over-reaches on purpose: cells vary in size by up to about
    2x within a resolution, and the distance bound prunes what is too far.
    """
    origin = h3.latlng_to_cell(at.lat, at.lng, resolution)
    edge = h3.average_hexagon_edge_length(resolution, unit="m")
    rings = math.ceil((radius_m + 4 * edge) / (0.6 * math.sqrt(3) * edge))
    out: list[tuple[float, str]] = []
    for cell in _disk(origin, rings):
        centre, reach = _shape(cell)
        bound = max(0.0, haversine_m(at, centre) - reach)
        if bound <= radius_m:
            out.append((bound, cell))
    out.sort()
    return out
