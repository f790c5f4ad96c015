"""Cities for the simulation and the dashboard's basemap: an outline and a street grid.

A city is a polygon (its outline, lat/lng) and a rectangular street grid clipped to it: streets
every `block_m` metres, running north-south and east-west. Drivers move along those streets
only, never straight through blocks. The default is central Helsinki; `RIDEHAIL_CITY` or
`--city` takes another built-in name or the path of a JSON file of the same shape.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from dispatch.model import Position

M_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True)
class City:
    name: str
    outline: tuple[tuple[float, float], ...]  # (lat, lng) vertices, not closed
    block_m: float = 150.0
    hotspots: tuple[tuple[float, float], ...] = field(default=())

    @cached_property
    def bbox(self) -> tuple[float, float, float, float]:
        lats = [p[0] for p in self.outline]
        lngs = [p[1] for p in self.outline]
        return min(lats), min(lngs), max(lats), max(lngs)

    @cached_property
    def center(self) -> Position:
        south, west, north, east = self.bbox
        return Position((south + north) / 2, (west + east) / 2)

    @cached_property
    def step(self) -> tuple[float, float]:
        """Grid spacing in degrees (lat, lng)."""
        lat_step = self.block_m / M_PER_DEG_LAT
        lng_step = self.block_m / (M_PER_DEG_LAT * math.cos(math.radians(self.center.lat)))
        return lat_step, lng_step

    def contains(self, lat: float, lng: float) -> bool:
        """Ray casting: is the point inside the outline?"""
        inside = False
        pts = self.outline
        j = len(pts) - 1
        for i in range(len(pts)):
            (yi, xi), (yj, xj) = pts[i], pts[j]
            if (yi > lat) != (yj > lat) and lng < (xj - xi) * (lat - yi) / (yj - yi) + xi:
                inside = not inside
            j = i
        return inside

    @cached_property
    def size(self) -> tuple[int, int]:
        south, west, north, east = self.bbox
        lat_step, lng_step = self.step
        return int((north - south) / lat_step) + 1, int((east - west) / lng_step) + 1

    def node(self, row: int, col: int) -> Position:
        south, west, _, _ = self.bbox
        lat_step, lng_step = self.step
        return Position(south + row * lat_step, west + col * lng_step)

    @cached_property
    def nodes(self) -> tuple[tuple[int, int], ...]:
        """Street intersections inside the outline, as (row, col)."""
        rows, cols = self.size
        return tuple(
            (r, c)
            for r in range(rows)
            for c in range(cols)
            if self.contains(self.node(r, c).lat, self.node(r, c).lng)
        )

    @cached_property
    def node_set(self) -> frozenset[tuple[int, int]]:
        return frozenset(self.nodes)

    def nearest_node(self, at: Position) -> tuple[int, int]:
        south, west, _, _ = self.bbox
        lat_step, lng_step = self.step
        rows, cols = self.size
        r = min(rows - 1, max(0, round((at.lat - south) / lat_step)))
        c = min(cols - 1, max(0, round((at.lng - west) / lng_step)))
        if (r, c) in self.node_set:
            return r, c
        return min(self.nodes, key=lambda n: (n[0] - r) ** 2 + (n[1] - c) ** 2)

    def basemap(self) -> dict[str, object]:
        """What the dashboard draws with no map tiles: the outline and the street grid."""
        rows, cols = self.size
        streets: list[list[list[float]]] = []
        for r in range(rows):
            streets += _runs([(r, c) for c in range(cols)], self)
        for c in range(cols):
            streets += _runs([(r, c) for r in range(rows)], self)
        return {
            "name": self.name,
            "center": [self.center.lat, self.center.lng],
            "bbox": list(self.bbox),
            "outline": [list(p) for p in self.outline],
            "streets": streets,
            "block_m": self.block_m,
        }


def _runs(line: list[tuple[int, int]], city: City) -> list[list[list[float]]]:
    """The stretches of one grid line that lie inside the city, as polylines."""
    runs: list[list[list[float]]] = []
    current: list[list[float]] = []
    for node in line:
        if node in city.node_set:
            p = city.node(*node)
            current.append([round(p.lat, 6), round(p.lng, 6)])
        elif current:
            runs.append(current)
            current = []
    if len(current) > 1:
        runs.append(current)
    return [r for r in runs if len(r) > 1]


HELSINKI = City(
    name="Helsinki (central)",
    # A simplified outline of the central peninsula, from Ruoholahti round to Kalasatama.
    outline=(
        (60.1585, 24.9030),
        (60.1640, 24.9105),
        (60.1720, 24.9110),
        (60.1830, 24.9030),
        (60.1930, 24.9080),
        (60.1990, 24.9290),
        (60.1945, 24.9560),
        (60.1875, 24.9700),
        (60.1780, 24.9770),
        (60.1690, 24.9640),
        (60.1620, 24.9590),
        (60.1560, 24.9530),
        (60.1570, 24.9380),
        (60.1530, 24.9260),
        (60.1555, 24.9120),
    ),
    block_m=150.0,
    hotspots=(
        (60.1699, 24.9384),  # the railway station
        (60.1674, 24.9522),  # the market square
        (60.1870, 24.9270),  # Töölö
        (60.1840, 24.9600),  # Kallio
    ),
)

CITIES = {"helsinki": HELSINKI}


def load_city(name_or_path: str) -> City:
    """A built-in city by name, or one from a JSON file {name, outline, block_m?, hotspots?}."""
    if name_or_path in CITIES:
        return CITIES[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(f"unknown city {name_or_path!r}: use one of {sorted(CITIES)} or a file")
    raw = json.loads(path.read_text())
    return City(
        name=str(raw["name"]),
        outline=tuple((float(a), float(b)) for a, b in raw["outline"]),
        block_m=float(raw.get("block_m", 150.0)),
        hotspots=tuple((float(a), float(b)) for a, b in raw.get("hotspots", ())),
    )
