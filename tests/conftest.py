"""Fixtures on real services: PostgreSQL+PostGIS, Redis and the gRPC server itself.

`make test` starts the private services and exports DATABASE_URL / REDIS_URL (the dev
database). Tests never touch that database: a template database with every migration is built
once per session, and each test that asks for `database_url` gets its own copy of it
(`CREATE DATABASE ... TEMPLATE`, ~0.1 s). Redis tests use database 15, emptied per test.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

# Before anything imports prometheus_client: metrics of this test process go to a fresh folder.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="hustle-test-metrics-")

import psycopg
import pytest
import redis
from grpc import aio

from server import logs, migrate
from server.app import HustleServer, Resources
from server.config import Settings, load_settings
from tests.helpers import TEST_BUCKET, TEST_REDIS_DB, WORKER, PrivateRedis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

pytest_plugins = ["tests.jobs_harness"]  # capture, worker, db fixtures for job tests

TEMPLATE_DB = f"hustle_test_template_{WORKER}"


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.exit(f"{name} is not set: run the tests with `make test`", returncode=2)
    return value


def with_path(url: str, path: str) -> str:
    """The same service URL with another path (database name, or Redis db number)."""
    return urlsplit(url)._replace(path=f"/{path}").geturl()


def database_url_for(name: str) -> str:
    return with_path(_required("DATABASE_URL"), name)


def admin_url() -> str:
    return database_url_for("postgres")


@pytest.fixture(scope="session", autouse=True)
def _logging() -> None:
    """Log as the server does (JSON lines carrying the request context); pytest captures it."""
    logs.configure_logging(load_settings(app_env="test", log_format="json", log_level="DEBUG"))


@pytest.fixture(scope="session")
def template_database() -> str:
    """A database with every migration applied, copied for each test."""
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    migrate.apply(database_url_for(TEMPLATE_DB))
    return TEMPLATE_DB


def create_database(template: str | None = None) -> str:
    name = f"hustle_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        if template:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        else:
            conn.execute(f"CREATE DATABASE {name}")
    return name


def drop_database(name: str) -> None:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def shared_database(template_database: str) -> Iterator[str]:
    """One migrated database for the session; `database_url` empties it before each test."""
    name = create_database(template_database)
    yield database_url_for(name)
    drop_database(name)


@pytest.fixture(scope="session")
def _data_tables(shared_database: str) -> list[str]:
    with psycopg.connect(shared_database) as conn:
        return [
            row[0]
            for row in conn.execute(
                "SELECT format('%I', tablename) FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'spatial_ref_sys' AND tablename NOT LIKE '%yoyo%'"
            )
        ]


@pytest.fixture
def database_url(shared_database: str, _data_tables: list[str]) -> str:
    """The migrated test database, emptied of every row (a clean state for this test).

    Rows are deleted with triggers off (session_replication_role = replica), so that even the
    append-only ledgers are emptied; copying a fresh database per test would cost ~0.5 s.
    """
    with psycopg.connect(shared_database, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute("SET session_replication_role = replica")
        for table in _data_tables:
            conn.execute(f"DELETE FROM {table}")  # names come from pg_tables, quoted by format
    return shared_database


@pytest.fixture
def empty_database_url() -> Iterator[str]:
    """A fresh database with no migrations applied."""
    name = create_database()
    yield database_url_for(name)
    drop_database(name)


@pytest.fixture
def redis_url() -> Iterator[str]:
    url = with_path(_required("REDIS_URL"), str(TEST_REDIS_DB))
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    return load_settings(
        app_env="test",
        database_url=database_url,
        redis_url=redis_url,
        grpc_host="127.0.0.1",
        grpc_port=0,
        http_port=0,
        server_processes=1,
        health_check_interval_seconds=0.2,
        shutdown_grace_seconds=5,
        db_pool_min_size=1,
        db_pool_max_size=5,
        log_format="json",
        s3_bucket=TEST_BUCKET,
    )


@pytest.fixture
async def resources(settings: Settings) -> AsyncIterator[Resources]:
    opened = await Resources.open(settings)
    yield opened
    await opened.close()


@pytest.fixture
async def server(settings: Settings, resources: Resources) -> AsyncIterator[HustleServer]:
    """The real server (every interceptor, servicer, health, reflection) in this process."""
    running = HustleServer(settings, resources)
    await running.start()
    yield running
    await running.stop(grace=0)


@pytest.fixture
async def channel(server: HustleServer) -> AsyncIterator[aio.Channel]:
    async with aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as ch:
        yield ch


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of this test's own, which the test may stop and start again."""
    redis_server = PrivateRedis(str(tmp_path))
    redis_server.start()
    yield redis_server
    redis_server.stop()
