"""The bench databases: one per size (`hustle_bench_<tasks>`), seeded once and never served.

A run changes what it measures (AcceptTask takes open tasks, CreateTask adds some), so each run
gets a fresh copy, `hustle_bench_<tasks>_run` (CREATE DATABASE ... TEMPLATE: a file copy, seconds
where the seed takes minutes), and every run starts from the same data.

A database counts as seeded only when the seed finished: the last step writes a comment on the
database naming what was seeded, so an interrupted seed is dropped and redone, never measured.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from loguru import logger
from psycopg import sql

from server import migrate

SEED = 42


def users_for(tasks: int) -> int:
    """The seed's users for a task count: one user per ten tasks, at least 5,000."""
    return max(5_000, tasks // 10)


def _with_database(url: str, name: str) -> str:
    """The same postgresql:// URL (what migrations and the server take) naming another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _marker(tasks: int) -> str:
    # "template": what earlier versions left was served and changed by their runs
    return f"hustle bench template: seeded users={users_for(tasks)} tasks={tasks} seed={SEED}"


def prepare(base_url: str, tasks: int, env: dict[str, str], root: Path) -> str:
    """The URL of a fresh copy of the fully seeded bench database of `tasks` tasks, migrated
    by the checkout at `root` (the one whose server is measured): the seeded template keeps the
    schema it was seeded with, and each copy gets the measured code's migrations."""
    name = f"hustle_bench_{tasks}"
    url, admin = _with_database(base_url, name), _with_database(base_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        found = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (name,),
        ).fetchone()
        if found is not None and found[0] != _marker(tasks):
            logger.info(f"{name}: an unfinished or different seed; dropping it")
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            found = None
        if found is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    if found is None:
        migrate.apply(url)
        logger.info(f"{name}: seeding {users_for(tasks):,} users and {tasks:,} tasks")
        started = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "server",
                "seed",
                "--users",
                str(users_for(tasks)),
                "--tasks",
                str(tasks),
                "--seed",
                str(SEED),
            ],
            env={**env, "DATABASE_URL": url, "APP_ENV": "dev"},
            check=True,
        )
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(name), sql.Literal(_marker(tasks))
                )
            )
        logger.info(f"{name}: seeded in {time.monotonic() - started:.0f} s")
    copy = f"{name}_run"
    started = time.monotonic()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(copy))
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(copy), sql.Identifier(name)
            )
        )
    logger.info(f"{copy}: copied from {name} in {time.monotonic() - started:.1f} s")
    copied = _with_database(base_url, copy)
    _forget_unknown_migrations(copied, root)
    subprocess.run(
        [sys.executable, "-m", "server", "migrate"],
        cwd=root,
        env={**env, "DATABASE_URL": copied, "APP_ENV": "dev"},
        check=True,
    )
    return copied


def _forget_unknown_migrations(url: str, root: Path) -> None:
    """Roll back, in the copy, the migrations the measured checkout does not have (the seed
    was migrated by newer code): the copy then has exactly that checkout's schema."""
    known = {p.name.removesuffix(".sql") for p in (root / "migrations").glob("*.sql")
             if not p.name.endswith(".rollback.sql")}  # fmt: skip
    with psycopg.connect(url, autocommit=True) as conn:
        applied = {row[0] for row in conn.execute("SELECT migration_id FROM _yoyo_migration")}
    extra = sorted(applied - known)
    if extra:
        if extra != sorted(applied)[-len(extra) :]:
            raise RuntimeError(f"{url}: unknown migrations {extra} are not the newest")
        logger.info(f"rolling back {extra}: the measured code does not have them")
        migrate.rollback(url, count=len(extra))
