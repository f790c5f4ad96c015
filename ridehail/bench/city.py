"""The bench city (a 30 x 30 km square around Helsinki) and a brute-force nearest search.

The brute force is plain Python over lists: the answer every index must agree with, and a
reminder of what an index saves.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass

from dispatch.model import EARTH_RADIUS_M

LatLng = tuple[float, float]
_M_PER_DEG_LAT = EARTH_RADIUS_M * math.pi / 180


@dataclass(frozen=True, slots=True)
class City:
    lat: float = 60.17
    lng: float = 24.94
    side_m: float = 30_000.0

    def random_points(self, rng: random.Random, n: int) -> list[LatLng]:
        """`n` points uniformly over the square (uniform in degrees: flat at this size)."""
        half_lat = self.side_m / 2 / _M_PER_DEG_LAT
        half_lng = half_lat / math.cos(math.radians(self.lat))
        return [
            (
                self.lat + rng.uniform(-half_lat, half_lat),
                self.lng + rng.uniform(-half_lng, half_lng),
            )
            for _ in range(n)
        ]


def driver_id(i: int) -> str:
    """Bench driver ids look like the API's (`drv_` + 16 hex digits) and sort by seeding order."""
    return f"drv_{i:016x}"


class BruteForce:
    """Every position in Python lists; `nearest` computes the haversine to all of them."""

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._lat: list[float] = []
        self._lng: list[float] = []
        self._cos: list[float] = []

    def __len__(self) -> int:
        return len(self._ids)

    def extend(self, ids: list[str], points: list[LatLng]) -> None:
        for i, (lat, lng) in zip(ids, points, strict=True):
            self._ids.append(i)
            self._lat.append(math.radians(lat))
            self._lng.append(math.radians(lng))
            self._cos.append(math.cos(math.radians(lat)))

    def nearest(self, lat: float, lng: float, k: int) -> list[tuple[str, float]]:
        """The k nearest (id, metres), nearest first, on the sphere Redis GEO uses."""
        lat0, lng0 = math.radians(lat), math.radians(lng)
        cos0, sin = math.cos(lat0), math.sin
        # haversine's h grows with the distance, so rank by h and take asin only for the k kept
        hs = (
            (sin((la - lat0) / 2) ** 2 + cos0 * c * sin((ln - lng0) / 2) ** 2, j)
            for j, (la, ln, c) in enumerate(zip(self._lat, self._lng, self._cos, strict=True))
        )
        best = heapq.nsmallest(k, hs)
        return [
            (self._ids[j], 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))) for h, j in best
        ]
