"""Backups and point-in-time recovery with real pgBackRest, real WAL archiving and the local S3.

A throwaway checkout's services (scripts/services.sh, as `make run` starts them: PostgreSQL
archiving through pgBackRest into moto via its TLS endpoint) in a folder whose path has
spaces: rows are written, the time T noted, more rows written; restoring to T into a fresh
cluster must give back every table exactly as it was at T, and restoring "latest" (copied
into a new database) every table as it is now; so must restoring the stopped cluster itself
in place, as at 3 a.m. The commands are run as an operator runs them (`python -m server ...`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.checkouts import Checkout, make_checkout, wait_archived
from tests.helpers import free_port

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("runuser") is None,
    reason="scripts/services.sh runs PostgreSQL and pgBackRest as the postgres user: needs root",
)

PG_CTL = "/usr/lib/postgresql/15/bin/pg_ctl"
Fingerprint = dict[str, tuple[int, str]]


def fingerprint(url: str) -> Fingerprint:
    """Every table's row count and a checksum of all its rows."""
    found: Fingerprint = {}
    with psycopg.connect(url) as conn:
        tables = [
            str(row[0])
            for row in conn.execute(
                "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
                " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
                " AND schemaname NOT LIKE 'pg\\_temp\\_%' ORDER BY 1"  # a session's own
            )
        ]
        for table in tables:  # names come from pg_tables, quoted by format()
            row = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
                f" FROM {table} AS t"
            ).fetchone()
            assert row is not None
            found[table] = (int(row[0]), str(row[1]))
    return found


@pytest.fixture(scope="module")
def source() -> Iterator[Checkout]:
    """Services of a throwaway checkout, archiving; its database migrated; a full backup."""
    base = Path(tempfile.mkdtemp(prefix="hustle backup test ", dir="/var/tmp"))
    base.chmod(0o755)  # a folder the postgres user can reach: the cluster stays under .dev/
    checkout = make_checkout(base, {"REDIS_URL": os.environ["REDIS_URL"]})
    try:
        up = checkout.services("up")
        assert up.returncode == 0, up.stderr
        migrated = checkout.server("migrate")
        assert migrated.returncode == 0, migrated.stderr
        backup = checkout.server("backup", "--type", "full")
        assert backup.returncode == 0, backup.stderr
        assert "(full) done" in backup.stdout
        yield checkout
    finally:
        checkout.services("clean")
        shutil.rmtree(base, ignore_errors=True)


def stop_cluster(directory: Path) -> None:
    if (directory / "postmaster.pid").exists():
        subprocess.run(
            ["runuser", "-u", "postgres", "--", PG_CTL, "stop", "-m", "immediate", "-D", directory],
            cwd="/",
            capture_output=True,
            check=False,
        )


@pytest.fixture
def restored(source: Checkout) -> Iterator[list[Path]]:
    """Folders for restored clusters, stopped and deleted afterwards."""
    made: list[Path] = []
    yield made
    for directory in made:
        stop_cluster(directory)
        shutil.rmtree(directory, ignore_errors=True)


def test_restore_to_a_point_in_time_and_to_latest(source: Checkout, restored: list[Path]) -> None:
    url = source.variables()["DATABASE_URL"]
    database = url.rsplit("/", 1)[1]

    seeded = source.server("seed", "--users", "20", "--tasks", "60")
    assert seeded.returncode == 0, seeded.stderr
    at_t = fingerprint(url)
    assert at_t["public.tasks"][0] > 0
    with psycopg.connect(url) as conn:  # T: after the first rows committed, before the others
        row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    t: datetime = row[0]

    reseeded = source.server("seed", "--users", "25", "--tasks", "90", "--seed", "7", "--replace")
    assert reseeded.returncode == 0, reseeded.stderr
    now = fingerprint(url)
    assert now != at_t
    assert now["public.tasks"][0] != at_t["public.tasks"][0]
    wait_archived(url)  # what "latest" can reach: every WAL segment in the repository

    listed = source.server("backup", "list")
    assert listed.returncode == 0, listed.stderr
    assert " full " in listed.stdout
    assert "restorable to any time from" in listed.stdout

    into_t = source.root / ".dev" / "restored at T"
    restored.append(into_t)
    port = free_port()
    back_to_t = source.server(
        "restore", "--to", t.isoformat(), "--into", str(into_t), "--port", str(port)
    )
    assert back_to_t.returncode == 0, back_to_t.stderr
    assert f"127.0.0.1:{port}" in back_to_t.stdout
    assert fingerprint(f"postgresql://postgres@127.0.0.1:{port}/{database}") == at_t

    # latest, copied into a new database beside the live one (a temporary cluster, pg_dump)
    copy = url.rsplit("/", 1)[0] + "/restored_latest"
    latest = source.server("restore", "--to", "latest", "--into", copy)
    assert latest.returncode == 0, latest.stderr
    assert fingerprint(copy) == now
    again = source.server("restore", "--to", "latest", "--into", copy)
    assert again.returncode == 1
    assert "that database has tables" in again.stderr

    # at 3 a.m.: the cluster itself back to T, in place (stopped first), then started again
    data = str(source.root / ".dev" / "pg" / "data")
    stopped = subprocess.run(
        ["runuser", "-u", "postgres", "--", PG_CTL, "stop", "-m", "fast", "-D", data],
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
    )
    assert stopped.returncode == 0, stopped.stderr
    in_place = source.server("restore", "--to", t.isoformat())
    assert in_place.returncode == 0, in_place.stderr
    up = source.services("up")
    assert up.returncode == 0, up.stderr
    assert "recovery done" in up.stderr
    assert fingerprint(url) == at_t
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)

    # the scheduled jobs' function: an incremental backup on top of the full one
    incremental = source.server("backup")
    assert incremental.returncode == 0, incremental.stderr
    assert "(incr) done" in incremental.stdout


def test_a_logical_export_loads_with_pg_restore(source: Checkout, tmp_path: Path) -> None:
    dump = tmp_path / "export.dump"
    exported = source.server("backup", "--logical", "--output", str(dump))
    assert exported.returncode == 0, exported.stderr
    listing = subprocess.run(
        ["/usr/lib/postgresql/15/bin/pg_restore", "--list", str(dump)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "TABLE DATA public tasks" in listing.stdout


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["--to", "yesterday at noon"], "is not a time"),
        (["--to", (datetime.now(UTC) + timedelta(days=1)).isoformat()], "is in the future"),
        (["--to", "2001-01-01T00:00:00Z", "--into", "/var/tmp/x"], "the oldest backup ends at"),
    ],
)
def test_a_restore_that_cannot_be_done_says_why(
    source: Checkout, arguments: list[str], says: str
) -> None:
    refused = source.server("restore", *arguments)
    assert refused.returncode == 1
    assert says in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_restore_into_a_folder_in_use_is_refused(source: Checkout, tmp_path: Path) -> None:
    (tmp_path / "something").write_text("in use")
    refused = source.server("restore", "--to", "latest", "--into", str(tmp_path))
    assert refused.returncode == 1
    assert "not an empty folder" in refused.stderr
    assert (tmp_path / "something").read_text() == "in use"
