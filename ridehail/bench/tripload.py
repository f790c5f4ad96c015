"""What the trips bench sends: riders written up front, their requests, one tripgen run."""

from __future__ import annotations

import json
import random
import secrets
import subprocess
import sys
import tempfile
from typing import Any

import redis

from ridehail.auth import hash_token, mint_token
from ridehail.bench.city import City
from ridehail.keys import Keys


def riders(redis_url: str, n: int, keys: Keys) -> list[str]:
    """n riders written straight into their records (as the API's register does): tokens."""
    client = redis.Redis.from_url(redis_url)
    tokens = []
    pipe = client.pipeline(transaction=False)
    for _ in range(n):
        rider = "rdr_" + secrets.token_hex(8)
        token = mint_token(rider)
        pipe.hset(keys.rider(rider), mapping={"name": "bench", "tok": hash_token(token)})
        tokens.append(token)
    pipe.execute()
    client.close()
    return tokens


def requests(tokens: list[str], rng: random.Random) -> list[str]:
    points = City().random_points(rng, 2 * len(tokens))
    out = []
    for n, token in enumerate(tokens):
        (plat, plng), (dlat, dlng) = points[2 * n], points[2 * n + 1]
        body = json.dumps(
            {"pickup": {"lat": plat, "lng": plng}, "dropoff": {"lat": dlat, "lng": dlng}}
        )
        out.append(
            f"POST /v1/trips HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Idempotency-Key: k{n}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        )
    return out


def gen(port: int, mode: str, requests: list[str], **spec: float) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump({"host": "127.0.0.1", "port": port, "mode": mode, "requests": requests} | spec, f)
        f.flush()
        done = subprocess.run(  # noqa: S603 - this interpreter, our module
            [sys.executable, "-m", "ridehail.bench.tripgen", f.name],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result
