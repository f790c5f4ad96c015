"""Registering drivers: ids, tokens shown once and kept only as a SHA-256 hash."""

from __future__ import annotations

import hashlib

import httpx
import redis.asyncio as aioredis

from ridehail.bootstrap import Services
from ridehail.keys import Keys
from tests.fleet import get_driver, register


async def test_a_registered_driver_gets_an_id_and_a_token_and_starts_offline(
    client: httpx.AsyncClient,
) -> None:
    reply = await client.post("/v1/drivers", json={"name": "Aino", "vehicle": "Toyota Prius"})
    assert reply.status_code == 201
    body = reply.json()
    assert set(body) == {"driver_id", "token"}
    assert body["driver_id"].startswith("drv_")
    assert body["token"].startswith(body["driver_id"] + ".")
    me = await client.get(f"/v1/drivers/{body['driver_id']}", headers=_bearer(body["token"]))
    assert me.status_code == 200
    assert (
        me.json().items()
        >= {
            "driver_id": body["driver_id"],
            "name": "Aino",
            "vehicle": "Toyota Prius",
            "status": "offline",
            "lat": None,
            "lng": None,
            "last_seen": None,
            "fresh": False,
            "trip_id": None,
            "offer": None,
        }.items()
    )


async def test_every_registration_gets_a_new_id_and_token(client: httpx.AsyncClient) -> None:
    drivers = [await register(client, "Same Name") for _ in range(5)]
    assert len({d.driver_id for d in drivers}) == 5
    assert len({d.token for d in drivers}) == 5


async def test_the_token_is_stored_only_as_its_sha256_hash(
    client: httpx.AsyncClient, redis_client: aioredis.Redis, services: Services
) -> None:
    driver = await register(client, "Aino")
    record = await redis_client.hgetall(Keys(services.settings.key_prefix).driver(driver.driver_id))
    assert record, "the driver record is where Keys says it is"
    stored = b" ".join([*record.keys(), *record.values()]).decode()
    secret = driver.token.partition(".")[2]
    assert driver.token not in stored
    assert secret not in stored
    assert hashlib.sha256(driver.token.encode()).hexdigest() in stored


async def test_no_key_anywhere_in_redis_holds_the_plaintext_token(
    client: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    driver = await register(client)
    secret = driver.token.partition(".")[2].encode()
    async for key in redis_client.scan_iter():
        if await redis_client.type(key) == b"hash":
            values = await redis_client.hgetall(key)
            assert all(secret not in v for v in values.values()), key


async def test_a_driver_token_is_refused_for_another_driver(client: httpx.AsyncClient) -> None:
    me, other = await register(client), await register(client)
    reply = await client.get(other.path, headers=me.headers)
    assert reply.status_code == 403
    assert (await get_driver(client, other))["driver_id"] == other.driver_id


async def test_a_rider_token_is_not_a_driver_token(client: httpx.AsyncClient) -> None:
    driver = await register(client)
    rider = (await client.post("/v1/riders", json={"name": "Rita"})).json()
    reply = await client.get(driver.path, headers=_bearer(rider["token"]))
    assert reply.status_code == 403


async def test_a_made_up_token_is_unauthorized(client: httpx.AsyncClient) -> None:
    driver = await register(client)
    forged = driver.driver_id + ".not-the-secret"
    reply = await client.get(driver.path, headers=_bearer(forged))
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == "Bearer"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
