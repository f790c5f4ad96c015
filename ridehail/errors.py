"""The root of ridehail's exceptions. Each bounded context has one base below it.

    RidehailError
    ├── StoreUnavailable        Redis unreachable or too slow (HTTP 503 + Retry-After)
    ├── Unauthorized            no token, or one we do not know (401)
    ├── NotFound                a resource that does not exist (404)
    ├── Forbidden               a valid identity acting on what it does not own (403)
    ├── Conflict                the current state does not allow the action (409)
    ├── Unprocessable           well-formed input that cannot be honoured (422)
    ├── RateLimited             a token bucket is empty (429 + Retry-After, RateLimit headers)
    └── dispatch.model.DispatchError, trips.model.TripError, ...   (each a subclass of one above)

Services raise these; only the HTTP layer (`ridehail.problems`) maps them to status codes.
"""

from __future__ import annotations

from ratelimit.model import Decision, Limit


class RidehailError(Exception):
    """Base of every error ridehail raises on purpose."""

    title = "Error"


class StoreUnavailable(RidehailError):
    title = "Storage unavailable"


class Unauthorized(RidehailError):
    title = "Unauthorized"


class NotFound(RidehailError):
    title = "Not found"


class Forbidden(RidehailError):
    title = "Forbidden"


class Conflict(RidehailError):
    title = "Conflict"


class Unprocessable(RidehailError):
    title = "Unprocessable"


class RateLimited(RidehailError):
    title = "Too many requests"

    def __init__(self, limit: Limit, decision: Decision) -> None:
        super().__init__(f"limit {limit.name!r}: try again in {decision.retry_after_s} s")
        self.headers = decision.headers(limit)
