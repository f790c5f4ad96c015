"""The app factory: settings and a Redis client in, a FastAPI app out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from dispatch.api import router as drivers_router
from dispatch.matching import Pause
from dispatch.sweeper import sweep_forever
from ridehail import openapi, problems, tracing
from ridehail.bootstrap import build_services
from ridehail.dashboard_api import STATIC
from ridehail.dashboard_api import router as dashboard_router
from ridehail.events_api import router as events_router
from ridehail.metrics import STALE_SWEPT
from ridehail.observability import EdgeMiddleware
from ridehail.ops_api import router as ops_router
from ridehail.redis_conn import connect
from ridehail.settings import Settings
from trips.api import router as trips_router
from trips.workers import work_forever

log = logging.getLogger(__name__)


async def stop_tasks(tasks: list[asyncio.Task[None]], patience_s: float = 5.0) -> None:
    """Cancel until they are done. Once is not enough on Python 3.11: `asyncio.wait_for`
    (inside redis-py and fakeredis) can swallow a cancel that lands as a command completes."""
    deadline = asyncio.get_running_loop().time() + patience_s
    while pending := [t for t in tasks if not t.done()]:
        if asyncio.get_running_loop().time() > deadline:
            log.error("background tasks did not stop", extra={"tasks": len(pending)})
            return
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.1)
    await asyncio.gather(*tasks, return_exceptions=True)


def create_app(
    settings: Settings,
    redis: aioredis.Redis | None = None,
    *,
    pause_before_claim: Pause | None = None,
) -> FastAPI:
    """Build the app. Pass `redis` to share a client (tests); otherwise one is made at start.

    `pause_before_claim` is a test seam: it runs inside the matching lock before each claim.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tracer_provider = tracing.configure(settings.tracing)
        client = redis or connect(
            settings.redis_url,
            timeout_s=settings.redis_timeout_s,
            max_connections=settings.redis_max_connections,
            cluster_nodes=settings.redis_cluster_nodes,
        )
        http = None
        if settings.pricing_url:
            # One client for the app's life; per-call timeouts come from the pricing policy.
            http = httpx.AsyncClient(
                base_url=settings.pricing_url,
                timeout=httpx.Timeout(settings.pricing_attempt_timeout_s, connect=0.05),
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            )
        services = build_services(settings, client, pause_before_claim, http)
        app.state.services = services
        background = [
            asyncio.create_task(
                sweep_forever(services.supply, settings.sweep_interval_s, STALE_SWEPT.inc),
                name="stale-sweeper",
            ),
            asyncio.create_task(
                work_forever(services.trips, settings.worker_interval_s), name="trip-workers"
            ),
        ]
        redis_kind = "embedded" if not settings.redis_url else "url"
        log.info("ridehail ready", extra={"redis": redis_kind, "tracing": settings.tracing})
        try:
            yield
        finally:
            await stop_tasks(background)
            if http is not None:
                await http.aclose()
            if redis is None:
                await client.aclose()
            if tracer_provider is not None:
                tracing.disable()
                tracer_provider.shutdown()  # flushes the spans still queued

    app = FastAPI(
        title="ridehail",
        version="1",
        summary="A mini ride-hailing backend: supply, dispatch, trips.",
        lifespan=lifespan,
    )
    problems.install(app)
    openapi.install(app)
    app.add_middleware(
        EdgeMiddleware, max_body_bytes=settings.max_body_bytes, access_log=settings.access_log
    )
    app.include_router(ops_router)
    app.include_router(drivers_router)
    app.include_router(trips_router)
    app.include_router(events_router)
    app.include_router(dashboard_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
