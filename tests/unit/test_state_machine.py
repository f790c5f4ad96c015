"""The pure trip model: the transition table, fares, and who may act on a trip."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest

from dispatch.model import EARTH_RADIUS_M, Position
from ridehail.auth import Principal, Role
from ridehail.errors import Conflict, Forbidden
from trips.model import (
    HOLDS_DRIVER,
    TERMINAL,
    TRANSITIONS,
    Action,
    Fare,
    IllegalTransition,
    NotParty,
    RateTable,
    Trip,
    TripState,
    next_state,
    states_allowing,
)
from trips.parties import authorize

S, A = TripState, Action
# The contract (../shared/API.md), written out independently of the table it checks.
CONTRACT: dict[tuple[TripState, Action], TripState] = {
    (S.REQUESTED, A.OFFER): S.OFFERED,
    (S.REQUESTED, A.GIVE_UP): S.NO_DRIVER,
    (S.REQUESTED, A.CANCEL): S.CANCELLED,
    (S.OFFERED, A.ACCEPT): S.ACCEPTED,
    (S.OFFERED, A.DECLINE): S.REQUESTED,
    (S.OFFERED, A.EXPIRE): S.REQUESTED,
    (S.OFFERED, A.CANCEL): S.CANCELLED,
    (S.ACCEPTED, A.ARRIVE): S.ARRIVED,
    (S.ACCEPTED, A.CANCEL): S.CANCELLED,
    (S.ARRIVED, A.START): S.IN_PROGRESS,
    (S.ARRIVED, A.CANCEL): S.CANCELLED,
    (S.IN_PROGRESS, A.COMPLETE): S.COMPLETED,
}
ILLEGAL = [pair for pair in itertools.product(TripState, Action) if pair not in CONTRACT]


def _id(pair: tuple[TripState, Action]) -> str:
    return f"{pair[0].value}-{pair[1].value}"


def test_the_transition_table_is_exactly_the_contracts_state_machine() -> None:
    assert TRANSITIONS == CONTRACT


@pytest.mark.parametrize(("pair", "target"), list(CONTRACT.items()), ids=[_id(p) for p in CONTRACT])
def test_every_legal_action_leads_where_the_table_says(
    pair: tuple[TripState, Action], target: TripState
) -> None:
    state, action = pair
    assert next_state(state, action) is target


@pytest.mark.parametrize("pair", ILLEGAL, ids=[_id(p) for p in ILLEGAL])
def test_every_other_action_in_every_state_is_an_illegal_transition(
    pair: tuple[TripState, Action],
) -> None:
    state, action = pair
    with pytest.raises(IllegalTransition, match=f"cannot {action.value} a trip that is"):
        next_state(state, action)


def test_an_illegal_transition_is_a_conflict_so_it_answers_409() -> None:
    assert issubclass(IllegalTransition, Conflict)


@pytest.mark.parametrize("state", sorted(TERMINAL), ids=str)
def test_a_terminal_state_allows_no_action_at_all(state: TripState) -> None:
    assert state.is_terminal
    for action in Action:
        with pytest.raises(IllegalTransition):
            next_state(state, action)


def test_exactly_completed_cancelled_and_no_driver_are_terminal() -> None:
    assert {s for s in TripState if s.is_terminal} == {S.COMPLETED, S.CANCELLED, S.NO_DRIVER}


def test_every_state_is_reachable_from_requested_and_every_live_state_can_still_end() -> None:
    reachable = {S.REQUESTED}
    frontier = [S.REQUESTED]
    while frontier:
        state = frontier.pop()
        for (source, _), target in TRANSITIONS.items():
            if source is state and target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(TripState)
    for state in set(TripState) - TERMINAL:
        assert any(source is state for source, _ in TRANSITIONS), f"{state} is a dead end"


def test_a_trip_under_way_can_no_longer_be_cancelled_only_completed() -> None:
    assert [a for (s, a) in TRANSITIONS if s is S.IN_PROGRESS] == [A.COMPLETE]


def test_states_allowing_lists_the_from_states_of_an_action() -> None:
    assert set(states_allowing(A.CANCEL)) == {S.REQUESTED, S.OFFERED, S.ACCEPTED, S.ARRIVED}
    assert states_allowing(A.ACCEPT) == [S.OFFERED]
    assert states_allowing(A.COMPLETE) == [S.IN_PROGRESS]


def test_the_states_that_hold_a_driver_are_those_between_offer_and_the_end() -> None:
    assert {S.OFFERED, S.ACCEPTED, S.ARRIVED, S.IN_PROGRESS} == HOLDS_DRIVER
    assert not HOLDS_DRIVER & TERMINAL


# -- fares -------------------------------------------------------------------------------------
def _east_of_null_island(metres: float) -> Position:
    """A point on the equator `metres` east of (0, 0): the haversine distance is exact there."""
    return Position(0.0, math.degrees(metres / EARTH_RADIUS_M))


ORIGIN = Position(0.0, 0.0)


@pytest.mark.parametrize(
    ("metres", "cents"),
    [
        (0.0, 600),  # the minimum fare
        (1_000.0, 600),  # 300 + 120 is under the minimum
        (2_500.0, 600),  # 300 + 300 is exactly the minimum
        (5_004.1, 901),  # 300 + 600.49 rounded up
        (10_001.0, 1_501),  # 300 + 1200.12 rounded up
        (42_000.0, 5_340),  # 300 + 5040
    ],
)
def test_the_fallback_fare_is_a_base_plus_a_rate_per_km_rounded_up_with_a_minimum(
    metres: float, cents: int
) -> None:
    fare = RateTable().quote(ORIGIN, _east_of_null_island(metres))
    assert fare == Fare(cents, "EUR", "fallback")


def test_the_fare_is_the_same_in_both_directions() -> None:
    far = _east_of_null_island(7_777.0)
    assert RateTable().quote(ORIGIN, far) == RateTable().quote(far, ORIGIN)


def test_a_rate_table_of_its_own_prices_with_its_own_numbers() -> None:
    table = RateTable(base_cents=100, per_km_cents=50, minimum_cents=0, currency="SEK")
    assert table.quote(ORIGIN, _east_of_null_island(3_001.0)) == Fare(251, "SEK", "fallback")


# -- who may do what ---------------------------------------------------------------------------
def _trip(driver_id: str | None = "drv_assigned") -> Trip:
    return Trip(
        trip_id="trp_00abc",
        rider_id="rdr_owner",
        state=S.ACCEPTED,
        pickup=ORIGIN,
        dropoff=_east_of_null_island(1_000.0),
        fare=Fare(600, "EUR", "fallback"),
        created_ms=1,
        updated_ms=2,
        version=3,
        driver_id=driver_id,
        token=7 if driver_id else None,
    )


ADMIN = Principal(Role.ADMIN, "admin")
OWNER = Principal(Role.RIDER, "rdr_owner")
OTHER_RIDER = Principal(Role.RIDER, "rdr_other")
ASSIGNED = Principal(Role.DRIVER, "drv_assigned")
OTHER_DRIVER = Principal(Role.DRIVER, "drv_other")
DRIVER_ONLY = [A.ACCEPT, A.DECLINE, A.ARRIVE, A.START, A.COMPLETE]


def test_the_rider_the_driver_and_the_admin_may_read_a_trip() -> None:
    for who in (OWNER, ASSIGNED, ADMIN):
        authorize(_trip(), who, None)


@pytest.mark.parametrize("who", [OTHER_RIDER, OTHER_DRIVER], ids=["other-rider", "other-driver"])
def test_nobody_else_may_read_or_act_on_a_trip(who: Principal) -> None:
    for action in [None, *Action]:
        with pytest.raises(NotParty):
            authorize(_trip(), who, action)


def test_the_rider_may_cancel_but_take_no_driver_action() -> None:
    authorize(_trip(), OWNER, A.CANCEL)
    for action in DRIVER_ONLY:
        with pytest.raises(NotParty):
            authorize(_trip(), OWNER, action)


def test_the_assigned_driver_may_take_every_driver_action_and_cancel() -> None:
    for action in [*DRIVER_ONLY, A.CANCEL]:
        authorize(_trip(), ASSIGNED, action)


def test_the_admin_may_cancel_but_never_drive() -> None:
    authorize(_trip(), ADMIN, A.CANCEL)
    for action in DRIVER_ONLY:
        with pytest.raises(NotParty):
            authorize(_trip(), ADMIN, action)


@pytest.mark.parametrize("action", [A.OFFER, A.EXPIRE, A.GIVE_UP])
def test_the_dispatchers_own_actions_are_nobodys_over_http(action: Action) -> None:
    for who in (OWNER, ASSIGNED, ADMIN):
        with pytest.raises(NotParty):
            authorize(_trip(), who, action)


def test_a_driver_is_no_party_to_a_trip_nobody_holds() -> None:
    with pytest.raises(NotParty):
        authorize(_trip(driver_id=None), ASSIGNED, None)


def test_not_being_a_party_is_forbidden_so_it_answers_403() -> None:
    assert issubclass(NotParty, Forbidden)


def test_only_a_trip_that_holds_a_driver_names_its_holder_and_token() -> None:
    assert _trip().holder() == ("drv_assigned", 7)
    with pytest.raises(IllegalTransition):
        _trip(driver_id=None).holder()
    for state in TERMINAL | {S.REQUESTED}:
        with pytest.raises(IllegalTransition):
            dataclasses.replace(_trip(), state=state).holder()
