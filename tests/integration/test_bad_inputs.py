"""Bad input of every kind gets its 4xx as problem+json, and changes nothing.

Each case is sent at a driver with a known record; afterwards the record must read the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ridehail.settings import Settings
from tests.conftest import ROOMY_RATE_LIMITS, make_settings
from tests.fleet import HELSINKI, PROBLEM_JSON, Driver, available_at, get_driver, iso, now_ms

MAX_BODY_BYTES = 4096
MAX_BATCH = 3


@pytest.fixture
def settings() -> Settings:
    return make_settings(
        **ROOMY_RATE_LIMITS, max_body_bytes=MAX_BODY_BYTES, max_batch_updates=MAX_BATCH
    )


@dataclass(frozen=True)
class Who:
    me: Driver
    other: Driver
    admin: dict[str, str]


@dataclass(frozen=True)
class Case:
    status: int
    method: str
    path: Callable[[Who], str]
    request: Callable[[Who], dict[str, Any]]


def location(status: int, request: Callable[[Who], dict[str, Any]]) -> Case:
    return Case(status, "PUT", lambda w: f"{w.me.path}/location", request)


def as_me(**kwargs: Any) -> Callable[[Who], dict[str, Any]]:
    return lambda w: {"headers": w.me.headers, **kwargs}


def raw_json(text: str) -> Callable[[Who], dict[str, Any]]:
    return lambda w: {
        "headers": {**w.me.headers, "content-type": "application/json"},
        "content": text.encode(),
    }


def nearby(query: str) -> Case:
    return Case(422, "GET", lambda w: f"/v1/drivers/nearby?{query}", as_me())


async def endless_body() -> AsyncIterator[bytes]:
    yield b'{"lat": 60.1, "lng": 24.9, "pad": "'
    for _ in range(10):
        yield b"x" * 1024
    yield b'"}'


FAR = {"lat": 60.3, "lng": 25.1}

CASES: dict[str, Case] = {
    "NaN as raw JSON": location(422, raw_json('{"lat": NaN, "lng": 24.9}')),
    "1e309 (infinity)": location(422, raw_json('{"lat": 1e309, "lng": 24.9}')),
    "-Infinity as raw JSON": location(422, raw_json('{"lat": 60.1, "lng": -Infinity}')),
    "lat 91": location(422, as_me(json={"lat": 91, "lng": 24.9})),
    "lat 85.06, beyond Redis GEO": location(422, as_me(json={"lat": 85.06, "lng": 24.9})),
    "lat -85.06": location(422, as_me(json={"lat": -85.06, "lng": 24.9})),
    "lng 180.5": location(422, as_me(json={"lat": 60.1, "lng": 180.5})),
    "a string for a number": location(422, as_me(json={"lat": "60.3", "lng": 25.1})),
    "a boolean for a number": location(422, as_me(json={"lat": True, "lng": 25.1})),
    "null for a number": location(422, as_me(json={"lat": None, "lng": 25.1})),
    "a missing field": location(422, as_me(json={"lat": 60.3})),
    "an extra field": location(422, as_me(json={**FAR, "altitude_m": 3})),
    "malformed JSON": location(422, raw_json('{"lat": 60.3,')),
    "a JSON array": location(422, raw_json("[60.3, 25.1]")),
    "an empty body": location(422, raw_json("")),
    "JSON sent as text/plain": location(
        422,
        lambda w: {
            "headers": {**w.me.headers, "content-type": "text/plain"},
            "content": b'{"lat": 60.3, "lng": 25.1}',
        },
    ),
    "heading 360": location(422, as_me(json={**FAR, "heading_deg": 360})),
    "negative speed": location(422, as_me(json={**FAR, "speed_mps": -1})),
    "speed of sound": location(422, as_me(json={**FAR, "speed_mps": 343})),
    "recorded_at without a zone": location(
        422, as_me(json={**FAR, "recorded_at": "2030-01-01T00:00:00"})
    ),
    "recorded_at not a time": location(422, as_me(json={**FAR, "recorded_at": "yesterday"})),
    "recorded_at a minute ahead": location(
        422,
        lambda w: {"headers": w.me.headers, "json": {**FAR, "recorded_at": iso(now_ms() + 60_000)}},
    ),
    "a body over max_body_bytes": location(413, as_me(json={**FAR, "pad": "x" * MAX_BODY_BYTES})),
    "a streamed body over max_body_bytes": location(
        413, lambda w: {"headers": w.me.headers, "content": endless_body()}
    ),
    "another driver's token": location(403, lambda w: {"headers": w.other.headers, "json": FAR}),
    "no token": location(401, lambda w: {"json": FAR}),
    "a made-up token": location(
        401, lambda w: {"headers": {"Authorization": "Bearer drv_x.y"}, "json": FAR}
    ),
    "a non-bearer scheme": location(
        401,
        lambda w: {"headers": {"Authorization": "Basic " + w.me.token}, "json": FAR},
    ),
    "a too long driver id": Case(
        422,
        "PUT",
        lambda w: f"/v1/drivers/{'d' * 65}/location",
        lambda w: {"headers": w.admin, "json": FAR},
    ),
    "an oversized batch": Case(
        422,
        "POST",
        lambda w: "/v1/drivers/locations",
        lambda w: {
            "headers": w.admin,
            "json": {"updates": [{"driver_id": w.me.driver_id, **FAR}] * (MAX_BATCH + 1)},
        },
    ),
    "a batch from a driver": Case(
        403,
        "POST",
        lambda w: "/v1/drivers/locations",
        lambda w: {
            "headers": w.me.headers,
            "json": {"updates": [{"driver_id": w.me.driver_id, **FAR}]},
        },
    ),
    "an unknown status": Case(
        422, "PUT", lambda w: f"{w.me.path}/status", as_me(json={"status": "busy"})
    ),
    "a status in the wrong case": Case(
        422, "PUT", lambda w: f"{w.me.path}/status", as_me(json={"status": "OFFLINE"})
    ),
    "another driver going offline": Case(
        403,
        "PUT",
        lambda w: f"{w.me.path}/status",
        lambda w: {"headers": w.other.headers, "json": {"status": "offline"}},
    ),
    "radius_m 0": nearby("lat=60.17&lng=24.94&radius_m=0"),
    "radius_m 50001": nearby("lat=60.17&lng=24.94&radius_m=50001"),
    "limit 0": nearby("lat=60.17&lng=24.94&limit=0"),
    "limit 51": nearby("lat=60.17&lng=24.94&limit=51"),
    "limit 2.5": nearby("lat=60.17&lng=24.94&limit=2.5"),
    "lat=nan in a query": nearby("lat=nan&lng=24.94"),
    "lat=inf in a query": nearby("lat=inf&lng=24.94"),
    "lat 85.06 in a query": nearby("lat=85.06&lng=24.94"),
    "lng 181 in a query": nearby("lat=60&lng=181"),
    "lat=abc in a query": nearby("lat=abc&lng=24.94"),
    "no lng in a query": nearby("lat=60.17"),
    "a registration without a name": Case(
        422, "POST", lambda w: "/v1/drivers", lambda w: {"json": {"name": ""}}
    ),
    "a registration with a number for a name": Case(
        422, "POST", lambda w: "/v1/drivers", lambda w: {"json": {"name": 42}}
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
async def test_bad_input_is_a_4xx_problem_and_leaves_the_driver_as_it_was(
    client: httpx.AsyncClient, admin_headers: dict[str, str], case: Case
) -> None:
    who = Who(
        await available_at(client, HELSINKI), await available_at(client, HELSINKI), admin_headers
    )
    before = await get_driver(client, who.me)
    reply = await client.request(case.method, case.path(who), **case.request(who))
    assert reply.status_code == case.status, reply.text
    assert reply.headers["content-type"] == PROBLEM_JSON
    problem = reply.json()
    assert problem["status"] == case.status
    assert all(isinstance(problem[k], str) and problem[k] for k in ("type", "title", "detail"))
    if case.status == 422:
        assert problem["errors"], "a validation problem lists its errors"
        assert all({"field", "message"} <= set(e) for e in problem["errors"])
    assert await get_driver(client, who.me) == before


async def test_an_oversized_body_is_the_same_problem_whether_declared_or_streamed(
    client: httpx.AsyncClient,
) -> None:
    driver = await available_at(client, HELSINKI)
    declared = await client.put(
        f"{driver.path}/location",
        json={**FAR, "pad": "x" * MAX_BODY_BYTES},
        headers=driver.headers,
    )
    streamed = await client.put(
        f"{driver.path}/location", content=endless_body(), headers=driver.headers
    )
    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert declared.json()["type"] == streamed.json()["type"]
    assert declared.json()["title"] == streamed.json()["title"]


async def test_a_ping_whose_client_leaves_mid_body_is_a_400_not_a_logged_500(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": "/v1/drivers/drv_0123456789abcdef/location",
        "raw_path": b"/v1/drivers/drv_0123456789abcdef/location",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"40")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    parts = iter([{"type": "http.request", "body": b'{"lat": 60.1', "more_body": True}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(parts, {"type": "http.disconnect"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)

    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 400
    assert not [r for r in caplog.records if r.getMessage() == "unhandled error"]
