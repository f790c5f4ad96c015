"""What a simulation run observed, and its JSON summary."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1], 4)


def spread(values: list[float]) -> dict[str, float | None]:
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
    }


@dataclass
class Stats:
    trips: Counter[str] = field(default_factory=Counter)  # requested, matched, completed, ...
    http: Counter[str] = field(default_factory=Counter)  # status codes and errors by kind
    request_to_offer_s: list[float] = field(default_factory=list)
    request_to_pickup_s: list[float] = field(default_factory=list)
    pickup_distance_m: list[float] = field(default_factory=list)
    offers_by_trip: Counter[str] = field(default_factory=Counter)
    fares: Counter[str] = field(default_factory=Counter)  # by source
    # driver id -> trips it accepted; the invariant check reads each trip's final state
    accepted_by_driver: defaultdict[str, list[str]] = field(
        default_factory=lambda: defaultdict(list)
    )
    violations: list[str] = field(default_factory=list)

    def violation(self, what: str) -> None:
        self.violations.append(what)

    def summary(self, *, scenario: str, seed: int, duration_s: float, drivers: int,
                riders: int) -> dict[str, Any]:  # fmt: skip
        offers = list(self.offers_by_trip.values())
        return {
            "scenario": scenario,
            "seed": seed,
            "duration_s": round(duration_s, 1),
            "drivers": drivers,
            "riders": riders,
            "trips": {
                k: self.trips.get(k, 0)
                for k in ("requested", "matched", "completed", "cancelled", "no_driver")
            },
            "latency_s": {
                "request_to_offer": spread(self.request_to_offer_s),
                "request_to_pickup": spread(self.request_to_pickup_s),
            },
            "pickup_distance_m": spread(self.pickup_distance_m),
            "offers_per_trip": round(sum(offers) / len(offers), 3) if offers else None,
            "fares": dict(self.fares),
            "fallback_fares": self.fares.get("fallback", 0),
            "rate_limited_429": self.http.get("429", 0),
            "http": dict(self.http),
            "invariant_violations": len(self.violations),
            "violations": self.violations[:20],
        }
