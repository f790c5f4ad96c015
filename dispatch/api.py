"""Supply endpoints: register drivers, ingest locations, status, lookup and nearby search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import TypeAdapter, ValidationError

from dispatch.model import (
    MAX_LATITUDE,
    DriverStatus,
    LocationUpdate,
    Position,
    UpdateOutcome,
)
from dispatch.ping import PingRoute, ping, recorded_ms
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
)
from ridehail import log_context
from ridehail.auth import Role, hash_token, mint_token, new_id
from ridehail.deps import PrincipalDep, RegistrationLimit, ServicesDep
from ridehail.observability import count_locations
from ridehail.problems import InvalidInput

router = APIRouter(prefix="/v1/drivers", tags=["drivers"])

_row = TypeAdapter(BatchRow)


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
            recorded = recorded_ms(row.recorded_at, tolerance)
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
    return await ping(services, who, driver_id, body)


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
