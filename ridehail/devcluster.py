"""A throwaway local Redis Cluster: 3 masters and 3 replicas on free ports of 127.0.0.1.

For tests, the bench (`ridehail bench cluster`) and `ridehail dev-cluster`.

`running_cluster(tmp_dir)` starts six `redis-server` processes, joins them with
`redis-cli --cluster create`, waits until every node reports `cluster_state:ok` and all 16384
slots, and yields a `Cluster` that can kill a master, wait for its replica to take over, and
start the dead node again. Every process is stopped on the way out, even if the body raised.

Node logs go to `<tmp_dir>/redis-<port>.log`; when the cluster does not come up in time the error
carries their tails.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import redis

from ridehail.bench.procs import free_port

MASTER_COUNT = 3
NODE_COUNT = 6
SLOT_COUNT = 16384
BUS_PORT_OFFSET = 10000
SYSTEM_REDIS_PORT = 6379

# Commands left out of `per_master_stats()["commands"]`: the cluster's own chatter (replicas
# send REPLCONF ACK every second), the client's handshake and topology discovery (HELLO,
# CLIENT SETINFO, COMMAND, CLUSTER SLOTS/SHARDS/NODES) and what this module and the fixtures send
# (PING, ROLE, INFO, CONFIG, DBSIZE, FLUSHALL). Subcommands (`cluster|nodes`) count as their
# command. What remains is what the code under test asked for.
HOUSEKEEPING_COMMANDS = frozenset({
    "auth", "client", "cluster", "command", "config", "dbsize", "echo", "flushall", "flushdb",
    "hello", "info", "ping", "psync", "readonly", "readwrite", "replconf", "role", "select", "sync",
})  # fmt: skip


class ClusterNotReady(RuntimeError):
    """The cluster (or one node) did not reach the awaited state before its deadline."""


class MasterStats(TypedDict):
    keys: int
    commands: int


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def missing_binaries() -> list[str]:
    """Which of the binaries a cluster needs (`redis-server`, `redis-cli`) are not on PATH."""
    found = {"redis-server": redis_server_binary(), "redis-cli": shutil.which("redis-cli")}
    return [name for name, path in found.items() if path is None]


def have_redis_server() -> bool:
    """Whether a cluster can be started here: both redis-server and redis-cli are installed."""
    return not missing_binaries()


@dataclass(frozen=True)
class NodeView:
    """One line of `CLUSTER NODES`: a node as some node of the cluster sees it."""

    port: int
    flags: frozenset[str]
    slots: tuple[tuple[int, int], ...]

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def is_failing(self) -> bool:
        return bool(self.flags & {"fail", "fail?", "noaddr", "handshake"})

    def owns(self, slot: int) -> bool:
        return any(first <= slot <= last for first, last in self.slots)


def parse_cluster_nodes(text: str) -> list[NodeView]:
    views = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address = fields[1].split("@")[0]
        ranges = []
        for spec in fields[8:]:
            if spec.startswith("["):  # a slot being imported or migrated: not owned yet
                continue
            first, _, last = spec.partition("-")
            ranges.append((int(first), int(last or first)))
        views.append(
            NodeView(
                port=int(address.rpartition(":")[2] or 0),
                flags=frozenset(fields[2].split(",")),
                slots=tuple(ranges),
            )
        )
    return views


def _client(port: int) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=1, decode_responses=True)


def _ask(port: int, *command: Any) -> Any:
    with _client(port) as client:
        return client.execute_command(*command)


def _cluster_info(port: int) -> dict[str, str]:
    text = _ask(port, "CLUSTER", "INFO")
    return dict(line.split(":", 1) for line in str(text).splitlines() if ":" in line)


def _nodes(port: int) -> list[NodeView]:
    return parse_cluster_nodes(str(_ask(port, "CLUSTER", "NODES")))


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_ports(count: int = NODE_COUNT) -> list[int]:
    """`count` free ports whose cluster bus ports (port + 10000) are free too; never 6379."""
    chosen: list[int] = []
    taken: set[int] = {SYSTEM_REDIS_PORT, SYSTEM_REDIS_PORT + BUS_PORT_OFFSET}
    for _ in range(1000):
        if len(chosen) == count:
            return chosen
        port = free_port()
        bus = port + BUS_PORT_OFFSET
        if bus > 65535 or {port, bus} & taken or not _bindable(bus):
            continue
        chosen.append(port)
        taken |= {port, bus}
    raise RuntimeError(f"could not find {count} free port pairs for a Redis Cluster")


@dataclass
class Cluster:
    """A running Redis Cluster; every query reads the live state from the nodes."""

    ports: tuple[int, ...]
    directory: Path
    _processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)
    _stopped_slots: dict[int, tuple[tuple[int, int], ...]] = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        """A startup node for `RedisCluster.from_url`: the first node that is running."""
        return f"redis://127.0.0.1:{self.running_ports()[0]}"

    @property
    def nodes_env(self) -> str:
        """Every node as `host:port,host:port,...`, for REDIS_CLUSTER_NODES."""
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def running_ports(self) -> list[int]:
        return [port for port in self.ports if self._running(port)]

    def masters(self) -> list[int]:
        """The running nodes that say (ROLE) they are masters."""
        return [port for port in self.running_ports() if _ask(port, "ROLE")[0] == "master"]

    def replicas(self) -> list[int]:
        """The running nodes that say (ROLE) they are replicas."""
        return [port for port in self.running_ports() if _ask(port, "ROLE")[0] == "slave"]

    def keyslot(self, key: str) -> int:
        """The slot of `key`, by the cluster's own reckoning (CLUSTER KEYSLOT)."""
        return int(_ask(self.running_ports()[0], "CLUSTER", "KEYSLOT", key))

    def master_for_slot(self, slot: int) -> int:
        """The port of the master serving `slot`, as a running node sees it."""
        for view in _nodes(self.running_ports()[0]):
            if view.is_master and not view.is_failing and view.owns(slot):
                return view.port
        raise LookupError(f"no live master serves slot {slot}")

    def wait_replicated(self, master_port: int, timeout_s: float = 5) -> None:
        """Wait until the master's replicas have applied every write it had taken by now."""
        offset = int(_ask(master_port, "ROLE")[1])

        def caught_up() -> bool:
            roles = [_ask(port, "ROLE") for port in self.running_ports()]
            mine = [role for role in roles if role[0] == "slave" and role[2] == master_port]
            return bool(mine) and all(int(role[4]) >= offset for role in mine)

        self._wait(caught_up, timeout_s, f"replicas of {master_port} catching up")

    def stop_master(self, port: int) -> None:
        """Kill (SIGKILL) the master on `port`, as a crash would."""
        if port not in self.masters():
            raise ValueError(f"{port} is not a running master")
        (me,) = [view for view in _nodes(port) if "myself" in view.flags]
        self._stopped_slots[port] = me.slots
        process = self._processes[port]
        process.kill()
        process.wait(timeout=10)

    def wait_failover(self, old_master_port: int, timeout_s: float = 15) -> int:
        """Wait until a replica of the stopped master serves its slots; return the new master.

        Stricter than one surviving node's word: every running node must report
        `cluster_state:ok` with all slots assigned, and agree on the promoted replica.
        """
        if old_master_port not in self._stopped_slots:
            raise ValueError(f"{old_master_port} was not stopped by stop_master")
        first_slot = self._stopped_slots[old_master_port][0][0]
        promoted: list[int] = []

        def failed_over() -> bool:
            owners = {self._owner_seen_by(port, first_slot) for port in self.running_ports()}
            if len(owners) != 1 or None in owners or old_master_port in owners:
                return False
            (owner,) = owners
            assert owner is not None
            # Its own replica is dead: unlike wait_ready, no replica link is asked for here.
            if _ask(owner, "ROLE")[0] != "master" or not self._all_slots_served():
                return False
            promoted[:] = [owner]
            return True

        self._wait(failed_over, timeout_s, f"failover away from {old_master_port}")
        return promoted[0]

    def restart(self, port: int, timeout_s: float = 15) -> None:
        """Start a stopped node again: its nodes.conf makes it rejoin, as a replica."""
        if self._running(port):
            raise ValueError(f"{port} is still running")
        self._start(port)
        _wait_for_ping(port, self._processes[port], self.directory)

        def rejoined() -> bool:
            role = _ask(port, "ROLE")
            if role[0] != "slave" or role[3] != "connected":
                return False
            for other in self.running_ports():
                view = next((v for v in _nodes(other) if v.port == port), None)
                if view is None or view.is_failing:
                    return False
            return self._all_healthy()

        self._wait(rejoined, timeout_s, f"node {port} rejoining as a replica")
        self._stopped_slots.pop(port, None)

    def per_master_stats(self) -> dict[int, MasterStats]:
        """Keys (DBSIZE) and commands served (less HOUSEKEEPING_COMMANDS) on each master."""
        stats: dict[int, MasterStats] = {}
        for port in self.masters():
            with _client(port) as client:
                keys = int(client.dbsize())
                commandstats: dict[str, dict[str, Any]] = client.info("commandstats")
            calls = sum(
                int(values["calls"])
                for name, values in commandstats.items()
                if name.removeprefix("cmdstat_").split("|")[0] not in HOUSEKEEPING_COMMANDS
            )
            stats[port] = {"keys": keys, "commands": calls}
        return stats

    def flush_all(self) -> None:
        """Delete every key on every master (replicas follow) and reset the command counts."""
        for port in self.masters():
            with _client(port) as client:
                client.flushall()
                client.config_resetstat()

    def wait_ready(self, timeout_s: float = 20) -> None:
        """Wait until every running node says `cluster_state:ok`, all slots assigned, and each
        master has a replica whose replication link is up."""
        what = "healthy cluster (all slots served, every master replicated)"
        self._wait(self._all_healthy, timeout_s, what)

    def log_tails(self, lines: int = 12) -> str:
        parts = []
        for port in self.ports:
            log = self._log_path(port)
            text = log.read_text(errors="replace") if log.exists() else "(no log)"
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append(f"--- node {port} ({self._state(port)}) {log}\n{tail}")
        return "\n".join(parts)

    def _all_healthy(self) -> bool:
        return self._all_slots_served() and self._every_master_replicated()

    def _all_slots_served(self) -> bool:
        for port in self.running_ports():
            info = _cluster_info(port)
            if info.get("cluster_state") != "ok":
                return False
            if info.get("cluster_slots_assigned") != str(SLOT_COUNT):
                return False
        return True

    def _every_master_replicated(self) -> bool:
        linked_masters = set()
        for port in self.running_ports():
            role = _ask(port, "ROLE")
            if role[0] == "slave" and role[3] == "connected":
                linked_masters.add(int(role[2]))
        return len(linked_masters) >= MASTER_COUNT

    def _owner_seen_by(self, port: int, slot: int) -> int | None:
        for view in _nodes(port):
            if view.is_master and not view.is_failing and view.owns(slot):
                return view.port
        return None

    def _wait(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                if done():
                    return
            except (redis.RedisError, OSError) as exc:
                last_error = exc  # a node not answering yet (just started, or shutting down)
            time.sleep(0.05)
        detail = f" (last error: {last_error!r})" if last_error else ""
        raise ClusterNotReady(
            f"Redis Cluster: no {what} after {timeout_s}s{detail}\n{self.log_tails()}"
        )

    def _running(self, port: int) -> bool:
        process = self._processes.get(port)
        return process is not None and process.poll() is None

    def _state(self, port: int) -> str:
        process = self._processes.get(port)
        if process is None:
            return "never started"
        code = process.poll()
        return "running" if code is None else f"exited {code}"

    def _log_path(self, port: int) -> Path:
        return self.directory / f"redis-{port}.log"

    def _start(self, port: int) -> None:
        binary = redis_server_binary()
        assert binary, "redis-server is not installed"
        args = [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--daemonize", "no",
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(self.directory / f"nodes-{port}.conf"),
            "--cluster-node-timeout", "1000",
            "--cluster-replica-validity-factor", "0",
            "--cluster-allow-reads-when-down", "no",
            "--appendonly", "no",
            "--save", "",
            # Replicas sync at once: by default a master waits 5 s for more replicas to join.
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip
        with self._log_path(port).open("ab") as log:
            self._processes[port] = subprocess.Popen(  # noqa: S603 - our own argv, no shell
                args, stdout=log, stderr=subprocess.STDOUT
            )

    def _stop_all(self) -> None:
        running = [process for process in self._processes.values() if process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_for_ping(
    port: int, process: subprocess.Popen[bytes], directory: Path, timeout_s: float = 10
) -> None:
    """Wait until our own process answers PING on `port` (not some other server there)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClusterNotReady(f"redis-server on port {port} exited with {process.returncode}")
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError), _client(port) as c:
            if c.ping():
                served_by = int(c.info("server")["process_id"])
                if served_by != process.pid:
                    raise ClusterNotReady(f"port {port} is served by another process")
                return
        time.sleep(0.02)
    log = directory / f"redis-{port}.log"
    raise ClusterNotReady(f"redis-server on port {port} not answering:\n{log.read_text()}")


def _create(cluster: Cluster) -> None:
    cli = shutil.which("redis-cli")
    assert cli, "redis-cli is not installed"
    addresses = [f"127.0.0.1:{port}" for port in cluster.ports]
    command = [cli, "--cluster", "create", *addresses]
    command += ["--cluster-replicas", str(NODE_COUNT // MASTER_COUNT - 1), "--cluster-yes"]
    done = subprocess.run(  # noqa: S603 - redis-cli from PATH, our own arguments
        command, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise ClusterNotReady(
            f"redis-cli --cluster create failed ({done.returncode}):\n"
            f"{done.stdout}{done.stderr}\n{cluster.log_tails()}"
        )


@contextlib.contextmanager
def running_cluster(tmp_dir: Path, *, attempts: int = 3) -> Iterator[Cluster]:
    """A fresh 3-master, 3-replica Redis Cluster with its files in `tmp_dir`; stopped after.

    A free port can be taken by another process before its node binds it: then the whole
    cluster is started again on other ports (up to `attempts` times).
    """
    for attempt in range(1, attempts + 1):
        directory = tmp_dir / f"attempt-{attempt}"
        directory.mkdir(parents=True, exist_ok=True)
        cluster = Cluster(ports=tuple(cluster_ports()), directory=directory)
        try:
            for port in cluster.ports:
                cluster._start(port)
            try:
                for port in cluster.ports:
                    _wait_for_ping(port, cluster._processes[port], directory)
            except ClusterNotReady:
                if attempt == attempts:
                    raise
                continue  # the finally below stops this attempt's nodes
            _create(cluster)
            cluster.wait_ready(timeout_s=20)
            yield cluster
            return
        finally:
            cluster._stop_all()
    raise AssertionError("unreachable")
