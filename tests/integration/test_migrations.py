"""Migrations apply from zero, re-apply as a no-op, roll back, and survive concurrent runs."""

from __future__ import annotations

import subprocess
import sys

import psycopg

from server import migrate
from tests.processes import ROOT


def migration_ids() -> list[str]:
    return sorted(
        p.stem for p in migrate.MIGRATIONS_DIR.glob("*.sql") if not p.stem.endswith(".rollback")
    )


def applied(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('_yoyo_migration') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return []
        return [r[0] for r in conn.execute("SELECT migration_id FROM _yoyo_migration ORDER BY 1")]


def has_table(url: str, name: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
        return bool(row and row[0])


def has_postgis(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone()
            is not None
        )


def test_apply_reapply_and_roll_back(empty_database_url: str) -> None:
    url = empty_database_url
    assert applied(url) == []
    assert not has_table(url, "outbox")

    first = migrate.apply(url)
    assert first.applied == migration_ids()
    assert applied(url) == migration_ids()
    assert has_table(url, "outbox")
    assert has_postgis(url)

    assert migrate.apply(url).applied == []  # a no-op the second time

    one = migrate.rollback(url)
    assert one.rolled_back == migration_ids()[-1:]
    assert applied(url) == migration_ids()[:-1]

    migrate.rollback(url, count=10**6)
    assert applied(url) == []
    assert not has_table(url, "outbox")
    assert not has_postgis(url)

    assert migrate.apply(url).applied == migration_ids()


def test_two_concurrent_runs_apply_each_migration_once(empty_database_url: str) -> None:
    env_cmd = [sys.executable, "-m", "server", "migrate"]
    runs = [
        subprocess.Popen(
            env_cmd,
            cwd=ROOT,
            env={
                "PATH": "/usr/bin:/bin",
                "DATABASE_URL": empty_database_url,
                "REDIS_URL": "redis://127.0.0.1:1/0",
                "LOG_FORMAT": "json",
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert applied(empty_database_url) == migration_ids()
    with psycopg.connect(empty_database_url) as conn:
        rows = conn.execute(
            "SELECT migration_id, count(*) FROM _yoyo_log"
            " WHERE operation = 'apply' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert rows == [(m, 1) for m in migration_ids()]
    # one of the two did the work, the other found nothing to do
    assert sum("nothing to apply" in out for out in outputs) == 1, outputs
