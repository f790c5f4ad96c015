"""`ridehail demo`: the pricing service, the API and a simulation in one command."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from ridehail.sim.agents import Tuning
from ridehail.sim.runner import RunConfig, Simulation


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(
            socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
        )  # as servers bind: TIME_WAIT is fine
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ridehail() -> str:
    return str(Path(sys.executable).with_name("ridehail"))


@contextlib.contextmanager
def _process(argv: list[str], env: dict[str, str], health: str, name: str) -> Iterator[None]:
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)  # noqa: S603 - our own CLI
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"ridehail demo: {name} exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(health, timeout=0.5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"ridehail demo: {name} did not start")
            time.sleep(0.2)
        yield
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_demo(
    *, port: int, pricing_port: int, duration_s: float | None, drivers: int, riders: int,
    scenario: str, seed: int,
) -> int:  # fmt: skip
    for p in (port, pricing_port):
        if not port_free(p):
            print(f"ridehail demo: port {p} is taken; choose others with --port / --pricing-port",
                  file=sys.stderr)  # fmt: skip
            return 2
    # SIGTERM stops the demo like Ctrl-C does, children included.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    admin = os.environ.get("RIDEHAIL_ADMIN_TOKEN") or secrets.token_urlsafe(24)
    api = f"http://127.0.0.1:{port}"
    pricing = f"http://127.0.0.1:{pricing_port}"
    env = {**os.environ, "RIDEHAIL_ADMIN_TOKEN": admin, "PRICING_URL": pricing}
    env.setdefault("RIDEHAIL_ACCESS_LOG", "false")
    env.setdefault("RIDEHAIL_LOG_LEVEL", "warning")
    # The simulation sends every ping and request from this one address.
    env.setdefault("RIDEHAIL_LIMIT_REGISTRATIONS", "100000/60")
    backend = "Redis at REDIS_URL" if os.environ.get("REDIS_URL") else "embedded Redis"
    with (
        _process([_ridehail(), "pricing", "--port", str(pricing_port)], env, f"{pricing}/healthz",
                 "pricing"),
        _process([_ridehail(), "serve", "--port", str(port)], env, f"{api}/healthz", "the API"),
    ):  # fmt: skip
        print(f"\n  ridehail demo ({backend}, scenario {scenario})\n"
              f"  dashboard:  {api}/#token={admin}\n"
              f"  API docs:   {api}/docs\n"
              f"  Ctrl-C stops everything.\n", flush=True)  # fmt: skip
        config = RunConfig(
            api=api,
            drivers=drivers,
            riders=riders,
            duration_s=duration_s or 365 * 24 * 3600.0,
            seed=seed,
            scenario=scenario,
            pricing_url=pricing,
            tuning=Tuning(time_scale=3.0),
        )
        try:
            summary = asyncio.run(Simulation(config).run())
        except KeyboardInterrupt:
            print("\nridehail demo: stopping", file=sys.stderr)
            return 0
    t = summary["trips"]
    print(f"ridehail demo: done: {t['requested']} trips requested, {t['completed']} completed, "
          f"{summary['invariant_violations']} invariant violations")  # fmt: skip
    return 0
