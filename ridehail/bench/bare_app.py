"""The baseline for single location updates: FastAPI, a pydantic body, one GEOADD, nothing else.

No auth, no middleware, no driver record, no offer: what any FastAPI + Redis service pays.
Run by the bench under uvicorn exactly as `ridehail serve` runs ours:

    REDIS_URL=redis://127.0.0.1:PORT/0 uvicorn ridehail.bench.bare_app:create_app --factory
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field

GEO_KEY = "bare:geo"


class Location(BaseModel):
    lat: Annotated[float, Field(ge=-85.05112878, le=85.05112878, allow_inf_nan=False)]
    lng: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


class Ack(BaseModel):
    applied: bool


def create_app() -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.redis = aioredis.Redis.from_url(os.environ["REDIS_URL"], max_connections=64)
        yield
        await app.state.redis.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.put("/v1/drivers/{driver_id}/location")
    async def update_location(driver_id: str, body: Location, request: Request) -> Ack:
        client: aioredis.Redis = request.app.state.redis
        await client.geoadd(GEO_KEY, (body.lng, body.lat, driver_id))
        return Ack(applied=True)

    return app
