"""Fixtures of the reliability tests: a PostgreSQL cluster of their own, which they restart.

The shared test cluster (`make test`'s, or the one DATABASE_URL names) is never stopped; these
tests start a private one (initdb in a temporary folder, ~2 s, migrated once per session, ~6 s)
and restart or stop that.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from server import migrate
from tests.helpers import PrivatePostgres


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    if not PrivatePostgres.available():
        pytest.skip("PostgreSQL 15 binaries are not installed (make test installs them)")
    cluster = PrivatePostgres()
    cluster.start()
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE hustle")
    migrate.apply(cluster.url("hustle"))
    yield cluster
    cluster.destroy()


def empty_tables(url: str) -> None:
    """Delete every row of every table (triggers off, so that append-only ledgers empty too)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        tables = conn.execute(
            "SELECT format('%I', tablename) FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'spatial_ref_sys' AND tablename NOT LIKE '%yoyo%'"
        ).fetchall()
        for (table,) in tables:
            conn.execute(f"DELETE FROM {table}")


@pytest.fixture
def private_database_url(private_postgres: PrivatePostgres) -> str:
    """The private cluster's migrated database, emptied, and running (a test may restart it)."""
    private_postgres.ensure_running()
    url = private_postgres.url("hustle")
    empty_tables(url)
    return url
