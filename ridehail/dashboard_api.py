"""The live map dashboard: its page, its basemap and an operations summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from prometheus_client import REGISTRY

from ridehail.deps import PrincipalDep, ServicesDep
from ridehail.sim.city import load_city

STATIC = Path(__file__).resolve().parent / "static"

router = APIRouter(tags=["dashboard"])


@router.get("/", include_in_schema=False)
async def dashboard() -> FileResponse:
    """The live map."""
    return FileResponse(STATIC / "dashboard" / "index.html", media_type="text/html")


@router.get("/v1/city")
async def city(services: ServicesDep) -> dict[str, Any]:
    """The city's outline and street grid: the dashboard's basemap when there are no tiles."""
    basemap = load_city(services.settings.city).basemap()
    basemap["tiles_url"] = services.settings.map_tiles_url
    return basemap


def _samples(name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _by(name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: value for labels, value in _samples(name).items()}


def _quantile(q: float) -> float | None:
    """A quantile of match latency (ms) from the histogram's buckets (upper bound)."""
    buckets = sorted(
        (float(dict(labels)["le"]), count)
        for labels, count in _samples("ridehail_match_seconds_bucket").items()
    )
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    for upper, count in buckets:
        if count >= q * total:
            return None if upper == float("inf") else upper * 1000
    return None


@router.get("/v1/ops/summary")
async def summary(services: ServicesDep, who: PrincipalDep) -> dict[str, Any]:
    """Counts for the dashboard's panel (admin). Metrics are this process's since it started."""
    who.require_admin()
    available, offers = await services.supply_store.counts()
    fallback = sum(_by("ridehail_fallback_fares_total", "reason").values())
    priced = _by("ridehail_pricing_calls_total", "outcome").get("ok", 0.0)
    refused = sum(
        v
        for (labels), v in _samples("ridehail_ratelimit_decisions_total").items()
        if dict(labels).get("decision") == "refused"
    )
    state = {0.0: "closed", 1.0: "half-open", 2.0: "open"}
    breaker = _by("ridehail_breaker_state", "breaker").get("pricing", 0.0)
    return {
        "drivers": {"available": available, "holding_offers": offers},
        "transitions": _by("ridehail_trip_transitions_total", "action"),
        "offers": _by("ridehail_offers_total", "outcome"),
        "match_ms": {"p50": _quantile(0.5), "p95": _quantile(0.95), "p99": _quantile(0.99)},
        "breaker": state.get(breaker, "closed"),
        "rate_limited": refused,
        "fallback_share": fallback / (fallback + priced) if fallback + priced else 0.0,
    }
