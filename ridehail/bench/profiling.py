"""Where a server's (or the bench client's) CPU time goes, from py-spy's raw output.

Each sample is a stack. *Self* time goes to the innermost Python frame (C code such as
pydantic-core, hiredis or json's scanner shows up under the Python frame that called it);
*inclusive* time counts a sample for every category found anywhere on its stack. Threads that
wait in `threading` (anyio's idle thread pool) are left out: py-spy does not always see them idle.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# (name, file marks): first match wins. py-spy names files relative to their sys.path entry:
# "fastapi/routing.py", "redis/client.py".
Categories = list[tuple[str, tuple[str, ...]]]

# A server's: our middleware before the rest of our code.
CATEGORIES: Categories = [
    ("our edge middleware", ("ridehail/observability.py",)),
    ("our auth", ("ridehail/auth.py", "ridehail/deps.py")),
    ("our routes, services, store", ("dispatch/", "ridehail/", "trips/", "ratelimit/")),
    ("redis-py", ("redis/", "hiredis")),
    ("httpx, httpcore, h11 (the pricing call)", ("httpx/", "httpcore/", "h11/")),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("JSON", ("json/", "orjson")),
    ("prometheus-client", ("prometheus_client/",)),
    ("FastAPI", ("fastapi/",)),
    ("Starlette", ("starlette/",)),
    ("uvicorn + httptools", ("uvicorn/", "httptools")),
    ("threads (anyio pool)", ("threading.py", "queue.py")),
    ("asyncio, uvloop, anyio, contextlib", ("asyncio/", "uvloop", "contextlib.py", "anyio/")),
]
# `_worker`: an idle ThreadPoolExecutor thread (asyncio.to_thread), blocked in SimpleQueue.get
_WAITS = {"Condition.wait", "Queue.get", "Event.wait", "Thread.join", "_worker"}
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _under(file: str, mark: str) -> bool:
    return file.startswith(mark) or f"/{mark}" in file


def category(file: str, categories: Categories = CATEGORIES) -> str:
    return next((n for n, marks in categories if any(_under(file, m) for m in marks)), "other")


def _frames(stack: str) -> list[tuple[str, str]]:
    frames = []
    for raw in stack.split(";"):
        m = _FRAME.match(raw)
        if m and not raw.startswith("process "):
            frames.append((m["func"], m["file"]))
    return frames


def _short(file: str) -> str:
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def summarize(raw: Path, top: int = 15, categories: Categories = CATEGORIES) -> dict[str, Any]:
    self_cat: Counter[str] = Counter()
    incl_cat: Counter[str] = Counter()
    self_fn: Counter[str] = Counter()
    incl_ours: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        frames = _frames(stack)
        if not frames or frames[-1][0] in _WAITS:
            continue  # an idle thread-pool thread that py-spy did not see as idle
        count = int(count_text)
        total += count
        func, file = frames[-1]
        self_cat[category(file, categories)] += count
        self_fn[f"{func} ({_short(file)})"] += count
        # inclusive: only frames above the event loop (what a request's task runs)
        loop = max((i for i, (fn, _) in enumerate(frames) if fn == "Runner.run"), default=-1)
        frames = frames[loop + 1 :]
        for name in {category(f, categories) for _, f in frames}:
            incl_cat[name] += count
        for name in {f"{fn} ({_short(f)})" for fn, f in frames if category(f).startswith("our")}:
            incl_ours[name] += count

    def pct(counter: Counter[str], n: int | None = None) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(n)]

    return {
        "samples": total,
        "self_by_category_pct": pct(self_cat) if total else [],
        "inclusive_by_category_pct": pct(incl_cat) if total else [],
        "top_self_functions_pct": pct(self_fn, top) if total else [],
        "our_functions_inclusive_pct": pct(incl_ours, top) if total else [],
    }


def table(summary: dict[str, Any]) -> str:
    """The category split as Markdown: self and inclusive % of CPU samples."""
    inclusive = dict(summary["inclusive_by_category_pct"])
    lines = ["| where | self % | inclusive % |", "|---|---:|---:|"]
    for name, self_pct in summary["self_by_category_pct"]:
        lines.append(f"| {name} | {self_pct} | {inclusive.get(name, 0)} |")
    return "\n".join(lines)


@contextlib.contextmanager
def py_spy(
    pid: int, output: Path, fmt: str, rate: int = 250, *, subprocesses: bool = True
) -> Iterator[bool]:
    """Sample `pid` (and its subprocesses: a server's workers) with py-spy while the block runs;
    yields False when py-spy is missing."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(binary).exists():
        yield False
        return
    argv = [binary, "record", "--pid", str(pid), "--rate", str(rate), "--format", fmt]
    argv += ["--output", str(output)] + (["--subprocesses"] if subprocesses else [])
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    time.sleep(0.5)  # let it attach before the load starts
    try:
        yield proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
