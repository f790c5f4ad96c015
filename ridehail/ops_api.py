"""Health, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ridehail.deps import ServicesDep
from ridehail.problems import RETRY_AFTER_S, problem
from ridehail.redis_conn import ping

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(services: ServicesDep) -> dict[str, str] | Response:
    """Redis answers: ready for traffic (503 otherwise)."""
    if await ping(services.redis):
        return {"status": "ready"}
    return problem(
        503,
        "Not ready",
        "Redis is not reachable",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Prometheus metrics of this process."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
