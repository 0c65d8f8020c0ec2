"""The PostgreSQL side of a run: the CPU time its processes spend, and the DB ceiling.

- `Cluster.cpu_seconds()`: user + system time of the postmaster and every process under it
  (backends, autovacuum, the WAL writer...), as the server's processes are counted, so that a
  call's cost can be split into server and database.
- `ceiling()`: the feed's NEARBY page statement run by pgbench (shipped with PostgreSQL) at the
  same points the NEARBY scenarios ask for, prepared, from as many clients as the server has
  connections to give: how many pages a second the database itself can produce.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.servers import CLOCK_TICKS
from server.db import load_queries

_PARAM = re.compile(r"%\((\w+)\)s")


def _children(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                queue += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


@dataclass(frozen=True, slots=True)
class Cluster:
    postmaster: int

    @classmethod
    def of(cls, url: str) -> Cluster:
        """The cluster a database URL reaches (its postmaster.pid, read as root)."""
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT current_setting('data_directory')").fetchone()
        assert row is not None
        first = Path(row[0], "postmaster.pid").read_text().split("\n", 1)[0]
        return cls(int(first))

    def cpu_seconds(self) -> float:
        """Live processes' time, plus what the postmaster collected from the backends that
        ended (a connection closed mid-run would otherwise take its time with it)."""
        total = 0
        for pid in _children(self.postmaster):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
            if pid == self.postmaster:
                total += int(fields[13]) + int(fields[14])  # cutime, cstime: reaped children
        return total / CLOCK_TICKS


def pgbench_script(statement: str, limit: int, root: Path) -> str:
    """The named statement (of the checkout at `root`) as a pgbench script: a row of
    bench_nearby picked at random gives the caller and the point; a first page (no keyset
    position) of `limit` rows."""
    sql = load_queries(root / "sql")[statement].sql
    values: dict[str, str] = {
        "user_id": ":user_id",
        "point": ":point",
        "radius": ":radius",
        "limit": str(limit),
    }

    def bind(match: re.Match[str]) -> str:
        name = match.group(1)
        return values.get(name, "NULL")  # after_*: the first page

    lines = [line.split("--", 1)[0] for line in sql.splitlines()]  # one line: no comments
    body = " ".join(_PARAM.sub(bind, "\n".join(lines)).replace("%%", "%").split())
    return (
        "\\set n random(1, :rows)\n"
        "SELECT user_id, point, radius FROM bench_nearby WHERE n = :n \\gset\n"
        f"{body}\n"
    )


def ceiling(
    url: str, statement: str, limit: int, *, clients: int, seconds: int, work: Path, root: Path
) -> dict[str, Any]:
    """pgbench's rate for the statement, and the PostgreSQL CPU time per transaction."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM bench_nearby").fetchone()
    rows = int(row[0]) if row else 0
    if rows == 0:
        raise RuntimeError("bench_nearby is empty: the fixtures were not built")
    work.mkdir(parents=True, exist_ok=True)
    script = work / f"{statement}.pgbench.sql"
    script.write_text(pgbench_script(statement, limit, root), encoding="utf-8")
    cluster = Cluster.of(url)
    before = cluster.cpu_seconds()
    done = subprocess.run(
        [
            "pgbench",
            "--no-vacuum",
            "--protocol=prepared",
            f"--client={clients}",
            f"--jobs={min(clients, os.cpu_count() or 1)}",
            f"--time={seconds}",
            f"--define=rows={rows}",
            f"--file={script}",
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    spent = cluster.cpu_seconds() - before
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed: {done.stderr.strip()[-2000:]}")
    found = re.search(r"tps = ([\d.]+)", done.stdout)
    processed = re.search(r"number of transactions actually processed: (\d+)", done.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", done.stdout)
    if not found or not processed:
        raise RuntimeError(f"pgbench said nothing usable:\n{done.stdout}")
    count = int(processed.group(1))
    return {
        "tps": float(found.group(1)),
        "count": count,
        "latency_ms": float(latency.group(1)) if latency else float("nan"),
        "db_cpu_ms": round(spent * 1000 / count, 3) if count else float("nan"),
        "clients": clients,
    }
