"""`ridehail bench {search,ingest,trips,limiter,locust,cluster,all}`: figures beside baselines.

The figures and how to read them: docs/benchmarks.md.

Each command starts a private redis-server on a free port (or uses `--redis-url`, which must
name an empty database), writes JSON and plots to `--out`, and prints progress to stderr.
`cluster` also starts a local Redis Cluster (3 masters, 3 replicas; `ridehail.devcluster`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import redis

from ridehail.bench import plots, report
from ridehail.bench.cluster import ClusterConfig, run_cluster
from ridehail.bench.cpu import QuietWait
from ridehail.bench.ingest import IngestConfig, run_ingest
from ridehail.bench.limiter import LimiterConfig, run_limiter
from ridehail.bench.loadtest import LocustConfig, run_locust
from ridehail.bench.measure import progress, run_async
from ridehail.bench.procs import BenchSetupError, private_redis
from ridehail.bench.search import SearchConfig, run_search
from ridehail.bench.trips import TripsConfig, run_trips
from ridehail.devcluster import ClusterNotReady, missing_binaries, running_cluster


def _sizes(value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v.replace("_", "")) for v in value.split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of driver counts") from None
    if not sizes or min(sizes) < 1 or max(sizes) > 5_000_000:
        raise argparse.ArgumentTypeError("driver counts are 1-5,000,000")
    return sizes


def _count(value: str) -> int:
    try:
        n = int(value.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError("a number of drivers") from None
    if not 1 <= n <= 5_000_000:
        raise argparse.ArgumentTypeError("driver counts are 1-5,000,000")
    return n


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ridehail bench", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", type=Path, default=Path("bench-results"))
    common.add_argument("--redis-url", help="use this (empty) Redis instead of a private one")
    common.add_argument("--flush", action="store_true", help="empty --redis-url's db first")
    common.add_argument("--no-docs", action="store_true", help="do not copy plots to docs/img")
    common.add_argument("--seconds", type=float, help="measured seconds per phase")
    common.add_argument("--rounds", type=int, default=2, help="windows per phase, taken in turn")
    common.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="seconds in all to wait for a busy machine to idle before phases",
    )
    search = argparse.ArgumentParser(add_help=False)
    search.add_argument("--drivers", type=_sizes, default=SearchConfig().sizes)
    search.add_argument("--k", type=int, default=10)
    search.add_argument("--concurrency", type=int, default=8)
    search.add_argument("--brute-max", type=int, default=SearchConfig().brute_max)
    search.add_argument("--no-postgis", action="store_true", help="skip the PostGIS KNN baseline")
    ingest = argparse.ArgumentParser(add_help=False)
    ingest.add_argument("--workers", type=int, default=1, help="API server processes")
    ingest.add_argument("--connections", type=int, default=IngestConfig().connections)
    ingest.add_argument("--batch-rows", type=int, default=IngestConfig().batch_rows)
    ingest.add_argument("--no-profile", action="store_true", help="skip the py-spy phases")
    ingest.add_argument("--no-variants", action="store_true", help="skip the asyncio+h11 server")
    trips = argparse.ArgumentParser(add_help=False)
    trips.add_argument("--trip-drivers", type=int, default=TripsConfig().drivers)
    trips.add_argument("--rate", type=float, default=TripsConfig().rate, help="trip requests/s")
    trips.add_argument(
        "--api-workers", type=int, default=TripsConfig().workers, help="trips: serve --workers"
    )
    trips.add_argument("--skip-trips", action="store_true", help="all: no trips bench")
    trips.add_argument("--skip-limiter", action="store_true", help="all: no limiter bench")
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("search", parents=[common, search], help="nearest-driver search")
    sub.add_parser("ingest", parents=[common, ingest], help="location updates through the API")
    trip = sub.add_parser("trips", parents=[common, trips], help="trip request to offer")
    trip.add_argument("--drivers", dest="trip_drivers", type=int, default=TripsConfig().drivers)
    trip.add_argument("--no-profile", action="store_true", help="skip the py-spy window")
    sub.add_parser("limiter", parents=[common], help="rate-limit decisions per second")
    loc = sub.add_parser("locust", parents=[common], help="mixed workload under locust")
    loc.add_argument("--users", type=int, default=LocustConfig().users)
    loc.add_argument("--spawn-rate", type=float, default=LocustConfig().spawn_rate)
    loc.add_argument("--workers", type=int, default=LocustConfig().workers)
    clus = sub.add_parser("cluster", parents=[common],
                          help="supply on a local Redis Cluster beside a single Redis")  # fmt: skip
    clus.add_argument("--drivers", type=_count, default=ClusterConfig().drivers)
    clus.add_argument("--no-profile", action="store_true", help="skip the py-spy windows")
    sub.add_parser("all", parents=[common, search, ingest, trips],
                   help="search, ingest, trips, limiter")  # fmt: skip
    return parser


@contextlib.contextmanager
def _redis(args: argparse.Namespace) -> Iterator[str]:
    if args.redis_url is None:
        with private_redis() as server:
            progress(f"private redis-server on port {server.port}")
            yield server.base_url
        return
    client = redis.Redis.from_url(args.redis_url)
    try:
        if args.flush:
            client.flushdb()
        elif client.dbsize():
            raise BenchSetupError(f"{args.redis_url} is not empty: pass --flush to empty it")
    finally:
        client.close()
    yield args.redis_url


def _search(args: argparse.Namespace, url: str) -> None:
    cfg = SearchConfig(
        sizes=args.drivers,
        k=args.k,
        concurrency=args.concurrency,
        brute_max=args.brute_max,
        rounds=args.rounds,
        postgis=not args.no_postgis,
    )
    if args.seconds:
        cfg = dataclasses.replace(cfg, seconds=args.seconds)
    data = run_async(run_search(url, cfg))
    report.write_json(args.out, "search", data)
    plots.plot_search(data, args.out, docs=not args.no_docs)


def _ingest(args: argparse.Namespace, url: str) -> None:
    cfg = IngestConfig(
        workers=args.workers,
        connections=args.connections,
        batch_rows=args.batch_rows,
        profile=not args.no_profile,
        variants=not args.no_variants,
        rounds=args.rounds,
        out=args.out,
    )
    if args.seconds:
        cfg = dataclasses.replace(cfg, seconds=args.seconds)
    data = run_ingest(url, cfg)
    report.write_json(args.out, "ingest", data)
    plots.plot_ingest(data, args.out, docs=not args.no_docs)


def _trips(args: argparse.Namespace, url: str) -> None:
    cfg = TripsConfig(
        drivers=args.trip_drivers,
        rate=args.rate,
        rounds=args.rounds,
        workers=args.api_workers,
        profile=not args.no_profile,
        out=args.out,
    )
    if args.seconds:
        cfg = dataclasses.replace(cfg, seconds=args.seconds)
    data = run_trips(url, cfg)
    report.write_json(args.out, "trips", data)
    plots.plot_trips(data, args.out, docs=not args.no_docs)


def _limiter(args: argparse.Namespace, url: str) -> None:
    cfg = LimiterConfig(rounds=args.rounds)
    if args.seconds:
        cfg = dataclasses.replace(cfg, seconds=args.seconds)
    data = run_async(run_limiter(url, cfg))
    report.write_json(args.out, "limiter", data)
    plots.plot_limiter(data, args.out, docs=not args.no_docs)


def _locust(args: argparse.Namespace, url: str) -> None:
    cfg = LocustConfig(users=args.users, spawn_rate=args.spawn_rate, workers=args.workers)
    if args.seconds:
        cfg = dataclasses.replace(cfg, seconds=args.seconds)
    report.write_json(args.out, "locust", run_locust(url, cfg, args.out))


def _cluster(args: argparse.Namespace, url: str) -> None:
    cfg = ClusterConfig(
        drivers=args.drivers, rounds=args.rounds, profile=not args.no_profile, out=args.out
    )
    if args.seconds:
        cfg = dataclasses.replace(cfg, seconds=args.seconds)
    if missing := missing_binaries():
        raise BenchSetupError(
            f"{' and '.join(missing)} not installed (apt-get install redis-server)"
        )
    progress("starting a local Redis Cluster (3 masters, 3 replicas)")
    with tempfile.TemporaryDirectory(prefix="ridehail-bench-cluster-") as workdir:
        try:
            with running_cluster(Path(workdir)) as cluster:
                progress(f"Redis Cluster up: REDIS_CLUSTER_NODES={cluster.nodes_env}")
                data = run_async(run_cluster(url, cluster, cfg))
        except ClusterNotReady as exc:
            raise BenchSetupError(str(exc)) from exc
    report.write_json(args.out, "cluster", data)
    plots.plot_cluster(data, args.out, docs=not args.no_docs)


def run(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    QuietWait.budget_s = args.quiet_wait
    try:
        if args.what in ("search", "all"):
            with _redis(args) as url:
                _search(args, url)
        if args.what in ("ingest", "all"):
            with _redis(args) as url:
                _ingest(args, url)
        if args.what == "trips" or (args.what == "all" and not args.skip_trips):
            with _redis(args) as url:
                _trips(args, url)
        if args.what == "limiter" or (args.what == "all" and not args.skip_limiter):
            with _redis(args) as url:
                _limiter(args, url)
        if args.what == "locust":
            with _redis(args) as url:
                _locust(args, url)
        if args.what == "cluster":
            with _redis(args) as url:
                _cluster(args, url)
    except BenchSetupError as exc:
        progress(f"cannot run: {exc}")
        return 1
    report.write_summary(args.out)
    progress("done")
    return 0
