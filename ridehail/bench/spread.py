"""Where a sharded supply lands on a Redis Cluster: each master's keys and commands.

Keys are counted by DBSIZE when the run ends (token buckets expire within a second, so they are
mostly gone by then), commands by phase from the masters' INFO commandstats (see
`ridehail.bench.backends.served`). Beside them: how many of the 16 driver shards and of the
index cells hash to each master, and which one holds the set of index cells.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ridehail.bench.backends import Backend
from ridehail.bench.measure import progress
from ridehail.devcluster import Cluster


async def spread(b: Backend, cluster: Cluster) -> list[dict[str, Any]]:
    """Per master: its keys (DBSIZE) and the commands of each phase, and their shares."""
    keys = {name: int(await node.dbsize()) for name, node in b.nodes.items()}
    cells = await b.supply.index_cells()

    def owner(key: str) -> str:
        return f"master:{cluster.master_for_slot(cluster.keyslot(key))}"

    def owners() -> tuple[list[str], list[str], str]:
        shards = [owner(f"{{{tag}}}") for tag in b.keys.driver_shards()]
        return shards, [owner(b.keys.available_geo(c)) for c in cells], owner(b.keys.index_cells())

    shards, geo, cell_set = await asyncio.to_thread(owners)
    masters = []
    for name in sorted(b.nodes):
        commands = {phase: b.phases[phase].commands.get(name, 0) for phase in b.phases}
        totals = {phase: sum(p.commands.values()) or 1 for phase, p in b.phases.items()}
        masters.append(
            {
                "node": name,
                "keys": keys[name],
                "keys_share": round(keys[name] / (sum(keys.values()) or 1), 3),
                "driver_shards": shards.count(name),
                "index_cells": geo.count(name),
                "holds_cell_set": cell_set == name,
                "commands": commands,
                "commands_share": {p: round(n / totals[p], 3) for p, n in commands.items()},
            }
        )
    for m in masters:
        progress(
            f"  {m['node']}: {m['keys']:,} keys ({m['keys_share']:.0%}), {m['driver_shards']}"
            f" driver shards, {m['index_cells']} index cells; command shares"
            f" {m['commands_share']}"
        )
    return masters
