"""`PUT /v1/drivers/{id}/location`, the hottest route, and what it shares with the batch route.

FastAPI documents the route from `dispatch.api.update_location`; `PingRoute` serves it with a
handler of its own (docs/benchmarks.md, "After the ping got its own route handler").
"""

from __future__ import annotations

import email.message
import json
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

import orjson
from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from dispatch.model import LocationUpdate, is_too_far_in_future, to_epoch_ms
from dispatch.schemas import DriverId, LocationIn, offer_public
from ridehail.auth import Principal, Role
from ridehail.bootstrap import Services
from ridehail.deps import bind_principal
from ridehail.errors import RateLimited
from ridehail.observability import count_decision, count_locations
from ridehail.problems import InvalidInput


def recorded_ms(recorded_at: object, tolerance_s: float) -> int | None:
    if not isinstance(recorded_at, datetime):
        return None
    ms = to_epoch_ms(recorded_at)
    if is_too_far_in_future(ms, int(time.time() * 1000), int(tolerance_s * 1000)):
        raise InvalidInput("recorded_at", f"more than {tolerance_s:g} s in the future")
    return ms


async def ping(services: Services, who: Principal, driver_id: str, body: LocationIn) -> Response:
    who.require_self_or_admin(Role.DRIVER, driver_id)
    try:
        recorded = recorded_ms(body.recorded_at, services.settings.future_tolerance_s)
    except InvalidInput:
        count_locations("rejected")
        raise
    update = LocationUpdate(
        driver_id, body.to_position(), recorded, body.heading_deg, body.speed_mps
    )
    limit = services.limits.location_updates
    try:
        decision, applied, offer, expires_ms = await services.supply.update_location(update, limit)
    except RateLimited:
        count_locations("rate_limited")
        count_decision(limit.name, allowed=False)
        raise
    count_decision(limit.name, allowed=True)
    count_locations("applied" if applied else "ignored")
    # The reply is built directly (the same shape as LocationAck), which spares FastAPI's
    # response validation and an injected Response per ping.
    ack = {"applied": applied, "offer": offer_public(offer, expires_ms)}
    return Response(
        orjson.dumps(ack), media_type="application/json", headers=decision.headers(limit)
    )


class PingRoute(APIRoute):
    """`PUT /location`, the hottest route: FastAPI documents it, a short path serves it.

    FastAPI's generic handler (dependency solving, parameter collection, response handling)
    costs more than the rest of a ping (docs/benchmarks.md), so this route's handler does the
    same steps itself, in the same order and with the same errors: read and decode the body,
    authenticate, validate the path and the body, then `_ping` as the endpoint would.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return _handle_ping


_driver_id = TypeAdapter(DriverId)


async def _handle_ping(request: Request) -> Response:
    services: Services = request.app.state.services
    body = await _json_body(request)
    who = bind_principal(await services.auth.authenticate(request.headers.get("authorization")))
    errors: list[Any] = []
    driver_id = request.path_params["driver_id"]
    try:
        _driver_id.validate_python(driver_id)
    except ValidationError as exc:
        errors += [{**e, "loc": ("path", "driver_id", *e["loc"])} for e in exc.errors()]
    location: LocationIn | None = None
    if body is _MISSING:
        errors.append({"type": "missing", "loc": ("body",), "msg": "Field required"})
    else:
        try:
            location = LocationIn.model_validate(body)
        except ValidationError as exc:
            errors += [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
    if errors or location is None:
        raise RequestValidationError(errors)
    return await ping(services, who, driver_id, location)


_MISSING = object()


async def _json_body(request: Request) -> Any:
    """The body as FastAPI reads a JSON body: `_MISSING` when empty, bytes when not JSON."""
    try:
        raw = await request.body()
    except StarletteHTTPException:
        raise  # the edge's body limit (413)
    except Exception as exc:  # the client went away mid-body, as FastAPI answers it
        raise HTTPException(400, "There was an error parsing the body") from exc
    if not raw:
        return _MISSING
    content_type = request.headers.get("content-type")
    if content_type:
        message = email.message.Message()
        message["content-type"] = content_type
        subtype = message.get_content_subtype()
        is_json = message.get_content_maintype() == "application" and (
            subtype == "json" or subtype.endswith("+json")
        )
        if not is_json:
            return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        error = {
            "type": "json_invalid",
            "loc": ("body", exc.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": exc.msg},
        }
        raise RequestValidationError([error]) from exc
    except UnicodeDecodeError as exc:
        raise HTTPException(400, "There was an error parsing the body") from exc
