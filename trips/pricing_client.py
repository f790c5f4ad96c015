"""The guarded call to the external pricing service.

    quota (token bucket, shared by every API process)
      -> circuit breaker (pybreaker; one probe at a time when half-open)
        -> bounded retries, exponential backoff with full jitter, within the request's deadline
          -> one httpx request with explicit timeouts

Whenever pricing cannot answer in time (quota empty, breaker open, outage, deadline spent) the
trip still goes ahead with the local rate table's fare, labelled `source: "fallback"`.
Only outages count against the breaker: timeouts, connection errors, 5xx and 429; a 4xx for a
bad request is our bug, answered with a fallback fare and logged, and does not open it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Protocol

import httpx
import pybreaker

from dispatch.model import Position
from ratelimit.bucket import TokenBucket
from ratelimit.model import Limit
from ridehail import tracing
from ridehail.redis_conn import translated_errors
from trips.model import Fare, RateTable

log = logging.getLogger(__name__)


class PricingOutage(Exception):
    """The pricing service did not answer usefully: retryable, counts against the breaker."""


class PricingRejected(Exception):
    """The pricing service refused our request (4xx other than 429): not an outage."""


class PricingMetrics(Protocol):
    def pricing_call(self, outcome: str) -> None: ...
    def fallback(self, reason: str) -> None: ...
    def limiter(self, limit: str, allowed: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class PricingPolicy:
    deadline_s: float = 0.25  # the whole quote, retries included, within one trip request
    attempt_timeout_s: float = 0.1
    connect_timeout_s: float = 0.05
    max_attempts: int = 3
    backoff_base_s: float = 0.01
    backoff_cap_s: float = 0.05


def outage_only(exc: BaseException) -> bool:
    """pybreaker `exclude` predicate: everything but an outage is not a failure."""
    return not isinstance(exc, PricingOutage)


def new_breaker(
    fail_max: int,
    reset_timeout_s: float,
    listener: pybreaker.CircuitBreakerListener | None = None,
) -> pybreaker.CircuitBreaker:
    listeners = [listener] if listener is not None else []
    return pybreaker.CircuitBreaker(
        fail_max=fail_max,
        reset_timeout=reset_timeout_s,
        exclude=[outage_only],
        listeners=listeners,
        name="pricing",
        # The call that trips the breaker raises its own PricingOutage, so it is counted like
        # any other; calls while open raise CircuitBreakerError without touching the network.
        throw_new_error_on_trip=False,
    )


def _consume_exception(future: asyncio.Future[tuple[float, str]]) -> None:
    """A shielded call whose caller was cancelled: its outcome was recorded by the breaker."""
    if not future.cancelled():
        future.exception()


class PricingClient:
    def __init__(
        self,
        http: httpx.AsyncClient | None,
        breaker: pybreaker.CircuitBreaker,
        bucket: TokenBucket,
        quota_key: str,
        quota: Limit,
        rates: RateTable,
        policy: PricingPolicy,
        metrics: PricingMetrics,
    ) -> None:
        self._http = http
        self.breaker = breaker
        self._bucket = bucket
        self._quota_key = quota_key
        self._quota = quota
        self._rates = rates
        self._policy = policy
        self._metrics = metrics
        self._probing = False

    async def quote(self, pickup: Position, dropoff: Position, surge: float) -> Fare:
        """A fare from the pricing service, or the labelled fallback; never raises for pricing."""
        with tracing.span("pricing.quote") as span:
            fare = await self._quote(pickup, dropoff, surge)
            if span.is_recording():
                span.set_attributes(
                    {"fare.source": fare.source, "breaker.state": self.breaker.current_state}
                )
            return fare

    async def _quote(self, pickup: Position, dropoff: Position, surge: float) -> Fare:
        fallback = self._rates.quote(pickup, dropoff, surge)
        if self._http is None:
            return self._fall_back(fallback, "unconfigured")
        async with translated_errors():
            decision = await self._bucket.take(self._quota_key, self._quota)
        self._metrics.limiter(self._quota.name, decision.allowed)
        if not decision.allowed:
            return self._fall_back(fallback, "rate_limited")
        payload = {
            "pickup": {"lat": pickup.lat, "lng": pickup.lng},
            "dropoff": {"lat": dropoff.lat, "lng": dropoff.lng},
            "surge": surge,
        }
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._policy.deadline_s
        try:
            amount, currency = await self._with_retries(payload, deadline)
        except pybreaker.CircuitBreakerError:
            return self._fall_back(fallback, "breaker_open")
        except PricingOutage as exc:
            log.warning("pricing unavailable: %s", exc)
            return self._fall_back(fallback, "outage")
        except PricingRejected as exc:
            log.error("pricing rejected a quote request: %s", exc)
            return self._fall_back(fallback, "rejected")
        self._metrics.pricing_call("ok")
        return Fare(round(amount * 100), currency, "pricing")

    async def _with_retries(self, payload: dict[str, object], deadline: float) -> tuple[float, str]:
        p = self._policy
        loop = asyncio.get_running_loop()
        for attempt in range(1, p.max_attempts + 1):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise PricingOutage("deadline spent")
            try:
                return await self._guarded_call(payload, min(p.attempt_timeout_s, remaining))
            except PricingOutage:
                self._metrics.pricing_call("outage")
                backoff = random.uniform(0, min(p.backoff_cap_s, p.backoff_base_s * 2**attempt))
                if attempt == p.max_attempts or loop.time() + backoff >= deadline:
                    raise
                await asyncio.sleep(backoff)
        raise PricingOutage("no attempts")  # unreachable: the loop returns or raises

    async def _guarded_call(
        self, payload: dict[str, object], timeout_s: float
    ) -> tuple[float, str]:
        # pybreaker lets every caller through while half-open; allow a single probe instead.
        probing = self.breaker.current_state != pybreaker.STATE_CLOSED
        if probing:
            if self._probing:
                raise pybreaker.CircuitBreakerError("a probe is already in flight")
            self._probing = True
        # Shielded: if the trip request is cancelled (the client went away), the call still runs
        # to its end (at most `timeout_s`), so the breaker records what pricing really did,
        # never a cancellation as a success or a failure.
        call = asyncio.ensure_future(self._breaker_call(payload, timeout_s))
        if probing:
            call.add_done_callback(self._probe_done)
        call.add_done_callback(_consume_exception)
        return await asyncio.shield(call)

    def _probe_done(self, _: asyncio.Future[tuple[float, str]]) -> None:
        self._probing = False

    async def _breaker_call(
        self, payload: dict[str, object], timeout_s: float
    ) -> tuple[float, str]:
        with self.breaker.calling():  # never a decorator on an async def: see DEVELOPERS
            return await self._call_once(payload, timeout_s)

    @tracing.traced("pricing.attempt")
    async def _call_once(self, payload: dict[str, object], timeout_s: float) -> tuple[float, str]:
        assert self._http is not None
        timeout = httpx.Timeout(timeout_s, connect=min(self._policy.connect_timeout_s, timeout_s))
        try:
            async with asyncio.timeout(timeout_s):  # httpx's timeouts are per operation
                response = await self._http.post("/v1/quote", json=payload, timeout=timeout)
        except (TimeoutError, httpx.TimeoutException, httpx.TransportError) as exc:
            raise PricingOutage(f"{type(exc).__name__}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise PricingOutage(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PricingRejected(f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            body = response.json()
            return float(body["amount"]), str(body["currency"])
        except (ValueError, KeyError, TypeError) as exc:
            raise PricingOutage("malformed quote") from exc

    def _fall_back(self, fare: Fare, reason: str) -> Fare:
        self._metrics.fallback(reason)
        tracing.annotate({"fallback.reason": reason})
        return fare
