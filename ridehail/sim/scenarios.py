"""Simulation scenarios: how demand, supply and the pricing service behave over a run."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    rush_factor: float = 1.0  # peak demand multiplier in the middle third
    mean_online_s: float | None = None  # drivers go offline after about this long (churn)
    pricing_outage: tuple[float, float] | None = None  # (start, end) as fractions of the run

    def demand_multiplier(self, progress: float) -> float:
        """1.0 outside rush hour; a smooth bump up to `rush_factor` around mid-run."""
        if self.rush_factor == 1.0:
            return 1.0
        bump = math.exp(-(((progress - 0.5) / 0.15) ** 2))
        return 1.0 + (self.rush_factor - 1.0) * bump


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("steady", "constant demand, drivers stay online"),
        Scenario("rush-hour", "demand rises to 3x mid-run and falls again", rush_factor=3.0),
        Scenario(
            "driver-churn", "drivers go offline after ~40 s and come back", mean_online_s=40.0
        ),
        Scenario(
            "pricing-outage",
            "the pricing service is down for the middle third of the run",
            pricing_outage=(1 / 3, 2 / 3),
        ),
    )
}
