"""SQL-first migrations (`migrations/NNNN_name.sql` + `NNNN_name.rollback.sql`) applied by yoyo.

yoyo's own lock gives up after 10 s, so a second deploy racing a long migration would fail.
Both directions therefore first take a session-level Postgres advisory lock and hold it for the
whole run: concurrent runs queue behind each other, and the later one finds nothing left to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg
from loguru import logger
from yoyo import get_backend, read_migrations

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# pg_advisory_lock key: the bytes of "hustlemg" as a bigint, so no other lock collides by accident.
_LOCK_KEY = int.from_bytes(b"hustlemg", "big", signed=True)


@dataclass(frozen=True, slots=True)
class MigrationResult:
    applied: list[str]
    rolled_back: list[str]


def _yoyo_url(database_url: str) -> str:
    scheme, sep, rest = database_url.partition("://")
    if not sep or scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
        raise ValueError("DATABASE_URL must be a postgresql:// URL")
    return f"postgresql+psycopg://{rest}"


def _run(database_url: str, *, rollback: int, up_to: str | None = None) -> MigrationResult:
    """Apply pending migrations (all, or up to and including `up_to`) when rollback=0, or roll
    back the newest `rollback` ones."""
    with psycopg.connect(database_url, autocommit=True) as lock_conn:
        lock_conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            backend = get_backend(_yoyo_url(database_url))
            try:
                migrations = read_migrations(str(MIGRATIONS_DIR))
                with backend.lock(timeout=60):
                    if rollback:
                        chosen = backend.to_rollback(migrations)[:rollback]
                        backend.rollback_migrations(chosen)
                        return MigrationResult([], [m.id for m in chosen])
                    pending = backend.to_apply(migrations)
                    if up_to is not None:
                        if up_to not in {m.id for m in migrations}:
                            raise ValueError(f"no migration named {up_to!r}")
                        pending = pending.__class__([m for m in pending if m.id <= up_to])
                    backend.apply_migrations(pending)
                    return MigrationResult([m.id for m in pending], [])
            finally:
                backend.connection.close()
        finally:
            lock_conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def apply(database_url: str, up_to: str | None = None) -> MigrationResult:
    """Apply every pending migration, or those up to and including the one named `up_to`."""
    result = _run(database_url, rollback=0, up_to=up_to)
    for migration_id in result.applied:
        logger.info(f"migration applied: {migration_id}")
    if not result.applied:
        logger.info("migrations: nothing to apply")
    return result


def rollback(database_url: str, count: int = 1) -> MigrationResult:
    """Roll back the newest `count` applied migrations (all of them with a large count)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    result = _run(database_url, rollback=count)
    for migration_id in result.rolled_back:
        logger.info(f"migration rolled back: {migration_id}")
    return result
