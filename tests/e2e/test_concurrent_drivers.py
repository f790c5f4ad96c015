"""A thousand drivers pinging at once from several processes, against `ridehail serve`."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dispatch.model import Position
from tests.fleet import HELSINKI, assert_exact_nearest, nearby, scatter
from tests.support import ADMIN_TOKEN, running_ridehail

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

PROCESSES = 4
DRIVERS_EACH = 250
UPDATES_EACH = 3
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def api(redis_url: str) -> Iterator[str]:
    with running_ridehail(
        redis_url,
        workers=2,
        RIDEHAIL_KEY_PREFIX="e" + secrets.token_hex(4),
        RIDEHAIL_STALE_AFTER_S="600",
        # A loaded test machine can stall Redis past the 0.5 s default: that is a 503 by design,
        # and not what this test is about.
        RIDEHAIL_REDIS_TIMEOUT_S="5",
        RIDEHAIL_LIMIT_REGISTRATIONS="1000000/1",
        RIDEHAIL_LIMIT_LOCATION_UPDATES="1000000/1",
        RIDEHAIL_ACCESS_LOG="false",
    ) as base:
        yield base


def run_fleets(api: str) -> dict[str, Position]:
    """Start the client processes, let them all ping at once, collect what each sent last."""
    seed = secrets.randbits(16)

    def fleet(n: int) -> list[str]:
        args = [api, str(DRIVERS_EACH), str(UPDATES_EACH), str(seed + n)]
        return [sys.executable, "-m", "tests.e2e.fleet_process", *args]

    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    procs = [subprocess.Popen(fleet(n), cwd=ROOT, text=True, **pipes) for n in range(PROCESSES)]
    try:
        for proc in procs:  # every fleet registered and available before anyone pings
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise AssertionError(proc.communicate(timeout=30)[1][-3000:])
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        finals: dict[str, Position] = {}
        for proc in procs:
            out, err = proc.communicate(timeout=100)
            assert proc.returncode == 0, err[-3000:]
            finals.update({i: Position(lat, lng) for i, (lat, lng) in json.loads(out).items()})
        return finals
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


async def read_positions(api: str, driver_ids: list[str]) -> dict[str, tuple[float, float]]:
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=api, headers=ADMIN, limits=limits, timeout=30) as c:

        async def one(driver_id: str) -> tuple[float, float]:
            body = (await c.get(f"/v1/drivers/{driver_id}")).json()
            return body["lat"], body["lng"]

        found = await asyncio.gather(*(one(i) for i in driver_ids))
    return dict(zip(driver_ids, found, strict=True))


async def search_around(api: str, finals: dict[str, Position], seed: int) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=api, timeout=30) as c:
        for _ in range(15):
            at = scatter(rng, HELSINKI, 9_000)
            radius_m = rng.choice([300, 1_000, 3_000, 10_000])
            limit = rng.choice([1, 10, 50])
            found = await nearby(c, ADMIN, at, radius_m, limit)
            assert_exact_nearest(found, finals, at, radius_m, limit)


def test_a_thousand_drivers_pinging_concurrently_each_end_where_they_last_said(api: str) -> None:
    finals = run_fleets(api)
    assert len(finals) == PROCESSES * DRIVERS_EACH
    positions = asyncio.run(read_positions(api, list(finals)))
    wrong = {i: (positions[i], p) for i, p in finals.items() if positions[i] != (p.lat, p.lng)}
    assert not wrong, (
        f"{len(wrong)} drivers are not at their last position, e.g. {list(wrong.items())[:3]}"
    )
    asyncio.run(search_around(api, finals, secrets.randbits(32)))
