"""The app shuts down: its background tasks stop when the lifespan ends, however busy they are."""

from __future__ import annotations

import asyncio
import random

import pytest
import redis.asyncio as aioredis

from ridehail.app import create_app
from tests.conftest import make_settings

BUSY = {"sweep_interval_s": 0.001, "worker_interval_s": 0.001}


async def shut_down_within(seconds: float, redis_client: aioredis.Redis) -> bool:
    """Start the app, let its workers run a moment, leave the lifespan: did it finish?"""
    app = create_app(make_settings(**BUSY), redis=redis_client)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    await asyncio.sleep(random.uniform(0.005, 0.03))
    leaving = asyncio.ensure_future(lifespan.__aexit__(None, None, None))
    finished = bool((await asyncio.wait({leaving}, timeout=seconds))[0])
    while not leaving.done():  # clean up after a lost cancel, so nothing leaks into other tests
        for task in asyncio.all_tasks():
            if task.cancelling() and not task.done() and task is not leaving:
                task.cancel()
        await asyncio.sleep(0.01)
    leaving.result()
    return finished


@pytest.mark.timeout(60)
async def test_leaving_the_lifespan_stops_busy_background_tasks(
    redis_client: aioredis.Redis,
) -> None:
    for _ in range(20):
        # Shutdown takes milliseconds; three seconds only tells "finished" from "hung".
        assert await shut_down_within(3.0, redis_client), "shutdown hung"
