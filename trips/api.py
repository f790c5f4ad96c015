"""Rider and trip endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from ridehail import log_context
from ridehail.auth import Role, hash_token, mint_token, new_id
from ridehail.deps import PrincipalDep, RegistrationLimit, ServicesDep
from ridehail.errors import Forbidden, RateLimited
from ridehail.observability import count_decision
from trips.model import Action
from trips.schemas import RiderCreate, RiderRegistered, TripCreate, TripPublic

router = APIRouter(prefix="/v1", tags=["riders and trips"])

IdempotencyKey = Annotated[
    str, Header(alias="Idempotency-Key", min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
]


@router.post("/riders", status_code=201, dependencies=[RegistrationLimit])
async def register_rider(body: RiderCreate, services: ServicesDep) -> RiderRegistered:
    """Register a rider; the token is shown once and only its hash is kept."""
    rider_id = new_id(Role.RIDER)
    log_context.bind(rider_id=rider_id)
    token = mint_token(rider_id)
    await services.riders.create_rider(rider_id, body.name, hash_token(token))
    return RiderRegistered(rider_id=rider_id, token=token)


@router.post("/trips", status_code=201)
async def request_trip(
    body: TripCreate,
    idempotency_key: IdempotencyKey,
    services: ServicesDep,
    who: PrincipalDep,
    response: Response,
) -> TripPublic:
    """Request a trip (rider). The same Idempotency-Key and body return the same trip."""
    if who.role is not Role.RIDER:
        raise Forbidden("only a rider requests trips")
    limit = services.limits.trip_requests
    try:
        trip, created, decision = await services.trips.request_trip(
            who.id, body.pickup.to_position(), body.dropoff.to_position(), idempotency_key
        )
    except RateLimited:
        count_decision(limit.name, allowed=False)
        raise
    count_decision(limit.name, allowed=True)
    response.headers.update(decision.headers(limit))
    if not created:
        response.status_code = 200
    return TripPublic.of(trip)


@router.get("/trips/{trip_id}")
async def get_trip(trip_id: str, services: ServicesDep, who: PrincipalDep) -> TripPublic:
    """The trip as it is now: state and version (its rider, its driver, or the admin)."""
    return TripPublic.of(await services.trips.get_trip(trip_id, who))


def _action_route(action: Action, summary: str) -> None:
    async def act(trip_id: str, services: ServicesDep, who: PrincipalDep) -> TripPublic:
        return TripPublic.of(await services.trips.act(trip_id, action, who))

    act.__doc__ = summary
    act.__name__ = f"{action.value}_trip"
    router.add_api_route(
        f"/trips/{{trip_id}}/{action.value}",
        act,
        methods=["POST"],
        response_model=TripPublic,
        summary=summary,
        name=act.__name__,
    )


_action_route(Action.ACCEPT, "Accept the offer (the offered driver)")
_action_route(Action.DECLINE, "Decline the offer: the trip goes to the next nearest driver")
_action_route(Action.ARRIVE, "Arrived at the pickup (the assigned driver)")
_action_route(Action.START, "The rider is aboard (the assigned driver)")
_action_route(Action.COMPLETE, "Arrived at the drop-off; the driver is available again")
_action_route(Action.CANCEL, "Cancel (the rider or the assigned driver)")
