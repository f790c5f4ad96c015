"""The background task that drops drivers who stopped pinging from the index."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from dispatch.service import SupplyService
from ridehail.errors import StoreUnavailable

log = logging.getLogger(__name__)


async def sweep_forever(
    supply: SupplyService, interval_s: float, on_swept: Callable[[int], None]
) -> None:
    """Sweep every `interval_s` (with jitter, so many processes spread out). Never raises."""
    while True:
        await asyncio.sleep(interval_s * random.uniform(0.8, 1.2))
        try:
            total = 0
            while (removed := await supply.sweep()) > 0:
                total += removed
            if total:
                on_swept(total)
                log.info("swept stale drivers", extra={"removed": total})
        except StoreUnavailable as exc:
            log.warning("sweep skipped: %s", exc)
        except Exception:
            log.exception("sweep failed")
