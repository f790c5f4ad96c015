"""The three supply backends `ridehail bench cluster` compares, their workload and tallies.

- `one_slot`: a single redis-server, the default layout (`Keys(prefix)`);
- `cells`: the same redis-server, supply sharded by H3 cell (the cluster's layout);
- `cluster`: a local Redis Cluster (3 masters, 3 replicas), sharded, through the app's client.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from dispatch.model import EARTH_RADIUS_M, LocationUpdate, Position
from dispatch.redis_supply import RedisSupply
from ridehail.bench.city import City, LatLng, driver_id
from ridehail.bench.cpu import mean_cores
from ridehail.bench.measure import Samples, progress
from ridehail.bench.seed import Seeder
from ridehail.devcluster import HOUSEKEEPING_COMMANDS, Cluster
from ridehail.keys import Keys
from ridehail.redis_conn import connect, connect_cluster
from ridehail.settings import Settings

PREFIX = "rhbench"
ONE_SLOT, CELLS, CLUSTER = "one_slot", "cells", "cluster"
SCRIPT_COMMANDS = frozenset({"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"})
# Location updates also feed the live map's position stream, as in the app.
POSITIONS_CAP: int = Settings.model_fields["positions_stream_cap"].default
_M_PER_DEG = EARTH_RADIUS_M * math.pi / 180

Counts = dict[str, tuple[int, int]]  # node -> (script calls, commands) since the node started


async def served(nodes: dict[str, aioredis.Redis]) -> Counts:
    """Script calls and commands (scripts' own included, housekeeping not) of each node."""
    out: Counts = {}
    for name, node in nodes.items():
        stats: dict[str, dict[str, Any]] = await node.info("commandstats")
        scripts = commands = 0
        for key, values in stats.items():
            command = key.removeprefix("cmdstat_").split("|")[0]
            if command not in HOUSEKEEPING_COMMANDS:
                commands += int(values["calls"])
                scripts += int(values["calls"]) if command in SCRIPT_COMMANDS else 0
        out[name] = (scripts, commands)
    return out


@dataclass
class Phase:
    """One phase on one backend, all its windows."""

    label: str
    rows_per_op: int = 1
    samples: Samples = field(default_factory=Samples)
    cpu: list[dict[str, float]] = field(default_factory=list)
    calls: int = 0  # every op, warm-up included, as the command counts are
    rows: int = 0
    applied: int = 0
    scripts: int = 0
    commands: dict[str, int] = field(default_factory=dict)

    def add(self, samples: Samples, cores: dict[str, float], before: Counts, after: Counts) -> None:
        self.samples += samples
        self.cpu.append(cores)
        for node, (scripts, commands) in after.items():
            self.scripts += scripts - before[node][0]
            self.commands[node] = self.commands.get(node, 0) + commands - before[node][1]

    def summary(self) -> dict[str, Any]:
        rate = self.samples.rate()
        cpu = mean_cores(self.cpu)
        server = sum(v for n, v in cpu.items() if n.startswith(("redis", "master")))
        replicas = sum(v for n, v in cpu.items() if n.startswith("replica"))
        per_s, calls = max(rate.per_s, 1e-9), max(self.calls, 1)
        rows = f", {rate.per_s * self.rows_per_op:,.0f} rows/s" if self.rows_per_op > 1 else ""
        progress(f"  {self.label}: {rate.line()}{rows}; cpu {cpu}")
        return rate.to_json() | {
            "rows_per_op": self.rows_per_op,
            "rows_per_s": round(rate.per_s * self.rows_per_op, 1),
            "applied_share": round(self.applied / self.rows, 4) if self.rows else None,
            "client_cpu_us_per_op": round(cpu.get("bench", 0.0) / per_s * 1e6, 1),
            "redis_cpu_us_per_op": round(server / per_s * 1e6, 1),
            "replica_cpu_us_per_op": round(replicas / per_s * 1e6, 1),
            "script_calls_per_op": round(self.scripts / calls, 2),
            "commands_per_op": round(sum(self.commands.values()) / calls, 2),
            "commands_by_node": self.commands,
            "cpu_cores": cpu | {"redis": round(server, 2), "replicas": round(replicas, 2)},
        }


@dataclass
class Backend:
    key: str
    label: str
    client: aioredis.Redis
    keys: Keys
    pids: dict[str, int]  # for CpuWatch: "bench", and "redis" or "master:…"/"replica:…"
    nodes: dict[str, aioredis.Redis]  # where commands are counted: the server, or each master
    seeder: Seeder = field(init=False)
    supply: RedisSupply = field(init=False)
    phases: dict[str, Phase] = field(default_factory=dict)
    home_at: float = 0.0  # when the last pass putting every driver at its seeded place began
    moved: bool = False

    def __post_init__(self) -> None:
        self.seeder = Seeder(self.client, self.keys)
        self.supply = RedisSupply(self.client, self.keys, positions_cap=POSITIONS_CAP)

    def phase(self, name: str, label: str, rows_per_op: int = 1) -> Phase:
        return self.phases.setdefault(name, Phase(label, rows_per_op))


class Workload:
    """The drivers, their seeded places, two sets of places a few metres off, query points."""

    def __init__(self, drivers: int, batch_rows: int, move_m: float, seed: int) -> None:
        city = City()
        self.ids = [driver_id(i) for i in range(drivers)]
        self.home = city.random_points(random.Random(seed), drivers)
        self.queries = city.random_points(random.Random(seed + 1), 20_000)
        self.rows = min(batch_rows, drivers)
        self.batches = max(1, drivers // self.rows)
        self.at_home = self._updates(self.home)
        self.moves = [self._updates(self._moved(move_m, seed * 100 + n)) for n in range(2)]

    def _moved(self, move_m: float, seed: int) -> list[LatLng]:
        rng = random.Random(seed)
        out = []
        for lat, lng in self.home:
            metres, bearing = rng.uniform(0, move_m), rng.uniform(0, 2 * math.pi)
            dlat = metres * math.cos(bearing) / _M_PER_DEG
            dlng = metres * math.sin(bearing) / (_M_PER_DEG * math.cos(math.radians(lat)))
            out.append((lat + dlat, lng + dlng))
        return out

    def _updates(self, places: list[LatLng]) -> list[LocationUpdate]:
        return [LocationUpdate(i, Position(*p)) for i, p in zip(self.ids, places, strict=True)]

    def batch(self, n: int) -> list[LocationUpdate]:
        """Batch n: the drivers of slice n % batches, at the places of pass n // batches."""
        start = (n % self.batches) * self.rows
        return self.moves[(n // self.batches) % 2][start : start + self.rows]

    def single(self, n: int) -> LocationUpdate:
        """Update n, one pass behind `batch`: each window moves the drivers it pings."""
        return self.moves[(n // len(self.ids) + 1) % 2][n % len(self.ids)]


async def _pid(client: aioredis.Redis) -> int:
    return int((await client.info("server"))["process_id"])


async def connect_backends(redis_url: str, cluster: Cluster, resolution: int) -> list[Backend]:
    """The three backends: two layouts on the Redis at `redis_url`, one on `cluster`."""
    me = os.getpid()
    single = connect(redis_url, timeout_s=10, max_connections=64)
    single_pids = {"bench": me, "redis": await _pid(single)}
    masters = set(cluster.masters())
    cluster_pids = {"bench": me}
    counted: dict[str, aioredis.Redis] = {}
    for port in cluster.ports:
        node = aioredis.Redis(host="127.0.0.1", port=port)
        role = "master" if port in masters else "replica"
        cluster_pids[f"{role}:{port}"] = await _pid(node)
        if port in masters:
            counted[f"master:{port}"] = node
        else:
            await node.aclose()
    on_cluster = connect_cluster(cluster.nodes_env, timeout_s=10, max_connections=64)
    sharded = f"H3 r{resolution} cells"
    return [
        Backend(ONE_SLOT, "single Redis, one slot", single, Keys(f"{PREFIX}-slot"),
                single_pids, {"redis": single}),
        Backend(CELLS, f"single Redis, {sharded}", single, Keys(f"{PREFIX}-cells", resolution),
                single_pids, {"redis": single}),
        Backend(CLUSTER, f"Redis Cluster 3+3, {sharded}", on_cluster, Keys(PREFIX, resolution),
                cluster_pids, counted),
    ]  # fmt: skip


async def close_backends(backends: list[Backend]) -> None:
    clients = {id(c): c for b in backends for c in [b.client, *b.nodes.values()]}
    for client in clients.values():
        await client.aclose()
