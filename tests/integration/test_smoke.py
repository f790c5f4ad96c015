from __future__ import annotations

import httpx


async def test_a_registered_driver_that_goes_available_and_pings_is_found_nearby(
    client: httpx.AsyncClient,
) -> None:
    reg = (await client.post("/v1/drivers", json={"name": "Aino"})).json()
    auth = {"Authorization": f"Bearer {reg['token']}"}
    base = f"/v1/drivers/{reg['driver_id']}"
    status = await client.put(f"{base}/status", json={"status": "available"}, headers=auth)
    assert status.status_code == 200
    ack = await client.put(f"{base}/location", json={"lat": 60.17, "lng": 24.94}, headers=auth)
    assert ack.json() == {"applied": True, "offer": None}
    query = {"lat": 60.171, "lng": 24.941}
    found = (await client.get("/v1/drivers/nearby", params=query, headers=auth)).json()
    assert [d["driver_id"] for d in found] == [reg["driver_id"]]
