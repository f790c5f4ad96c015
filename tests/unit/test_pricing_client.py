"""The guarded pricing call, layer by layer, against answers the real service would rarely give.

The pricing service is an httpx.MockTransport here (the transport seam; nothing of ours is
patched), so a test can answer 400, 429, 5xx, garbage or nothing at all, and count the calls.
The quota bucket runs on fakeredis; the metrics are the real Prometheus counters (read as deltas).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import fakeredis
import httpx
import pybreaker
import pytest
from prometheus_client import REGISTRY

from dispatch.model import Position
from ratelimit.bucket import TokenBucket
from ratelimit.model import Limit
from ridehail.observability import PrometheusPricingMetrics
from trips.model import Fare, RateTable
from trips.pricing_client import PricingClient, PricingPolicy, new_breaker

PICKUP, DROPOFF = Position(60.1699, 24.9384), Position(60.1975, 24.9710)
FALLBACK = RateTable().quote(PICKUP, DROPOFF, 1.0)
ROOMY_QUOTA = Limit("pricing-quota", capacity=10_000, refill=10_000, period_s=1)
QUOTE = {"amount": 12.34, "currency": "EUR", "surge": 1.0, "quote_id": "q"}

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def answer(status: int, body: object = None) -> httpx.Response:
    if body is None:
        body = QUOTE if status == 200 else {"detail": "nope"}
    return httpx.Response(status, json=body)


@dataclass
class Pricing:
    """The fake far end: answers in turn from `script` (the last one repeats), counts calls."""

    script: list[Callable[[], Awaitable[httpx.Response]]]
    calls: list[float] = field(default_factory=list)  # loop time of each call
    bodies: list[dict[str, object]] = field(default_factory=list)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/quote"
        self.calls.append(asyncio.get_running_loop().time())
        self.bodies.append(json.loads(request.content))
        step = self.script[min(len(self.calls), len(self.script)) - 1]
        return await step()


def replies(*steps: int | httpx.Response | Exception) -> Pricing:
    def make(step: int | httpx.Response | Exception) -> Callable[[], Awaitable[httpx.Response]]:
        async def reply() -> httpx.Response:
            if isinstance(step, Exception):
                raise step
            return step if isinstance(step, httpx.Response) else answer(step)

        return reply

    return Pricing([make(s) for s in steps])


def guarded(
    pricing: Pricing,
    *,
    fail_max: int = 100,
    reset_s: float = 60,
    quota: Limit = ROOMY_QUOTA,
    **policy: float,
) -> PricingClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(pricing), base_url="http://pricing")
    redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    return PricingClient(
        http,
        new_breaker(fail_max, reset_s),
        TokenBucket(redis),
        "rl:{pricing:quota}",
        quota,
        RateTable(),
        PricingPolicy(**policy),  # type: ignore[arg-type]  # ints and floats by name
        PrometheusPricingMetrics(),
    )


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def fallbacks(reason: str) -> float:
    return counter("ridehail_fallback_fares_total", reason=reason)


async def quote(client: PricingClient) -> Fare:
    return await client.quote(PICKUP, DROPOFF, 1.0)


# -- answers ---------------------------------------------------------------------------------
async def test_a_good_answer_is_the_fare_in_cents_labelled_pricing() -> None:
    pricing = replies(200)
    fare = await guarded(pricing).quote(PICKUP, DROPOFF, 1.7)
    assert fare == Fare(1234, "EUR", "pricing")
    assert pricing.bodies == [
        {
            "pickup": {"lat": PICKUP.lat, "lng": PICKUP.lng},
            "dropoff": {"lat": DROPOFF.lat, "lng": DROPOFF.lng},
            "surge": 1.7,
        }
    ]


@pytest.mark.parametrize("status", [400, 404, 409, 422])
async def test_a_4xx_is_answered_with_a_fallback_once_and_never_counts_against_the_breaker(
    status: int,
) -> None:
    pricing = replies(status)
    client = guarded(pricing, fail_max=3)
    before = fallbacks("rejected")

    fares = [await quote(client) for _ in range(10)]

    assert fares == [FALLBACK] * 10
    assert len(pricing.calls) == 10  # one call per quote: a rejection is not retried
    assert client.breaker.fail_counter == 0
    assert client.breaker.current_state == pybreaker.STATE_CLOSED
    assert fallbacks("rejected") - before == 10


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_429_and_5xx_are_outages_retried_up_to_max_attempts_and_counted(
    status: int,
) -> None:
    pricing = replies(status)
    client = guarded(pricing, max_attempts=3)
    before = fallbacks("outage"), counter("ridehail_pricing_calls_total", outcome="outage")

    assert await quote(client) == FALLBACK

    assert len(pricing.calls) == 3
    assert client.breaker.fail_counter == 3
    assert fallbacks("outage") - before[0] == 1
    assert counter("ridehail_pricing_calls_total", outcome="outage") - before[1] == 3


@pytest.mark.parametrize(
    "garbage",
    [
        httpx.Response(200, content=b"<html>oops</html>"),
        httpx.Response(200, json={"amount": "twelve", "currency": "EUR"}),
        httpx.Response(200, json={"currency": "EUR"}),
        httpx.Response(200, json=[1, 2]),
        httpx.ConnectError("connection refused"),
        httpx.ReadError("connection reset"),
    ],
    ids=["html", "amount-not-a-number", "no-amount", "a-list", "refused", "reset"],
)
async def test_garbage_and_broken_connections_are_outages_too(
    garbage: httpx.Response | Exception,
) -> None:
    pricing = replies(garbage)
    client = guarded(pricing, max_attempts=2)
    assert await quote(client) == FALLBACK
    assert len(pricing.calls) == 2
    assert client.breaker.fail_counter == 2


async def test_a_retry_that_succeeds_gives_the_real_fare_and_clears_the_failure_count() -> None:
    pricing = replies(503, 200)
    client = guarded(pricing, max_attempts=3)
    assert await quote(client) == Fare(1234, "EUR", "pricing")
    assert len(pricing.calls) == 2
    assert client.breaker.fail_counter == 0


async def test_a_rejection_between_outages_resets_the_count_the_service_did_answer() -> None:
    pricing = replies(503, 503, 400, 503)
    client = guarded(pricing, fail_max=3, max_attempts=1)
    for _ in range(4):
        await quote(client)
    assert client.breaker.fail_counter == 1
    assert client.breaker.current_state == pybreaker.STATE_CLOSED


# -- the breaker -----------------------------------------------------------------------------
async def test_fail_max_counts_attempts_so_one_request_with_retries_can_open_the_breaker() -> None:
    pricing = replies(503)
    client = guarded(pricing, fail_max=3, max_attempts=3)
    before = fallbacks("breaker_open")

    first = await quote(client)
    later = [await quote(client) for _ in range(5)]

    assert client.breaker.current_state == pybreaker.STATE_OPEN
    assert len(pricing.calls) == 3  # the three attempts of the first quote, then nothing
    assert [first, *later] == [FALLBACK] * 6
    # the first quote's last attempt trips the breaker and ends as an outage; the others
    # never reach pricing
    assert fallbacks("breaker_open") - before == 5


async def test_when_half_open_exactly_one_probe_goes_through_and_success_closes() -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_good_answer() -> httpx.Response:
        entered.set()
        await release.wait()
        return answer(200)

    async def outage() -> httpx.Response:
        return answer(503)

    pricing = Pricing([outage, slow_good_answer])
    client = guarded(
        pricing, fail_max=1, reset_s=0.05, max_attempts=1, deadline_s=5, attempt_timeout_s=5
    )
    assert await quote(client) == FALLBACK
    assert client.breaker.current_state == pybreaker.STATE_OPEN
    await asyncio.sleep(0.06)

    probe = asyncio.create_task(quote(client))
    await asyncio.wait_for(entered.wait(), 5)
    assert client.breaker.current_state == pybreaker.STATE_HALF_OPEN
    meanwhile = await asyncio.gather(*(quote(client) for _ in range(5)))
    release.set()

    assert (await probe).source == "pricing"
    assert meanwhile == [FALLBACK] * 5
    assert len(pricing.calls) == 2  # the outage, then the one probe
    assert client.breaker.current_state == pybreaker.STATE_CLOSED
    assert (await quote(client)).source == "pricing"


async def test_a_failed_probe_opens_the_breaker_again_for_another_reset_period() -> None:
    pricing = replies(503)
    client = guarded(pricing, fail_max=1, reset_s=0.2, max_attempts=1)
    await quote(client)
    await asyncio.sleep(0.21)

    await quote(client)  # the probe: fails
    assert client.breaker.current_state == pybreaker.STATE_OPEN
    for _ in range(5):
        await quote(client)
    assert len(pricing.calls) == 2


async def test_a_probe_cancelled_before_pricing_answers_does_not_close_the_breaker() -> None:
    async def outage() -> httpx.Response:
        return answer(503)

    reached = asyncio.Event()

    async def never() -> httpx.Response:
        reached.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    pricing = Pricing([outage, never])
    client = guarded(
        pricing, fail_max=1, reset_s=0.05, max_attempts=1, deadline_s=5, attempt_timeout_s=5
    )
    await quote(client)
    await asyncio.sleep(0.06)
    probe = asyncio.create_task(quote(client))
    await asyncio.wait_for(reached.wait(), 5)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert client.breaker.current_state != pybreaker.STATE_CLOSED


async def test_every_call_that_reached_pricing_is_counted() -> None:
    pricing = replies(503)
    client = guarded(pricing, fail_max=3, max_attempts=3)
    before = sum(
        counter("ridehail_pricing_calls_total", outcome=o) for o in ("ok", "outage", "rejected")
    )
    await quote(client)
    after = sum(
        counter("ridehail_pricing_calls_total", outcome=o) for o in ("ok", "outage", "rejected")
    )
    assert after - before == len(pricing.calls) == 3


# -- time ------------------------------------------------------------------------------------
async def test_a_service_slower_than_the_deadline_costs_the_request_no_more_than_the_deadline() -> (
    None
):
    async def two_seconds() -> httpx.Response:
        await asyncio.sleep(2)
        return answer(200)

    pricing = Pricing([two_seconds])
    client = guarded(pricing, deadline_s=0.25, attempt_timeout_s=0.1, max_attempts=3)
    before = fallbacks("outage")

    started = time.perf_counter()
    fare = await quote(client)
    took = time.perf_counter() - started

    assert fare == FALLBACK
    assert fallbacks("outage") - before == 1
    assert 2 <= len(pricing.calls) <= 3  # 0.1 s attempts, retried while the deadline allows
    assert took < 0.6, f"the quote took {took:.3f} s against a 0.25 s deadline"


async def test_an_attempt_timeout_longer_than_the_deadline_is_cut_to_the_deadline() -> None:
    async def two_seconds() -> httpx.Response:
        await asyncio.sleep(2)
        return answer(200)

    pricing = Pricing([two_seconds])
    client = guarded(pricing, deadline_s=0.2, attempt_timeout_s=5.0, max_attempts=3)

    started = time.perf_counter()
    assert await quote(client) == FALLBACK
    took = time.perf_counter() - started

    assert len(pricing.calls) == 1  # the one attempt used the whole deadline
    assert took < 0.5, f"the quote took {took:.3f} s against a 0.2 s deadline"


async def test_retries_wait_a_jittered_backoff_no_longer_than_the_cap() -> None:
    pricing = replies(503)
    client = guarded(pricing, max_attempts=6, deadline_s=5, backoff_base_s=0.02, backoff_cap_s=0.06)
    for _ in range(5):
        await quote(client)
    gaps = [b - a for a, b in zip(pricing.calls, pricing.calls[1:], strict=False)]
    within_quote = [g for i, g in enumerate(gaps) if (i + 1) % 6 != 0]
    assert len(within_quote) == 25
    # the cap, plus generous room for scheduling on a busy 2-core machine (an uncapped
    # exponential backoff would reach 0.02 * 2**5 = 0.64 s by the last retry)
    assert max(within_quote) < 0.06 + 0.4
    assert len({round(g, 4) for g in within_quote}) > 5  # full jitter: not one fixed delay


# -- quota and configuration -----------------------------------------------------------------
async def test_an_empty_quota_gives_a_fallback_without_calling_pricing() -> None:
    pricing = replies(200)
    client = guarded(pricing, quota=Limit("pricing-quota", capacity=2, refill=1, period_s=3600))
    before = fallbacks("rate_limited")
    fares = [await quote(client) for _ in range(4)]
    assert [f.source for f in fares] == ["pricing", "pricing", "fallback", "fallback"]
    assert len(pricing.calls) == 2
    assert fallbacks("rate_limited") - before == 2


async def test_without_a_pricing_url_every_fare_is_a_labelled_fallback() -> None:
    redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    client = PricingClient(
        None,
        new_breaker(5, 5),
        TokenBucket(redis),
        "rl:{pricing:quota}",
        ROOMY_QUOTA,
        RateTable(),
        PricingPolicy(),
        PrometheusPricingMetrics(),
    )
    before = fallbacks("unconfigured")
    assert await quote(client) == FALLBACK
    assert FALLBACK.source == "fallback"
    assert fallbacks("unconfigured") - before == 1
