"""FastAPI dependency aliases shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request, Response

from ridehail import log_context
from ridehail.auth import Principal, Role
from ridehail.bootstrap import Services
from ridehail.errors import RateLimited
from ridehail.observability import count_decision
from ridehail.redis_conn import translated_errors


async def get_services(request: Request) -> Services:
    # async: a sync dependency would send every request through anyio's thread pool
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(
    services: ServicesDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    return bind_principal(await services.auth.authenticate(authorization))


def bind_principal(principal: Principal) -> Principal:
    """Name the caller in the request's log lines."""
    if principal.role is Role.DRIVER:
        log_context.bind(driver_id=principal.id)
    elif principal.role is Role.RIDER:
        log_context.bind(rider_id=principal.id)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def limit_registrations(request: Request, response: Response, services: ServicesDep) -> None:
    """Registrations per client address, a token bucket shared by all processes (429 when empty)."""
    limit = services.limits.registrations
    address = request.client.host if request.client else "unknown"
    async with translated_errors():
        decision = await services.buckets.take(services.keys.bucket("register", address), limit)
    count_decision(limit.name, decision.allowed)
    if not decision.allowed:
        raise RateLimited(limit, decision)
    response.headers.update(decision.headers(limit))


RegistrationLimit = Depends(limit_registrations)
