"""scripts/services.sh for a clone under a private home folder (mode 700, as /root is).

The `postgres` user cannot enter such a folder, so the script must keep the cluster where that
user can reach it and never hand PostgreSQL a path through the private folder. A throwaway
checkout (just the script, and a link to this checkout's venv for moto) is brought up and
down with its own ports, in a path with spaces; the suite's own services are left alone.
pgBackRest, which PostgreSQL runs as `postgres` to archive WAL, must reach its paths too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.checkouts import Checkout, make_checkout, wait_archived

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("runuser") is None,
    reason="scripts/services.sh runs PostgreSQL as the postgres user: needs root",
)


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Checkout]:
    home = tmp_path / "private home"
    home.mkdir(mode=0o700)
    os.chmod(home, 0o700)
    # PostgreSQL and pgBackRest (its archive_command) are what cannot reach a private folder;
    # S3 runs too (archiving needs it), Redis is the suite's own
    made = make_checkout(home, {"REDIS_URL": os.environ["REDIS_URL"]})
    yield made
    cleaned = made.services("clean")
    assert cleaned.returncode == 0, cleaned.stderr


def answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False


def test_up_and_down_from_a_private_home_with_spaces(checkout: Checkout) -> None:
    suite_database = os.environ["DATABASE_URL"]

    up = checkout.services("up")
    assert up.returncode == 0, up.stderr
    url = checkout.variables()["DATABASE_URL"]
    assert f":{checkout.env['HUSTLE_PG_PORT']}/" in url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        data_directory = conn.execute("SHOW data_directory").fetchone()
        started = conn.execute("SELECT pg_postmaster_start_time()").fetchone()
    assert data_directory is not None
    # PostgreSQL was never given a path through the folder it cannot enter
    assert not data_directory[0].startswith(str(checkout.root.parent))
    assert (checkout.root / ".dev" / "pg").resolve() / "data" == Path(data_directory[0])

    # pgBackRest, run by PostgreSQL as postgres, reaches its configuration, lock and log
    # folders and stores WAL in the local S3
    variables = checkout.variables()
    assert not variables["PGBACKREST_CONFIG"].startswith(str(checkout.root.parent))
    wait_archived(url)

    again = checkout.services("up")
    assert again.returncode == 0, again.stderr
    with psycopg.connect(url) as conn:  # the second `up` reused the running cluster
        assert conn.execute("SELECT pg_postmaster_start_time()").fetchone() == started

    down = checkout.services("down")
    assert down.returncode == 0, down.stderr
    assert not answers(url)
    status = checkout.services("status")
    assert "pg: stopped" in status.stdout, status.stdout
    assert answers(suite_database)  # the suite's own cluster was not touched
