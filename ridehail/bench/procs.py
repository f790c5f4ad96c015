"""The processes a bench run starts: a private redis-server and HTTP servers, on free ports.

Everything listens on 127.0.0.1 only and is killed when its context ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

HOST = "127.0.0.1"


class BenchSetupError(RuntimeError):
    """A process the bench needs did not start."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    base_url: str
    port: int
    pid: int


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchSetupError(f"process on port {port} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.2):
            return
        time.sleep(0.05)
    raise BenchSetupError(f"nothing listening on port {port} after {timeout_s:g}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def private_redis() -> Iterator[Server]:
    """A throwaway redis-server (no persistence) on a free port."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise BenchSetupError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ridehail-bench-redis-") as workdir:
        args = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
        args += ["--dir", workdir]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        try:
            _wait_for_port(port, proc)
            yield Server("redis", f"redis://{HOST}:{port}/0", port, proc.pid)
        finally:
            _stop(proc)


def ridehail_command(port: int, workers: int) -> list[str]:
    """`ridehail serve` from the running interpreter's environment."""
    ridehail = Path(sys.executable).with_name("ridehail")
    return [str(ridehail), "serve", "--port", str(port), "--workers", str(workers)]


def uvicorn_command(target: str, port: int, workers: int, *extra: str) -> list[str]:
    """An ASGI factory under uvicorn, as `ridehail serve` runs ours (loop and http on auto)."""
    return [
        sys.executable, "-m", "uvicorn", target, "--factory", "--host", HOST,
        "--port", str(port), "--workers", str(workers), "--log-level", "warning",
        "--no-access-log", *extra,
    ]  # fmt: skip


@contextlib.contextmanager
def http_server(
    name: str, argv: Sequence[str], port: int, env: Mapping[str, str]
) -> Iterator[Server]:
    """Start an HTTP server process and wait until `GET /healthz` answers 200."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(  # noqa: S603 - our own commands, no shell
        list(argv), env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise BenchSetupError(f"{name} exited:\n{log.read().decode()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=0.5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise BenchSetupError(f"{name} did not become healthy")
            time.sleep(0.1)
        yield Server(name, base, port, proc.pid)
    finally:
        _stop(proc)
        log.close()
