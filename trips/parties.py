"""Who may see or act on a trip: its rider, its driver, and the admin."""

from __future__ import annotations

from ridehail.auth import Principal, Role
from trips.model import DRIVER_ACTIONS, RIDER_ACTIONS, Action, NotParty, Trip


def authorize(trip: Trip, actor: Principal, action: Action | None) -> None:
    """Raise NotParty (403) unless `actor` may see the trip (action None) or take `action`."""
    if actor.role is Role.ADMIN:
        if action in (None, Action.CANCEL):
            return
    elif actor.role is Role.RIDER and trip.rider_id == actor.id:
        if action is None or action in RIDER_ACTIONS:
            return
    elif (
        actor.role is Role.DRIVER
        and trip.driver_id == actor.id
        and (action is None or action in DRIVER_ACTIONS)
    ):
        return
    raise NotParty(f"this token is not a party to trip {trip.trip_id} for that")
