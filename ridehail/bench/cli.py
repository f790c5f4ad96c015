"""Placeholder replaced by the benchmark harness."""

from __future__ import annotations

from collections.abc import Sequence


def run(argv: Sequence[str]) -> int:
    raise SystemExit("ridehail bench: not built yet")
