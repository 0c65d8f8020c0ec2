"""`python -m server reload`: a code change reaches a running dev server, and so do migrations.

The reloading server runs from a copy of the project in a temporary folder (with a space in its
path), so the test edits the copy, never the checkout.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
import watchfiles

from hustle.v1 import system_pb2, system_pb2_grpc
from server import reload
from tests.conftest import create_database, database_url_for, drop_database
from tests.helpers import free_port
from tests.processes import ROOT, Process, wait_until_serving


def copy_project(into: Path) -> Path:
    copy = into / "hustle copy"
    for name in reload.WATCHED_DIRS:
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def server_info(port: int) -> system_pb2.GetServerInfoResponse | None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            return system_pb2_grpc.SystemServiceStub(channel).GetServerInfo(
                system_pb2.GetServerInfoRequest(), timeout=2
            )
        except grpc.RpcError:
            return None  # restarting


def wait_for(port: int, process: Process, check: str, accept: object, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        assert process.popen.poll() is None, f"the reloader exited:\n{process.output}"
        info = server_info(port)
        if info is not None:
            last = getattr(info, check)
            if last == accept:
                return
        time.sleep(0.1)
    raise AssertionError(
        f"{check} is {last!r}, not {accept!r}, after {timeout} s:\n{process.output}"
    )


@pytest.fixture
def fresh_database(template_database: str) -> Iterator[str]:
    name = create_database(template_database)
    yield database_url_for(name)
    drop_database(name)


def test_a_change_reaches_the_running_server(
    tmp_path: Path, fresh_database: str, redis_url: str
) -> None:
    copy = copy_project(tmp_path)
    grpc_port = free_port()
    process = Process(
        ["reload", "--migrate", "serve"],
        {
            "DATABASE_URL": fresh_database,
            "REDIS_URL": redis_url,
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": str(grpc_port),
            "HTTP_PORT": str(free_port()),
            "SERVER_PROCESSES": "1",
            "DB_POOL_MIN_SIZE": "1",
            "SHUTDOWN_GRACE_SECONDS": "1",
        },
        cwd=copy,
    )
    try:
        wait_until_serving(grpc_port, process, timeout=90)
        before = server_info(grpc_port)
        assert before is not None
        assert before.version != "0.0.0+reloaded"
        newest = before.schema_version
        assert newest

        # a Python change: the version the server reports
        module = copy / "server" / "logs.py"
        source = module.read_text()
        assert 'return metadata.version("hustle")' in source
        module.write_text(
            source.replace('return metadata.version("hustle")', 'return "0.0.0+reloaded"')
        )
        wait_for(grpc_port, process, "version", "0.0.0+reloaded")

        # a new migration and a changed SQL statement together: applied, then restarted
        (copy / "migrations" / "9999_reload_probe.sql").write_text(
            f"-- depends: {newest}\nCREATE TABLE reload_probe (id integer PRIMARY KEY);\n"
        )
        (copy / "migrations" / "9999_reload_probe.rollback.sql").write_text(
            "DROP TABLE reload_probe;\n"
        )
        queries = copy / "sql" / "system.sql"
        statement = "SELECT migration_id FROM _yoyo_migration ORDER BY migration_id DESC LIMIT 1;"
        assert statement in queries.read_text()
        queries.write_text(
            queries.read_text().replace(
                statement,
                "SELECT 'sql-reloaded:' || migration_id FROM _yoyo_migration"
                " ORDER BY migration_id DESC LIMIT 1;",
            )
        )
        wait_for(grpc_port, process, "schema_version", "sql-reloaded:9999_reload_probe")
        with psycopg.connect(fresh_database) as conn:
            assert conn.execute("SELECT to_regclass('reload_probe') IS NOT NULL").fetchone() == (
                True,
            )
    finally:
        process.popen.terminate()
        process.wait(timeout=60)
        process.stop()
    assert "changed: restarting `serve`" in process.output
    assert "migrations changed: applying them first" in process.output
    assert process.popen.returncode == 0


def test_only_source_files_trigger_a_restart(tmp_path: Path) -> None:
    keep = reload.SourceFilter()
    added = watchfiles.Change.added
    for path in (
        "server/app.py",
        "sql/tasks.sql",
        "templates/email/x.html",
        "templates/sms/x.txt",
        "migrations/0001_x.sql",
        ".env.local",
    ):
        assert keep(added, str(ROOT / path)), path
    for path in (
        "server/__pycache__/app.cpython-311.pyc",
        "server/.app.py.swp",
        "README.md",
        "server/app.py~",
        "bench/results/x.json",
    ):
        assert not keep(added, str(ROOT / path)), path
    assert reload.touches_migrations([str(ROOT / "migrations" / "0099_x.sql")])
    assert not reload.touches_migrations([str(ROOT / "sql" / "system.sql")])
    assert {p.name for p in reload.watched_paths()} >= {
        "server",
        "jobs",
        "sql",
        "templates",
        "migrations",
    }
