"""Test helpers that start real servers: a throwaway redis-server, a `ridehail serve` process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
from fastapi import FastAPI

ADMIN_TOKEN = "test-admin-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


@contextlib.contextmanager
def running_redis(*extra_args: str, port: int | None = None) -> Iterator[str]:
    """A private redis-server (on `port`, else a free one); yields its URL, kills it afterwards.

    A free port can be taken by another process before redis-server binds it: then (unless the
    port was asked for) it tries another, and it never hands out a server that is not its own.
    """
    binary = redis_server_binary()
    assert binary, "redis-server is not installed"
    for attempt in range(3):
        chosen = port or free_port()
        # A cluster node also listens on port + 10000 (its bus), which must be a valid port.
        while port is None and "--cluster-enabled" in extra_args and chosen + 10000 > 65535:
            chosen = free_port()
        with tempfile.TemporaryDirectory(prefix="ridehail-redis-") as workdir:
            args = [binary, "--port", str(chosen), "--bind", "127.0.0.1", "--save", ""]
            args += ["--appendonly", "no", "--dir", workdir, *extra_args]
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                try:
                    _wait_for_port(chosen, proc)
                    _assert_serves_from(chosen, proc)
                except (RuntimeError, AssertionError):
                    if port is not None or attempt == 2:
                        raise
                    continue
                yield f"redis://127.0.0.1:{chosen}/0"
                return
            finally:
                proc.kill()
                proc.wait(timeout=10)


def _assert_serves_from(port: int, proc: subprocess.Popen[bytes]) -> None:
    import redis

    try:
        with redis.Redis(port=port, socket_timeout=5) as client:
            served_by = int(client.info("server")["process_id"])
    except redis.RedisError as exc:
        raise AssertionError(f"port {port} does not answer as our redis-server: {exc}") from exc
    assert served_by == proc.pid, f"port {port} is served by another process ({served_by})"


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout_s}s")


@contextlib.contextmanager
def running_ridehail(redis_url: str | None, *, workers: int = 1, **env: str) -> Iterator[str]:
    """`ridehail serve` as a real process on a free port; yields its base URL."""
    with ridehail_process(redis_url, workers=workers, **env) as (base, _):
        yield base


@contextlib.contextmanager
def ridehail_process(
    redis_url: str | None, *, workers: int = 1, **env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`ridehail serve` on a free port: its base URL and its process (for a test to kill)."""
    port = free_port()
    environment = {**os.environ, "RIDEHAIL_ADMIN_TOKEN": ADMIN_TOKEN, **env}
    environment.pop("REDIS_URL", None)
    if redis_url:
        environment["REDIS_URL"] = redis_url
    ridehail = Path(sys.executable).with_name("ridehail")
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [str(ridehail), "serve", "--port", str(port), "--workers", str(workers)],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"ridehail serve exited:\n{log.read().decode()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=0.5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("ridehail serve did not become healthy")
            time.sleep(0.1)
        yield base, proc
    finally:
        if proc.poll() is None:  # the test may have killed it
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


@contextlib.asynccontextmanager
async def app_running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run the app's lifespan (start-up, background tasks, shutdown) around the block.

    On Python 3.11 a cancel that lands as a Redis command completes can be lost (asyncio.wait_for
    inside redis-py and fakeredis returns the result instead). The app's shutdown copes with
    that now; should it regress, tests/integration/test_shutdown.py fails, and here tasks whose
    cancel was lost are cancelled again so that every other test does not hang with it.
    """
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    try:
        yield app
    finally:
        leaving = asyncio.ensure_future(lifespan.__aexit__(None, None, None))
        while not (await asyncio.wait({leaving}, timeout=0.2))[0]:
            for task in asyncio.all_tasks():
                if task.cancelling() and not task.done() and task is not leaving:
                    task.cancel()
        leaving.result()
