"""The `ridehail` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

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
    if args.workers > 1 and settings.redis_url is None:
        print(
            "ridehail: --workers > 1 needs REDIS_URL: the embedded Redis lives inside one process",
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
    )
    return 0


def _pricing(args: argparse.Namespace) -> int:
    import uvicorn

    from ridehail.sim.pricing import Faults, create_pricing_app

    faults = Faults(latency_ms=args.latency_ms, fail_rate=args.fail_rate)
    app = create_pricing_app(faults, seed=args.seed)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
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

    bench = sub.add_parser("bench", help="the benchmark harness (see docs/benchmarks.md)")
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    bench.set_defaults(func=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
