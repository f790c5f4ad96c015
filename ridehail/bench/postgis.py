"""A PostGIS KNN baseline for the nearest search, on a private PostgreSQL.

`private_postgres()` runs `initdb` in a temporary directory as the `postgres` user (the server
refuses to run as root), starts it with `pg_ctl` on a free port, listening on a unix socket in
that directory only (no TCP), and removes it all afterwards. The system's own cluster (5432) is
never touched. Drivers are COPYed into `drivers(id text, geom geography(Point, 4326))` with a GiST
index; a query is `ORDER BY geom <-> point LIMIT k`, the index-assisted KNN. On geography, `<->`
is the distance on the sphere in metres (PostGIS >= 2.2), so the ranking is metric and the same
as Redis's haversine; no reordering is needed.
"""

from __future__ import annotations

import contextlib
import glob
import importlib
import io
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ridehail.bench.city import LatLng
from ridehail.bench.procs import BenchSetupError, free_port

QUERY = (
    "SELECT id, geom <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography AS m"
    " FROM drivers ORDER BY geom <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography LIMIT %s"
)


def _bin_dir() -> str | None:
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        major = d.split("/")[-2]
        if os.path.exists(f"/usr/share/postgresql/{major}/extension/postgis.control"):
            return d
    return None


def unavailable() -> str | None:
    """Why the baseline cannot run here, or None."""
    try:
        importlib.import_module("psycopg")
    except ImportError:
        return "psycopg is not installed (the bench extra: pip install 'psycopg[binary]')"
    if _bin_dir() is None:
        return "PostgreSQL with PostGIS is not installed (apt-get install postgresql-15-postgis-3)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to drop to the postgres user"
    return None


@dataclass(frozen=True, slots=True)
class Postgres:
    conninfo: str
    pid: int


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextlib.contextmanager
def private_postgres() -> Iterator[Postgres]:
    bindir = _bin_dir()
    if bindir is None:
        raise BenchSetupError("PostGIS is not installed")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="ridehail-bench-pg-")
    data = os.path.join(workdir, "data")
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    started = False
    try:
        subprocess.run(  # noqa: S603 - our own command line, no shell
            _as_postgres([f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres",
                          "--no-sync", "-E", "UTF8"]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        opts = (
            f"-p {port} -k {workdir} -c listen_addresses='' -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=256MB"
        )
        subprocess.run(  # noqa: S603
            _as_postgres([f"{bindir}/pg_ctl", "-D", data, "-o", opts, "-w", "-t", "30",
                          "-l", os.path.join(workdir, "log"), "start"]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        started = True
        with open(os.path.join(data, "postmaster.pid")) as f:
            pid = int(f.readline())
        yield Postgres(f"host={workdir} port={port} user=postgres dbname=postgres", pid)
    except subprocess.CalledProcessError as exc:
        raise BenchSetupError(f"PostgreSQL did not start: {exc.stderr.decode()[-2000:]}") from exc
    finally:
        if started:
            subprocess.run(  # noqa: S603
                _as_postgres([f"{bindir}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"]),
                check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        shutil.rmtree(workdir, ignore_errors=True)


class Knn:
    """The drivers table, grown size by size, and `concurrency` async connections to query it."""

    def __init__(self, conninfo: str, concurrency: int) -> None:
        self.conninfo = conninfo
        self.concurrency = concurrency
        self.conns: list[Any] = []

    async def __aenter__(self) -> Knn:
        # imported by name: psycopg is in the bench extra only, and typed Any here
        psycopg: Any = importlib.import_module("psycopg")

        async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as c:
            await c.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            await c.execute(
                "CREATE TABLE drivers (id text PRIMARY KEY, geom geography(Point, 4326))"
            )
        self.conns = [await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                      for _ in range(self.concurrency)]  # fmt: skip
        return self

    async def __aexit__(self, *exc: object) -> None:
        for c in self.conns:
            await c.close()

    async def load(self, ids: Sequence[str], points: Sequence[LatLng]) -> None:
        """COPY the new drivers in, then (re)build the GiST index and ANALYZE."""
        c = self.conns[0]
        await c.execute("DROP INDEX IF EXISTS drivers_geom")
        buf = io.StringIO()
        for i, (lat, lng) in zip(ids, points, strict=True):
            buf.write(f"{i}\tSRID=4326;POINT({lng!r} {lat!r})\n")
        async with c.cursor() as cur, cur.copy("COPY drivers (id, geom) FROM STDIN") as copy:
            await copy.write(buf.getvalue())
        await c.execute("CREATE INDEX drivers_geom ON drivers USING gist (geom)")
        await c.execute("ANALYZE drivers")

    async def nearest(self, at: LatLng, k: int, conn: int = 0) -> list[tuple[str, float]]:
        lat, lng = at
        cur = await self.conns[conn % len(self.conns)].execute(QUERY, (lng, lat, lng, lat, k))
        return [(str(r[0]), float(r[1])) for r in await cur.fetchall()]

    async def explain(self, at: LatLng, k: int) -> str:
        lat, lng = at
        cur = await self.conns[0].execute("EXPLAIN " + QUERY, (lng, lat, lng, lat, k))
        return "\n".join(str(r[0]) for r in await cur.fetchall())


@contextlib.asynccontextmanager
async def knn(conninfo: str, concurrency: int) -> AsyncIterator[Knn]:
    async with Knn(conninfo, concurrency) as k:
        yield k
