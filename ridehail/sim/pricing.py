"""`ridehail pricing`: the simulated external pricing service, with live fault injection.

    POST /v1/quote   {pickup, dropoff, surge}  -> {amount, currency, surge, quote_id}
    GET  /faults     the faults in force
    PUT  /faults     {latency_ms, jitter_ms, fail_rate, fail_status, down}: change them live
    GET  /healthz    the process is up (also while "down")

"down" answers every quote 503 at once; `latency_ms` delays every quote (a slow service);
`fail_rate` answers that share of quotes with `fail_status` (5xx or 429).
"""

from __future__ import annotations

import asyncio
import math
import random
import secrets
from typing import Annotated

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

Coordinate = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]


class Faults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latency_ms: float = Field(default=0, ge=0, le=60_000, allow_inf_nan=False)
    jitter_ms: float = Field(default=0, ge=0, le=60_000, allow_inf_nan=False)
    fail_rate: float = Field(default=0, ge=0, le=1, allow_inf_nan=False)
    fail_status: int = Field(default=503, ge=429, le=599)
    down: bool = False


class Point(BaseModel):
    lat: Coordinate
    lng: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


class QuoteRequest(BaseModel):
    pickup: Point
    dropoff: Point
    surge: float = Field(default=1.0, ge=1.0, le=10.0, allow_inf_nan=False)


class Quote(BaseModel):
    amount: float
    currency: str
    surge: float
    quote_id: str


def price(request: QuoteRequest) -> float:
    """EUR 2.50 + 1.10/km (great circle, x1.3 for streets), times surge, at least 5.00."""
    lat1, lat2 = math.radians(request.pickup.lat), math.radians(request.dropoff.lat)
    dlat = lat2 - lat1
    dlng = math.radians(request.dropoff.lng - request.pickup.lng)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlng / 2) ** 2
    km = 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h))) * 1.3
    return round(max(5.0, (2.5 + 1.1 * km) * request.surge), 2)


def create_pricing_app(faults: Faults | None = None, seed: int | None = None) -> FastAPI:
    app = FastAPI(title="ridehail pricing (simulated)", version="1")
    state = {"faults": faults or Faults()}
    rng = random.Random(seed)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/faults")
    async def get_faults() -> Faults:
        return state["faults"]

    @app.put("/faults")
    async def put_faults(new: Faults) -> Faults:
        state["faults"] = new
        return new

    @app.post("/v1/quote", response_model=None)
    async def quote(request: QuoteRequest) -> Quote | JSONResponse:
        f = state["faults"]
        if f.down:
            return JSONResponse({"detail": "pricing is down"}, status_code=503)
        delay_ms = f.latency_ms + (rng.uniform(0, f.jitter_ms) if f.jitter_ms else 0)
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        if f.fail_rate and rng.random() < f.fail_rate:
            return JSONResponse({"detail": "injected failure"}, status_code=f.fail_status)
        return Quote(
            amount=price(request),
            currency="EUR",
            surge=request.surge,
            quote_id=secrets.token_hex(8),
        )

    return app
