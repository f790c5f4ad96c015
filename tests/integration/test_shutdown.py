"""The app shuts down: its background tasks stop when the lifespan ends, however busy they are.

Python 3.11's asyncio.wait_for (inside redis-py and fakeredis) can swallow a cancel that lands
as a Redis command completes, so cancelling a busy task once is not enough to stop it.
"""

from __future__ import annotations

import asyncio
import random

import pytest
import redis.asyncio as aioredis

from ridehail.app import create_app
from tests.conftest import make_settings

BUSY = {"sweep_interval_s": 0.001, "worker_interval_s": 0.001}


def others() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


async def shut_down(redis_client: aioredis.Redis) -> tuple[bool, int]:
    """Start the app, let its workers run a moment, leave the lifespan.

    Returns whether leaving finished, and how many of the app's tasks were still running then.
    """
    already_running = others()
    app = create_app(make_settings(**BUSY), redis=redis_client)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    await asyncio.sleep(random.uniform(0.005, 0.03))
    leaving = asyncio.ensure_future(lifespan.__aexit__(None, None, None))
    # Shutdown takes milliseconds; ten seconds only tells "finished" from "hung".
    finished = bool((await asyncio.wait({leaving}, timeout=10.0))[0])
    left_running = others() - already_running - {leaving}
    outlived = len(left_running) if finished else 0
    while not leaving.done() or left_running:  # clean up, so nothing leaks into other tests
        for task in left_running:
            task.cancel()
        await asyncio.sleep(0.01)
        left_running = {t for t in left_running if not t.done()}
    leaving.result()
    return finished, outlived


@pytest.mark.timeout(120)
async def test_leaving_the_lifespan_stops_busy_background_tasks(
    redis_client: aioredis.Redis,
) -> None:
    for _ in range(6):
        finished, still_running = await shut_down(redis_client)
        assert finished, "shutdown hung"
        assert still_running == 0, "background tasks outlived the lifespan"
