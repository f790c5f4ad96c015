"""A token bucket on Redis, correct across any number of processes.

    bucket = TokenBucket(redis)
    limit = Limit("trips", capacity=5, refill=1, period_s=10)
    decision = await bucket.take("rh:{rl:rider:42}", limit)
    if not decision.allowed: ...  # decision.retry_after_ms

One Lua script per decision (one round trip), using the Redis server's clock and integer math.
Redis errors propagate as redis-py raises them; the caller decides what an outage means.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from ratelimit.model import Decision, Limit


def _script() -> str:
    folder = files("ratelimit").joinpath("lua")
    return "\n".join(folder.joinpath(f"{name}.lua").read_text() for name in ("bucket", "take"))


class TokenBucket:
    def __init__(self, client: Any) -> None:
        self._take = client.register_script(_script())

    async def take(self, key: str, limit: Limit, cost: int = 1) -> Decision:
        args = [limit.capacity, limit.refill, limit.period_ms, cost]
        allowed, remaining, retry_ms, reset_ms = await self._take(keys=[key], args=args)
        return Decision(bool(int(allowed)), int(remaining), int(retry_ms), int(reset_ms))
