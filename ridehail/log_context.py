"""What a request concerns (its id, the rider, driver and trip), for every log line it writes.

The edge middleware opens one `LogContext` per request; the routes and services `bind` ids as
they learn them (a few attribute stores, nothing formatted), and the JSON formatter reads them
only when a line is actually written. Outside a request (the background workers) `bind` does
nothing.
"""

from __future__ import annotations

import contextvars

IDS = ("request_id", "rider_id", "driver_id", "trip_id")


class LogContext:
    __slots__ = IDS

    def __init__(self, request_id: str) -> None:
        self.request_id: str | None = request_id
        self.rider_id: str | None = None
        self.driver_id: str | None = None
        self.trip_id: str | None = None

    def fields(self) -> dict[str, str]:
        return {name: value for name in IDS if (value := getattr(self, name)) is not None}


_current: contextvars.ContextVar[LogContext | None] = contextvars.ContextVar(
    "log_context", default=None
)


def begin(request_id: str) -> contextvars.Token[LogContext | None]:
    return _current.set(LogContext(request_id))


def end(token: contextvars.Token[LogContext | None]) -> None:
    _current.reset(token)


def current() -> LogContext | None:
    return _current.get()


def bind(
    *, rider_id: str | None = None, driver_id: str | None = None, trip_id: str | None = None
) -> None:
    """Name the rider, driver or trip this request concerns in its log lines from now on."""
    context = _current.get()
    if context is None:
        return
    if rider_id is not None:
        context.rider_id = rider_id
    if driver_id is not None:
        context.driver_id = driver_id
    if trip_id is not None:
        context.trip_id = trip_id
