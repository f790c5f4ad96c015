"""Supply use cases. They take their store as an argument and know nothing of HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from dispatch.model import (
    Driver,
    DriverNotFound,
    DriverStatus,
    LocationUpdate,
    NearbyDriver,
    Position,
    UpdateOutcome,
)
from dispatch.redis_supply import Applied
from ratelimit.model import Decision, Limit
from ridehail.errors import RateLimited


class SupplyStore(Protocol):
    async def create_driver(
        self, driver_id: str, name: str, vehicle: str | None, token_hash: str
    ) -> None: ...

    async def apply_location(
        self, update: LocationUpdate, stale_after_ms: int, limit: Limit | None
    ) -> tuple[Decision, list[Applied]]: ...

    async def apply_locations(
        self, updates: Sequence[LocationUpdate], stale_after_ms: int
    ) -> list[Applied]: ...

    async def nearest(
        self,
        at: Position,
        k: int,
        *,
        initial_radius_m: float,
        max_radius_m: float,
        stale_after_ms: int,
        exclude: Sequence[str] = (),
    ) -> list[NearbyDriver]: ...

    async def sweep_stale(self, stale_after_ms: int, batch: int = 500) -> int: ...

    async def set_status(
        self, driver_id: str, status: DriverStatus, stale_after_ms: int
    ) -> tuple[Driver, int] | None: ...

    async def get_driver(self, driver_id: str) -> tuple[Driver, int] | None: ...


@dataclass(frozen=True, slots=True)
class SupplyPolicy:
    stale_after_ms: int = 30_000
    initial_radius_m: float = 100.0
    max_radius_m: float = 50_000.0


@dataclass(frozen=True, slots=True)
class DriverSnapshot:
    """A driver as read at `now_ms` on the server's clock."""

    driver: Driver
    now_ms: int
    fresh: bool


class SupplyService:
    def __init__(self, store: SupplyStore, policy: SupplyPolicy) -> None:
        self.store = store
        self.policy = policy

    async def update_location(
        self, update: LocationUpdate, limit: Limit | None = None
    ) -> tuple[Decision, bool, str | None, int | None]:
        """(limit decision, applied, pending offer JSON, its expiry ms).

        Raises RateLimited when the driver's bucket is empty, DriverNotFound when unknown.
        """
        decision, rows = await self.store.apply_location(update, self.policy.stale_after_ms, limit)
        if limit is not None and not decision.allowed:
            raise RateLimited(limit, decision)
        [(outcome, offer, expires_ms)] = rows
        if outcome is UpdateOutcome.UNKNOWN_DRIVER:
            raise DriverNotFound(update.driver_id)
        return decision, outcome is UpdateOutcome.APPLIED, offer, expires_ms

    async def update_locations(self, updates: Sequence[LocationUpdate]) -> list[UpdateOutcome]:
        applied = await self.store.apply_locations(updates, self.policy.stale_after_ms)
        return [outcome for outcome, _, _ in applied]

    async def set_status(self, driver_id: str, status: DriverStatus) -> DriverSnapshot:
        found = await self.store.set_status(driver_id, status, self.policy.stale_after_ms)
        return self._snapshot(driver_id, found)

    async def get_driver(self, driver_id: str) -> DriverSnapshot:
        return self._snapshot(driver_id, await self.store.get_driver(driver_id))

    async def nearby(self, at: Position, radius_m: float, limit: int) -> list[NearbyDriver]:
        return await self.store.nearest(
            at,
            limit,
            initial_radius_m=min(self.policy.initial_radius_m, radius_m),
            max_radius_m=min(radius_m, self.policy.max_radius_m),
            stale_after_ms=self.policy.stale_after_ms,
        )

    async def sweep(self) -> int:
        return await self.store.sweep_stale(self.policy.stale_after_ms)

    def _snapshot(self, driver_id: str, found: tuple[Driver, int] | None) -> DriverSnapshot:
        if found is None:
            raise DriverNotFound(driver_id)
        driver, now_ms = found
        fresh = driver.is_fresh(now_ms, self.policy.stale_after_ms)
        return DriverSnapshot(driver=driver, now_ms=now_ms, fresh=fresh)
