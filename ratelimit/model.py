"""Limits and decisions of the token bucket. Pure: no Redis, no HTTP."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limit:
    """`capacity` tokens, refilled at `refill` tokens every `period_s` seconds."""

    name: str
    capacity: int
    refill: int
    period_s: float

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.refill < 1 or not (self.period_s > 0):
            raise ValueError("a limit needs capacity >= 1, refill >= 1 and period_s > 0")

    @property
    def period_ms(self) -> int:
        return max(1, round(self.period_s * 1000))

    @property
    def window_s(self) -> int:
        """Seconds a full bucket takes to refill from empty (the policy's window)."""
        return max(1, math.ceil(self.capacity * self.period_s / self.refill))

    def policy_header(self) -> str:
        """`RateLimit-Policy` (IETF httpapi ratelimit-headers draft, structured fields)."""
        return f'"{self.name}";q={self.capacity};w={self.window_s}'


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after_ms: int
    reset_ms: int

    @property
    def retry_after_s(self) -> int:
        """For the `Retry-After` header: whole seconds, rounded up, at least 1."""
        return max(1, math.ceil(self.retry_after_ms / 1000))

    def headers(self, limit: Limit) -> dict[str, str]:
        reset_s = math.ceil(self.reset_ms / 1000)
        headers = {
            "RateLimit-Policy": limit.policy_header(),
            "RateLimit": f'"{limit.name}";r={self.remaining};t={reset_s}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers
