"""The `ridehail` command."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from ridehail.settings import Settings, describe_error


def load_settings() -> Settings:
    """Settings from the environment, or exit with one line naming what is wrong."""
    try:
        return Settings()
    except ValidationError as exc:
        print(f"ridehail: {describe_error(exc)}", file=sys.stderr)
        raise SystemExit(2) from None


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = load_settings()
    if args.workers > 1 and settings.redis_url is None and settings.redis_cluster_nodes is None:
        print(
            "ridehail: --workers > 1 needs REDIS_URL or REDIS_CLUSTER_NODES: the embedded Redis "
            "lives inside one process",
            file=sys.stderr,
        )
        return 2
    uvicorn.run(
        "ridehail.asgi:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        # Client addresses key the registration limit: believe X-Forwarded-For only from the
        # proxies named (uvicorn's default trusts 127.0.0.1, which anyone local can spoof).
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
    )
    return 0


def _pricing(args: argparse.Namespace) -> int:
    import uvicorn

    from ridehail.sim.pricing import Faults, create_pricing_app

    faults = Faults(latency_ms=args.latency_ms, fail_rate=args.fail_rate)
    app = create_pricing_app(faults, seed=args.seed)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from ridehail.sim.agents import Tuning
    from ridehail.sim.runner import RunConfig, simulate

    config = RunConfig(
        api=args.api.rstrip("/"),
        drivers=args.drivers,
        riders=args.riders,
        duration_s=args.duration,
        seed=args.seed,
        scenario=args.scenario,
        output=args.output,
        pricing_url=args.pricing_url,
        city=args.city,
        tuning=Tuning(time_scale=args.time_scale),
    )
    summary = simulate(config)
    print(json.dumps(summary["trips"] | {"invariant_violations": summary["invariant_violations"]}))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ridehail.sim.demo import run_demo

    return run_demo(
        port=args.port,
        pricing_port=args.pricing_port,
        duration_s=args.duration,
        drivers=args.drivers,
        riders=args.riders,
        scenario=args.scenario,
        seed=args.seed,
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _dev_cluster(args: argparse.Namespace) -> int:
    from ridehail.devcluster import ClusterNotReady, missing_binaries, running_cluster

    if missing := missing_binaries():
        names = " and ".join(missing)
        print(
            f"ridehail: dev-cluster needs {names} (apt-get install redis-server)", file=sys.stderr
        )
        return 2
    # SIGTERM stops the nodes as Ctrl-C does, instead of leaving them running.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with contextlib.ExitStack() as stack:
            directory = args.dir
            if directory is None:
                scratch = tempfile.TemporaryDirectory(prefix="ridehail-cluster-")
                directory = Path(stack.enter_context(scratch))
            cluster = stack.enter_context(running_cluster(directory))
            print(f"REDIS_CLUSTER_NODES={cluster.nodes_env}", flush=True)
            print(
                f"ridehail: 3 masters + 3 replicas up (files in {cluster.directory}); "
                f"try: REDIS_CLUSTER_NODES={cluster.nodes_env} ridehail serve  (Ctrl-C stops it)",
                file=sys.stderr,
                flush=True,
            )
            while True:
                time.sleep(3600)
    except ClusterNotReady as exc:
        print(f"ridehail: the cluster did not come up: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ridehail: cluster stopped", file=sys.stderr)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from ridehail.bench.cli import run

    return run(args.bench_args)


def _port(value: str) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError("a port is 1-65535")
    return port


def _workers(value: str) -> int:
    n = int(value)
    if not 1 <= n <= 64:
        raise argparse.ArgumentTypeError("workers is 1-64")
    return n


def _fraction(low: float, high: float) -> Callable[[str], float]:
    def parse(value: str) -> float:
        number = float(value)
        if not low <= number <= high:  # also refuses NaN
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}")
        return number

    return parse


def _count(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        number = int(value)
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return number

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ridehail", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API (FastAPI on uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000)
    serve.add_argument("--workers", type=_workers, default=1)
    serve.set_defaults(func=_serve)

    pricing = sub.add_parser("pricing", help="the simulated external pricing service")
    pricing.add_argument("--host", default="127.0.0.1")
    pricing.add_argument("--port", type=_port, default=8001)
    pricing.add_argument("--latency-ms", type=_fraction(0, 60_000), default=0.0)
    pricing.add_argument("--fail-rate", type=_fraction(0, 1), default=0.0)
    pricing.add_argument("--seed", type=int, default=None)
    pricing.set_defaults(func=_pricing)

    from ridehail.sim.scenarios import SCENARIOS

    sim = sub.add_parser("simulate", help="simulated drivers and riders over the HTTP API")
    sim.add_argument("--drivers", type=_count(1, 20_000), default=50)
    sim.add_argument("--riders", type=_count(1, 20_000), default=20)
    sim.add_argument("--duration", type=_fraction(1, 7 * 24 * 3600), default=60.0)
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--scenario", choices=sorted(SCENARIOS), default="steady")
    sim.add_argument("--api", default="http://127.0.0.1:8000")
    sim.add_argument("--output", type=Path, default=None, help="write the JSON summary here")
    sim.add_argument("--pricing-url", default=os.environ.get("PRICING_URL"))
    sim.add_argument("--city", default=os.environ.get("RIDEHAIL_CITY", "helsinki"))
    sim.add_argument("--time-scale", type=_fraction(0.1, 100), default=1.0,
                     help="move vehicles this many times faster than real time")  # fmt: skip
    sim.set_defaults(func=_simulate)

    demo = sub.add_parser("demo", help="pricing, API and a simulation in one command")
    demo.add_argument("--duration", type=_fraction(1, 7 * 24 * 3600), default=None,
                      help="stop after this many seconds (default: until Ctrl-C)")  # fmt: skip
    demo.add_argument("--port", type=_port, default=8000)
    demo.add_argument("--pricing-port", type=_port, default=8001)
    demo.add_argument("--drivers", type=_count(1, 5_000), default=150)
    demo.add_argument("--riders", type=_count(1, 5_000), default=60)
    demo.add_argument("--scenario", choices=sorted(SCENARIOS), default="steady")
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(func=_demo)

    cluster = sub.add_parser("dev-cluster", help="a local Redis Cluster (3+3) until Ctrl-C")
    cluster.add_argument("--dir", type=Path, default=None,
                         help="node files and logs (default: a temporary directory)")  # fmt: skip
    cluster.set_defaults(func=_dev_cluster)

    bench = sub.add_parser("bench", help="the benchmark harness (see docs/benchmarks.md)")
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    bench.set_defaults(func=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
