"""The repair workers every API process runs: offer expiry and the trip watchdog.

They share nothing in memory: each pass leases its work from Redis queues, so any number of
processes can run them without handling the same item twice at once, and a process that dies
mid-item leaves it to be leased again when its lease runs out.
"""

from __future__ import annotations

import asyncio
import logging
import random

from ridehail.errors import StoreUnavailable
from trips.service import TripService

log = logging.getLogger(__name__)


async def run_pass(service: TripService) -> int:
    """One pass over the offer queue and every trip shard's watchdog; items handled."""
    handled = await service.expire_offers()
    for shard in service.trips.shards():
        handled += await service.watch(shard)
    return handled


async def work_forever(service: TripService, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s * random.uniform(0.8, 1.2))
        try:
            await run_pass(service)
        except StoreUnavailable as exc:
            log.warning("trip workers paused: %s", exc)
        except Exception:
            log.exception("trip worker pass failed")
