"""CPU accounting from /proc: what each of the bench's processes used, and everyone else.

On a shared machine the rest (`other`) is a neighbour's load; the bench records it with every
phase and can wait for it to pass (`QuietWait`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU time of a process, and of its children (uvicorn's workers), from /proc.

    Only a server's children are its own: the bench's children are the servers it started.
    """
    total = 0.0
    for p in [pid, *(_children(pid) if children else [])]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICKS_PER_S
    return total


def _machine_busy_s() -> float:
    """CPU seconds all processes on the machine have used (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / _TICKS_PER_S


class QuietWait:
    """Waits for a busy machine to idle before a phase, within one budget for the whole run.

    Call between phases, when none of the bench's own processes is working: what is busy then
    is a neighbour (a test run, a build) that would otherwise skew the next measurement. A
    neighbour that never stops uses up the budget once; after that phases start at once.
    """

    budget_s = 60.0
    per_phase_s = 15.0

    @classmethod
    def wait(cls, limit_cores: float = 0.3) -> float:
        """Seconds waited for the busy cores to fall to `limit_cores` (or for time to run out)."""
        if cls.budget_s <= 0:
            return 0.0
        started = time.monotonic()
        deadline = started + min(cls.budget_s, cls.per_phase_s)
        while True:
            before = _machine_busy_s()
            time.sleep(0.5)
            busy = (_machine_busy_s() - before) / 0.5
            if busy <= limit_cores or time.monotonic() > deadline:
                waited = time.monotonic() - started
                cls.budget_s = max(0.0, cls.budget_s - waited + 0.5)
                return round(waited, 1)


def mean_cores(watches: list[dict[str, float]]) -> dict[str, float]:
    """The mean of several `CpuWatch.cores` (rounds of one phase)."""
    names = {name for w in watches for name in w}
    return {n: round(sum(w.get(n, 0.0) for w in watches) / len(watches), 2) for n in sorted(names)}


class CpuWatch:
    """CPU cores each named process used over a block, and what the rest of the machine used.

    `other` is everything not named: on a shared machine, a neighbour's load shows up there.
    A process named "server" counts with its children (the workers of `--workers N`).
    """

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self.cores: dict[str, float] = {}

    def __enter__(self) -> CpuWatch:
        self._t0 = time.monotonic()
        self._machine0 = _machine_busy_s()
        self._cpu0 = {name: self._cpu(name) for name in self.pids}
        return self

    def __exit__(self, *exc: object) -> None:
        self._wall = wall = max(time.monotonic() - self._t0, 1e-9)
        used = {name: self._cpu(name) - self._cpu0[name] for name in self.pids}
        self.cores = {name: round(s / wall, 2) for name, s in used.items()}
        machine = (_machine_busy_s() - self._machine0) / wall
        self.cores["machine"] = round(machine, 2)
        self.cores["other"] = round(max(0.0, machine - sum(used.values()) / wall), 2)

    def _cpu(self, name: str) -> float:
        return cpu_seconds(self.pids[name], children=name == "server")

    def add(self, name: str, cpu_s: float) -> None:
        """Count a process that reported its own CPU time (the load generator) by name."""
        wall = self._wall
        self.cores[name] = round(cpu_s / wall, 2)
        self.cores["other"] = round(max(0.0, self.cores["other"] - cpu_s / wall), 2)
