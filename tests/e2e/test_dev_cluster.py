"""`ridehail dev-cluster`: a local Redis Cluster a cluster client can use, all gone after Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis.cluster import ClusterNode, RedisCluster

from tests.conftest import require_cluster_binaries

pytestmark = [pytest.mark.e2e, pytest.mark.real_redis, pytest.mark.timeout(90)]

RIDEHAIL = str(Path(sys.executable).with_name("ridehail"))
NODES_LINE = b"REDIS_CLUSTER_NODES="


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def is_running_redis_server(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return state != "Z" and b"redis-server" in command


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def nodes_line(proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break  # exited
        if line.startswith(NODES_LINE):
            return line[len(NODES_LINE) :].decode().strip()
    raise AssertionError(f"no {NODES_LINE.decode()} line within {timeout_s}s")


def test_dev_cluster_serves_a_cluster_client_and_ctrl_c_stops_every_node(tmp_path: Path) -> None:
    require_cluster_binaries()
    log = (tmp_path / "dev-cluster.log").open("wb")
    proc = subprocess.Popen(
        [RIDEHAIL, "dev-cluster", "--dir", str(tmp_path / "nodes")],
        stdout=subprocess.PIPE,
        stderr=log,
    )
    nodes: list[int] = []
    try:
        env = nodes_line(proc, timeout_s=15)
        nodes = children(proc.pid)
        ports = [int(node.rpartition(":")[2]) for node in env.split(",")]
        assert len(ports) == len(nodes) == 6

        startup = [ClusterNode("127.0.0.1", port) for port in ports]
        with RedisCluster(startup_nodes=startup, socket_timeout=5) as client:
            keys = [f"{{dev-{secrets.token_hex(4)}}}:k" for _ in range(30)]
            for key in keys:
                client.set(key, key)
            assert [client.get(key) for key in keys] == [key.encode() for key in keys]
            masters = {client.get_node_from_key(key).port for key in keys}
            assert len(masters) >= 2  # the keys really went to several masters

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        assert [pid for pid in nodes if is_running_redis_server(pid)] == []
        assert [port for port in ports if listening(port)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in nodes:  # only if the test failed half-way: the nodes it started
            if is_running_redis_server(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if proc.stdout is not None:
            proc.stdout.close()
        log.close()
