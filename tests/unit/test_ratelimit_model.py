"""Limits, decisions and the headers they become (IETF httpapi ratelimit-headers draft)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratelimit.model import Decision, Limit
from ridehail.settings import parse_limit

# RFC 8941 structured fields, as the draft uses them: an sf-string item with integer parameters,
# e.g. `"trip-requests";q=10;w=60`.
SF_ITEM = re.compile(
    r'^"(?P<name>[\x20-\x21\x23-\x5b\x5d-\x7e]*)"(?P<params>(;[a-z*][a-z0-9_.*-]*=\d{1,15})*)$'
)


def sf_item(value: str) -> tuple[str, dict[str, int]]:
    """The name and integer parameters of one structured-field item; fails if malformed."""
    match = SF_ITEM.match(value)
    assert match, f"not a structured-field item: {value!r}"
    params = {}
    for part in match["params"].split(";")[1:]:
        key, _, number = part.partition("=")
        params[key] = int(number)
    return match["name"], params


def test_a_limit_needs_a_positive_capacity_refill_and_period() -> None:
    for capacity, refill, period in [(0, 1, 1.0), (1, 0, 1.0), (1, 1, 0.0), (1, 1, float("nan"))]:
        with pytest.raises(ValueError, match="capacity"):
            Limit("x", capacity=capacity, refill=refill, period_s=period)


def test_a_limit_setting_is_a_bucket_of_count_tokens_refilled_count_per_period() -> None:
    limit = parse_limit("trip-requests", "10/60")
    assert limit == Limit("trip-requests", capacity=10, refill=10, period_s=60.0)
    assert limit.period_ms == 60_000
    assert parse_limit("p", "200/0.5").period_ms == 500


def test_the_policy_header_names_the_quota_and_the_window_of_a_full_refill() -> None:
    assert Limit("trip-requests", 10, 10, 60).policy_header() == '"trip-requests";q=10;w=60'
    # 30 tokens at 1 per 2 s: empty to full takes 60 s
    assert Limit("slow", 30, 1, 2).policy_header() == '"slow";q=30;w=60'
    # a sub-second period still advertises at least one second
    assert Limit("fast", 5, 5, 0.2).policy_header() == '"fast";q=5;w=1'


def test_an_allowed_decision_carries_ratelimit_headers_but_no_retry_after() -> None:
    limit = Limit("location-updates", 30, 30, 10)
    headers = Decision(True, remaining=29, retry_after_ms=0, reset_ms=333).headers(limit)
    assert set(headers) == {"RateLimit-Policy", "RateLimit"}
    assert sf_item(headers["RateLimit-Policy"]) == ("location-updates", {"q": 30, "w": 10})
    assert sf_item(headers["RateLimit"]) == ("location-updates", {"r": 29, "t": 1})


def test_a_refused_decision_says_when_to_come_back_in_whole_seconds_rounded_up() -> None:
    limit = Limit("registrations", 30, 30, 60)
    refused = Decision(False, remaining=0, retry_after_ms=2001, reset_ms=60_000)
    headers = refused.headers(limit)
    assert headers["Retry-After"] == "3"
    assert sf_item(headers["RateLimit"]) == ("registrations", {"r": 0, "t": 60})
    # never "Retry-After: 0", which would invite an immediate retry storm
    assert Decision(False, 0, 1, 1).retry_after_s == 1
    assert Decision(False, 0, 0, 0).retry_after_s == 1


@given(
    capacity=st.integers(1, 10**6),
    refill=st.integers(1, 10**6),
    period_s=st.floats(0.001, 10**6),
    remaining=st.integers(0, 10**6),
    retry_ms=st.integers(0, 10**9),
    reset_ms=st.integers(0, 10**9),
    allowed=st.booleans(),
)
def test_every_header_is_a_well_formed_structured_field_for_any_limit(
    capacity: int,
    refill: int,
    period_s: float,
    remaining: int,
    retry_ms: int,
    reset_ms: int,
    allowed: bool,
) -> None:
    limit = Limit("any-limit", capacity, refill, period_s)
    headers = Decision(allowed, remaining, retry_ms, reset_ms).headers(limit)
    name, policy = sf_item(headers["RateLimit-Policy"])
    assert name == "any-limit"
    assert policy["q"] == capacity
    assert policy["w"] >= 1
    assert policy["w"] * refill >= capacity * period_s * (1 - 1e-9)  # w covers a full refill
    _, state = sf_item(headers["RateLimit"])
    assert state == {"r": remaining, "t": -(-reset_ms // 1000)}
    if allowed:
        assert "Retry-After" not in headers
    else:
        assert int(headers["Retry-After"]) * 1000 >= retry_ms
        assert int(headers["Retry-After"]) >= 1
