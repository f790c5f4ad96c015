"""Supply endpoints: register drivers, ingest locations, status, lookup and nearby search."""

from __future__ import annotations

import email.message
import json
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError

from dispatch.model import (
    MAX_LATITUDE,
    DriverStatus,
    LocationUpdate,
    Position,
    UpdateOutcome,
    is_too_far_in_future,
    to_epoch_ms,
)
from dispatch.schemas import (
    BatchAck,
    BatchIn,
    BatchRow,
    DriverCreate,
    DriverId,
    DriverPublic,
    DriverRegistered,
    LocationAck,
    LocationIn,
    NearbyPublic,
    Rejected,
    StatusIn,
    offer_public,
)
from ridehail import log_context
from ridehail.auth import Principal, Role, hash_token, mint_token, new_id
from ridehail.bootstrap import Services
from ridehail.deps import PrincipalDep, RegistrationLimit, ServicesDep, bind_principal
from ridehail.errors import RateLimited
from ridehail.observability import count_decision, count_locations
from ridehail.problems import InvalidInput

router = APIRouter(prefix="/v1/drivers", tags=["drivers"])

_row = TypeAdapter(BatchRow)


def _recorded_ms(recorded_at: object, tolerance_s: float) -> int | None:
    if not isinstance(recorded_at, datetime):
        return None
    ms = to_epoch_ms(recorded_at)
    if is_too_far_in_future(ms, int(time.time() * 1000), int(tolerance_s * 1000)):
        raise InvalidInput("recorded_at", f"more than {tolerance_s:g} s in the future")
    return ms


@router.post("", status_code=201, dependencies=[RegistrationLimit])
async def register_driver(body: DriverCreate, services: ServicesDep) -> DriverRegistered:
    """Register a driver (offline until it says otherwise); the token is shown only once."""
    driver_id = new_id(Role.DRIVER)
    log_context.bind(driver_id=driver_id)
    token = mint_token(driver_id)
    await services.supply_store.create_driver(driver_id, body.name, body.vehicle, hash_token(token))
    return DriverRegistered(driver_id=driver_id, token=token)


@router.post("/locations")
async def update_locations(body: BatchIn, services: ServicesDep, who: PrincipalDep) -> BatchAck:
    """Apply many drivers' locations at once (admin: a gateway); bad rows are reported."""
    who.require_admin()
    limit = services.settings.max_batch_updates
    if len(body.updates) > limit:
        raise InvalidInput("updates", f"at most {limit} updates per batch")
    tolerance = services.settings.future_tolerance_s
    rejected: list[Rejected] = []
    valid: list[tuple[int, LocationUpdate]] = []
    for index, raw in enumerate(body.updates):
        try:
            row = _row.validate_python(raw)
            recorded = _recorded_ms(row.recorded_at, tolerance)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "row"
            rejected.append(Rejected(index=index, reason=f"{field}: {first['msg']}"))
            continue
        except InvalidInput as exc:
            rejected.append(Rejected(index=index, reason=f"{exc.field}: {exc.message}"))
            continue
        valid.append((index, LocationUpdate(row.driver_id, row.to_position(), recorded)))
    outcomes = await services.supply.update_locations([u for _, u in valid])
    accepted = ignored = 0
    for (index, _), outcome in zip(valid, outcomes, strict=True):
        if outcome is UpdateOutcome.APPLIED:
            accepted += 1
        elif outcome is UpdateOutcome.IGNORED:
            ignored += 1
        else:
            rejected.append(Rejected(index=index, reason="unknown driver"))
    rejected.sort(key=lambda r: r.index)
    count_locations("applied", accepted)
    count_locations("ignored", ignored)
    count_locations("rejected", len(rejected))
    return BatchAck(accepted=accepted, ignored=ignored, rejected=rejected)


@router.get("/nearby")
async def nearby_drivers(
    services: ServicesDep,
    who: PrincipalDep,
    lat: Annotated[float, Query(ge=-MAX_LATITUDE, le=MAX_LATITUDE, allow_inf_nan=False)],
    lng: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False)],
    radius_m: Annotated[float, Query(ge=1, le=50_000, allow_inf_nan=False)] = 5_000,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[NearbyPublic]:
    """Available, fresh drivers nearest first, exactly the `limit` nearest within `radius_m`."""
    found = await services.supply.nearby(Position(lat, lng), radius_m, limit)
    return [NearbyPublic.of(f) for f in found]


async def update_location(
    driver_id: DriverId, body: LocationIn, services: ServicesDep, who: PrincipalDep
) -> Response:
    """Report the driver's position; the reply carries any pending offer."""
    return await _ping(services, who, driver_id, body)


async def _ping(services: Services, who: Principal, driver_id: str, body: LocationIn) -> Response:
    who.require_self_or_admin(Role.DRIVER, driver_id)
    try:
        recorded = _recorded_ms(body.recorded_at, services.settings.future_tolerance_s)
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
    return await _ping(services, who, driver_id, location)


_MISSING = object()


async def _json_body(request: Request) -> Any:
    """The body as FastAPI reads a JSON body: `_MISSING` when empty, bytes when not JSON."""
    raw = await request.body()
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


router.add_api_route(
    "/{driver_id}/location",
    update_location,
    methods=["PUT"],
    response_model=LocationAck,
    route_class_override=PingRoute,
)


@router.put("/{driver_id}/status")
async def set_status(
    driver_id: DriverId, body: StatusIn, services: ServicesDep, who: PrincipalDep
) -> DriverPublic:
    """Go available (offered trips once fresh) or offline (never offered)."""
    who.require_self_or_admin(Role.DRIVER, driver_id)
    snapshot = await services.supply.set_status(driver_id, DriverStatus(body.status))
    return DriverPublic.of(snapshot)


@router.get("/{driver_id}")
async def get_driver(driver_id: DriverId, services: ServicesDep, who: PrincipalDep) -> DriverPublic:
    """The driver as the server sees it now, with `fresh` judged on the server's clock."""
    who.require_self_or_admin(Role.DRIVER, driver_id)
    return DriverPublic.of(await services.supply.get_driver(driver_id))
