"""The token bucket's Lua function, on a real redis-server and on fakeredis.

Most tests drive the real `ratelimit/lua/bucket.lua` with a clock the test controls: the harness
below shadows `redis` with a local table whose `call('TIME')` answers the time passed in ARGV and
forwards every other command to the server, so HMGET/HSET/PEXPIRE are real. That turns the
arithmetic into something a property test can check exactly against rational numbers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from fractions import Fraction
from importlib.resources import files
from typing import Any

import fakeredis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratelimit.bucket import TokenBucket
from ratelimit.model import Limit

BUCKET_LUA = files("ratelimit").joinpath("lua", "bucket.lua").read_text()
CLOCKED_TAKE = (
    """
local real_redis = redis
local clock = {ARGV[5], ARGV[6]}
local redis = {call = function(command, ...)
  if command == 'TIME' then return clock end
  return real_redis.call(command, ...)
end}
"""
    + BUCKET_LUA
    + """
return take_tokens(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]))
"""
)
EPOCH_US = 1_700_000_000_000_000  # a realistic Redis TIME, so the integers are as large as live


@dataclass(frozen=True, slots=True)
class Take:
    allowed: bool
    remaining: int
    retry_after_ms: int
    reset_ms: int


def clock_args(now_us: int) -> list[int]:
    return [now_us // 1_000_000, now_us % 1_000_000]


def decode(raw: list[Any]) -> Take:
    allowed, remaining, retry, reset = (int(v) for v in raw)
    return Take(bool(allowed), remaining, retry, reset)


class SyncClockedBucket:
    """bucket.lua at chosen instants, on a sync fakeredis client (fast enough for Hypothesis)."""

    def __init__(self) -> None:
        self.redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        self._script = self.redis.register_script(CLOCKED_TAKE)

    def take(
        self, key: str, capacity: int, refill: int, period_ms: int, cost: int, at_us: int
    ) -> Take:
        args = [capacity, refill, period_ms, cost, *clock_args(at_us)]
        return decode(self._script(keys=[key], args=args))

    def copy(self, source: str, target: str) -> None:
        self.redis.delete(target)
        state = self.redis.hgetall(source)
        if state:
            self.redis.hset(target, mapping=state)


# -- a worked example, the same on both backends ------------------------------------------------
async def test_three_tokens_one_per_second_decide_exactly_on_the_server_clock(
    redis_client: aioredis.Redis,
) -> None:
    script = redis_client.register_script(CLOCKED_TAKE)

    async def take(at_ms: int, cost: int = 1) -> Take:
        args = [3, 1, 1000, cost, *clock_args(EPOCH_US + at_ms * 1000)]
        return decode(await script(keys=["rl:{example}"], args=args))

    assert await take(0) == Take(True, 2, 0, 1000)
    assert await take(0) == Take(True, 1, 0, 2000)
    assert await take(0) == Take(True, 0, 0, 3000)
    assert await take(0) == Take(False, 0, 1000, 3000)
    assert await take(999) == Take(False, 0, 1, 2001)  # 0.999 tokens back: not yet
    assert await take(1000) == Take(True, 0, 0, 3000)  # exactly one second: one token
    assert await take(1500, cost=4) == Take(False, 0, 3500, 2500)  # more than it ever holds
    assert await take(60_000) == Take(True, 2, 0, 1000)  # long idle: full, never more
    ttl_ms = await redis_client.pttl("rl:{example}")
    assert 1000 < ttl_ms <= 2000  # the key outlives its refill, then costs no memory


async def test_a_clock_that_goes_backwards_neither_refills_nor_breaks_the_bucket(
    redis_client: aioredis.Redis,
) -> None:
    """Redis TIME can step back (a failover to a replica with a slower clock)."""
    script = redis_client.register_script(CLOCKED_TAKE)

    async def take(at_ms: int) -> Take:
        args = [2, 1, 1000, 1, *clock_args(EPOCH_US + at_ms * 1000)]
        return decode(await script(keys=["rl:{back}"], args=args))

    assert (await take(10_000)).allowed
    assert (await take(10_000)).allowed
    stepped_back = await take(5_000)
    assert not stepped_back.allowed
    assert stepped_back.remaining == 0
    assert (await take(10_999)).allowed is False  # stamp kept at 10 s: 0.999 tokens by now
    assert (await take(11_000)).allowed is True


# -- real time, through TokenBucket --------------------------------------------------------------
async def test_a_bucket_admits_its_capacity_then_refuses_until_a_token_is_back(
    redis_client: aioredis.Redis,
) -> None:
    bucket = TokenBucket(redis_client)
    limit = Limit("burst", capacity=5, refill=1, period_s=0.2)

    decisions = [await bucket.take("rl:{burst}", limit) for _ in range(6)]

    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    refused = decisions[-1]
    assert 0 < refused.retry_after_ms <= 200
    assert refused.retry_after_s == 1
    await asyncio.sleep(refused.retry_after_ms / 1000)
    assert (await bucket.take("rl:{burst}", limit)).allowed
    assert not (await bucket.take("rl:{burst}", limit)).allowed


async def test_each_subject_has_its_own_bucket(redis_client: aioredis.Redis) -> None:
    bucket = TokenBucket(redis_client)
    limit = Limit("per-subject", capacity=2, refill=1, period_s=60)
    for key in ("rl:{a}", "rl:{b}"):
        assert (await bucket.take(key, limit)).allowed
        assert (await bucket.take(key, limit)).allowed
    assert not (await bucket.take("rl:{a}", limit)).allowed
    assert not (await bucket.take("rl:{b}", limit)).allowed
    assert (await bucket.take("rl:{c}", limit)).allowed


async def test_many_tasks_at_once_never_get_more_than_the_bucket_holds(
    redis_client: aioredis.Redis,
) -> None:
    bucket = TokenBucket(redis_client)
    limit = Limit("crowd", capacity=25, refill=1, period_s=3600)

    # 60 at once: within the client's connection pool, like the app's 64
    decisions = await asyncio.gather(*(bucket.take("rl:{crowd}", limit) for _ in range(60)))

    assert sum(d.allowed for d in decisions) == 25
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(25))


# -- the arithmetic, exactly ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Scenario:
    capacity: int
    refill: int
    period_ms: int
    steps: list[tuple[int, int]]  # (gap in microseconds since the previous take, cost)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    capacity = draw(st.integers(1, 20))
    refill = draw(st.integers(1, 20) | st.sampled_from([30, 200, 1000]))
    period_ms = draw(st.sampled_from([1, 3, 7, 100, 333, 1000, 60_000]) | st.integers(1, 120_000))
    period_us = period_ms * 1000
    gap = st.one_of(
        st.just(0),
        st.integers(0, 2_000),
        st.integers(0, 2 * period_us // refill + 1),
        st.integers(0, 3 * period_us),
    )
    steps = draw(st.lists(st.tuples(gap, st.integers(1, capacity)), min_size=1, max_size=30))
    return Scenario(capacity, refill, period_ms, steps)


def replay(sc: Scenario) -> tuple[list[int], list[int], SyncClockedBucket]:
    """Run the takes; the instant and the tokens admitted of each, and the bucket."""
    bucket = SyncClockedBucket()
    now = EPOCH_US
    times: list[int] = []
    admitted: list[int] = []
    for gap, cost in sc.steps:
        now += gap
        got = bucket.take("rl:{p}", sc.capacity, sc.refill, sc.period_ms, cost, now)
        times.append(now)
        admitted.append(cost if got.allowed else 0)
    return times, admitted, bucket


def worst_window_excess(sc: Scenario, times: list[int], admitted: list[int]) -> Fraction:
    """max over stretches i..j of: admitted - (capacity + refill * elapsed / period), in tokens."""
    per_us = Fraction(sc.refill, sc.period_ms * 1000)
    worst = Fraction(-(10**9))
    for i in range(len(times)):
        for j in range(i, len(times)):
            allowance = sc.capacity + (times[j] - times[i]) * per_us
            worst = max(worst, sum(admitted[i : j + 1]) - allowance)
    return worst


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_the_bucket_admits_what_an_exact_bucket_admits_and_never_comes_back_early(
    scenario: Scenario,
) -> None:
    """Never more than capacity + refill * elapsed / period over any stretch of takes (give or
    take one milli-token); Retry-After and the reset time are never early; the key outlives its
    refill. And at up to a token per millisecond, the admissions of an exact (rational) bucket,
    give or take one take's cost. (Faster, milli-token steps are coarse against a single
    microsecond: a 1-token bucket refilled every 3 us admits 3 in 4 of what an exact one does.)"""
    sc = scenario
    bucket = SyncClockedBucket()
    per_us = Fraction(sc.refill, sc.period_ms * 1000)  # tokens per microsecond
    now = EPOCH_US
    times: list[int] = []
    admitted: list[int] = []
    ideal_level, ideal_at, ideal_total = Fraction(sc.capacity), now, 0
    max_cost = max(cost for _, cost in sc.steps)
    for gap, cost in sc.steps:
        now += gap
        got = bucket.take("rl:{p}", sc.capacity, sc.refill, sc.period_ms, cost, now)
        times.append(now)
        admitted.append(cost if got.allowed else 0)

        ideal_level = min(Fraction(sc.capacity), ideal_level + (now - ideal_at) * per_us)
        ideal_at = now
        if ideal_level >= cost:
            ideal_level -= cost
            ideal_total += cost
        if sc.refill <= sc.period_ms:  # at most a token per millisecond
            assert abs(sum(admitted) - ideal_total) <= max_cost, (sum(admitted), ideal_total)
        assert 0 <= got.remaining <= sc.capacity
        assert got.allowed == (got.retry_after_ms == 0)

        if not got.allowed:  # coming back after Retry-After succeeds
            bucket.copy("rl:{p}", "rl:{retry}")
            back = now + got.retry_after_ms * 1000
            again = bucket.take("rl:{retry}", sc.capacity, sc.refill, sc.period_ms, cost, back)
            assert again.allowed, (got, again)
        bucket.copy("rl:{p}", "rl:{reset}")  # after reset_ms the bucket is full
        full_at = now + got.reset_ms * 1000
        full = bucket.take("rl:{reset}", sc.capacity, sc.refill, sc.period_ms, sc.capacity, full_at)
        assert full.allowed, (got, full)
        ttl_ms = bucket.redis.pttl("rl:{p}")
        assert got.reset_ms < ttl_ms <= got.reset_ms + 1000  # never forgotten before it is full

    # the refill stamp advances by whole microseconds, rounded up: never a microsecond twice
    assert worst_window_excess(sc, times, admitted) <= Fraction(1, 1000)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    capacity=st.integers(1, 20),
    period_ms=st.integers(1, 60_000),
    divisor=st.sampled_from([1, 2, 4, 5, 8, 10, 20, 25, 40, 50]),
    data=st.data(),
)
def test_when_refill_divides_the_period_the_bound_holds_exactly_over_every_stretch(
    capacity: int, period_ms: int, divisor: int, data: st.DataObject
) -> None:
    """When a milli-token takes a whole number of microseconds (period_ms divisible by refill,
    as in the defaults 10/60, 30/60 and 200/1, but not 30/10) there is no rounding at all."""
    refill = divisor
    period_ms = period_ms * divisor  # period_ms / refill is a whole number of milliseconds
    gap = st.integers(0, 2_000) | st.integers(0, 2 * period_ms * 1000 // refill + 1)
    steps = data.draw(st.lists(st.tuples(gap, st.integers(1, capacity)), min_size=1, max_size=30))
    sc = Scenario(capacity, refill, period_ms, steps)
    times, admitted, _ = replay(sc)
    assert worst_window_excess(sc, times, admitted) <= 0


def test_a_fast_stream_of_takes_never_gets_more_than_capacity_plus_refill_over_elapsed() -> None:
    # 5 tokens, 20 per 3 ms (a fractional 0.15 us per milli-token), a take every microsecond:
    # when the stamp was rounded down, a microsecond was credited twice and this admitted 7
    sc = Scenario(capacity=5, refill=20, period_ms=3, steps=[(0, 1)] + [(1, 1)] * 199)
    times, admitted, _ = replay(sc)
    elapsed_us = times[-1] - times[0]
    allowance = sc.capacity + Fraction(sc.refill * elapsed_us, sc.period_ms * 1000)
    assert sum(admitted) <= allowance, f"admitted {sum(admitted)} > {float(allowance):.2f}"
