"""`GET /v1/events`: trip events and driver positions as Server-Sent Events (admin)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import StreamingResponse

from dispatch.schemas import offer_public
from ridehail.auth import Role
from ridehail.deps import ServicesDep
from ridehail.errors import StoreUnavailable
from ridehail.metrics import SSE_CLIENTS
from ridehail.redis_conn import read_streams, text, translated_errors

router = APIRouter(tags=["events"])

HEARTBEAT_S = 15.0
BLOCK_MS = 250  # below the Redis socket timeout, so a quiet stream is not taken for an outage


def _frame(kind: str, entry_id: str, data: Mapping[str, Any]) -> str:
    return f"event: {kind}\nid: {entry_id}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


BACKLOG_POSITIONS = 20_000
BACKLOG_TRIP_EVENTS = 200  # per trip shard


async def _backlog(redis: Any, positions: list[str], cursors: dict[str, str]) -> list[str]:
    """Frames of the recent past, and each stream's cursor moved to where they end."""
    frames: list[str] = []
    latest: dict[str, tuple[str, dict[str, str]]] = {}
    per_stream = BACKLOG_POSITIONS // len(positions)
    for stream in positions:
        recent = await redis.xrevrange(stream, count=per_stream)
        for entry_id, fields in reversed(recent):
            data = {text(k): text(v) for k, v in fields.items()}
            latest[data.get("d", "")] = (text(entry_id), data)
        if recent:
            cursors[stream] = text(recent[0][0])
    frames += [_frame("position", eid, data) for eid, data in latest.values()]
    trip_events: list[tuple[str, str]] = []
    for stream in [s for s in cursors if s not in positions]:
        entries = await redis.xrevrange(stream, count=BACKLOG_TRIP_EVENTS)
        if entries:
            cursors[stream] = text(entries[0][0])
        for entry_id, fields in entries:
            data = {text(k): text(v) for k, v in fields.items()}
            trip_events.append((data.get("ts", ""), _frame("trip", text(entry_id), data)))
    frames += [frame for _, frame in sorted(trip_events)]
    return frames


async def _pin_cursors(redis: Any, cursors: dict[str, str]) -> None:
    """Replace each `$` with the stream's current last id ("0-0" when empty).

    XREAD with `$` means "after whatever is last when this call arrives": passed again on every
    call, it would skip what was appended between two calls.
    """
    for stream, cursor in cursors.items():
        if cursor == "$":
            last = await redis.xrevrange(stream, count=1)
            cursors[stream] = text(last[0][0]) if last else "0-0"


@router.get("/v1/events", response_class=StreamingResponse)
async def events(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    access_token: Annotated[str | None, Query(max_length=256)] = None,
    backlog: Annotated[bool, Query()] = True,
) -> StreamingResponse:
    """Trip events (`event: trip`) and driver positions (`event: position`) as they happen.

    A new stream starts with a backlog (`backlog=1`, the default): each driver's latest recent
    position and the latest trip events, so a map fills at once; live events follow with no gap.
    Admin only. Browsers' EventSource cannot send headers, so `?access_token=` is accepted here
    (and nowhere else); the access log records route templates, never query strings.
    """
    if authorization is None and access_token is not None:
        authorization = f"Bearer {access_token}"
    who = await services.auth.authenticate(authorization)
    who.require_admin()
    keys = services.keys
    positions = keys.all_positions()
    cursors: dict[str, str] = {stream: "$" for stream in keys.all_trip_events()}
    cursors.update({stream: "$" for stream in positions})
    redis = services.redis
    first: list[str] = []
    async with translated_errors():
        if backlog:
            first = await _backlog(redis, positions, cursors)
        await _pin_cursors(redis, cursors)

    async def frames(stream: str, entry_id: str, data: dict[str, str]) -> list[str]:
        return [_frame("position" if stream in positions else "trip", entry_id, data)]

    return _event_stream(request, redis, cursors, first, frames)


@router.get("/v1/drivers/{driver_id}/events", response_class=StreamingResponse)
async def driver_events(
    driver_id: Annotated[str, Path(max_length=64)],
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    access_token: Annotated[str | None, Query(max_length=256)] = None,
) -> StreamingResponse:
    """One driver's offers (`event: offer`) and its trips' changes (`event: trip`), at once.

    The stream starts with the offer the driver holds, if any. The driver itself or the admin;
    `?access_token=` as for `/v1/events`.
    """
    if authorization is None and access_token is not None:
        authorization = f"Bearer {access_token}"
    who = await services.auth.authenticate(authorization)
    who.require_self_or_admin(Role.DRIVER, driver_id)
    redis = services.redis
    cursors: dict[str, str] = {stream: "$" for stream in services.keys.all_trip_events()}
    async with translated_errors():
        await _pin_cursors(redis, cursors)

    async def offer_frames(trip_id: str | None) -> list[str]:
        driver = (await services.supply.get_driver(driver_id)).driver
        offer = offer_public(driver.offer_json, driver.offer_expires_ms)
        if offer is None or (trip_id is not None and offer.get("trip_id") != trip_id):
            return []
        return [_frame("offer", str(driver.offer_expires_ms), offer)]

    first = await offer_frames(None)  # 404 for an unknown driver

    async def frames(stream: str, entry_id: str, data: dict[str, str]) -> list[str]:
        if data.get("driver") != driver_id:
            return []
        out = [_frame("trip", entry_id, data)]
        if data.get("action") == "offer":
            out += await offer_frames(data.get("trip"))
        return out

    return _event_stream(request, redis, cursors, first, frames)


Frames = Callable[[str, str, dict[str, str]], Awaitable[list[str]]]


def _event_stream(
    request: Request, redis: Any, cursors: dict[str, str], first: list[str], frames: Frames
) -> StreamingResponse:
    """Follow `cursors` with XREAD, turning each entry into SSE frames, until the client leaves."""

    async def stream() -> AsyncIterator[str]:
        SSE_CLIENTS.inc()
        last_beat = time.monotonic()
        try:
            yield ": connected\n\n"
            for frame in first:
                yield frame
            while not await request.is_disconnected():
                try:
                    async with translated_errors():
                        reply = await read_streams(redis, cursors, count=500, block_ms=BLOCK_MS)
                        out: list[str] = []
                        for name, entries in reply or []:
                            stream_name = text(name)
                            for entry_id, fields in entries:
                                cursors[stream_name] = text(entry_id)
                                data = {text(k): text(v) for k, v in fields.items()}
                                out += await frames(stream_name, text(entry_id), data)
                except StoreUnavailable:
                    yield 'event: error\ndata: {"detail":"Redis unavailable"}\n\n'
                    await asyncio.sleep(1)
                    continue
                for frame in out:
                    yield frame
                if time.monotonic() - last_beat > HEARTBEAT_S:
                    last_beat = time.monotonic()
                    yield ": ping\n\n"
        finally:
            SSE_CLIENTS.dec()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
