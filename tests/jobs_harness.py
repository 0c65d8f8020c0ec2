"""Fixtures for job tests: the capturing provider endpoint, a real worker, sending outbox rows."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from server import outbox
from server.capture import CaptureState, build_app
from server.config import load_settings
from server.db import Database
from tests.helpers import TEST_BUCKET, free_port
from tests.processes import Process


@dataclass
class Capture:
    url: str
    state: CaptureState

    def emails(self) -> list[dict[str, Any]]:
        return [c for c in self.state.captured if c["kind"] == "email"]

    def sms(self) -> list[dict[str, Any]]:
        return [c for c in self.state.captured if c["kind"] == "sms"]

    def fail_next(self, count: int, status: int = 503) -> None:
        self.state.fail_remaining, self.state.fail_status = count, status


@pytest.fixture
def capture() -> Iterator[Capture]:
    """The SendGrid/Twilio stand-in on a port of its own, served by a thread with its own event
    loop: a worker finishing its jobs at teardown reaches it even while the test's loop is blocked
    (waiting for that worker to exit) or no longer running."""
    state = CaptureState()
    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner = web.AppRunner(build_app(state), access_log=None)

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    failed: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as exc:  # handed to the test below
            failed.append(exc)
            return
        finally:
            ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="capture", daemon=True)
    thread.start()
    if not ready.wait(timeout=30) or failed:
        raise RuntimeError("the capture endpoint did not start") from (failed or [None])[0]
    try:
        yield Capture(f"http://127.0.0.1:{port}", state)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)


@dataclass
class Worker:
    process: Process
    metrics_port: int

    def metrics(self) -> str:
        """The worker's /metrics ('' until its metrics port is up)."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
            ) as r:
                return str(r.read().decode())
        except urllib.error.URLError:
            return ""

    def logged(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.process.lines) if line.startswith("{")]


def job_env(database_url: str, redis_url: str, capture_url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CAPTURE_URL": capture_url,
        "JOB_MIN_BACKOFF_MS": "100",
        "JOB_MAX_BACKOFF_MS": "400",
        "JOB_MAX_RETRIES": "2",
        # long: a message that arrives quickly was woken by NOTIFY, not found by the sweep
        "RELAY_SWEEP_SECONDS": "30",
        "SHUTDOWN_GRACE_SECONDS": "5",
        "DB_POOL_MIN_SIZE": "1",
        "S3_BUCKET": TEST_BUCKET,
        **extra,
    }


def start_worker(env: Mapping[str, str]) -> Iterator[Worker]:
    port = free_port()
    process = Process(
        ["worker", "--processes", "1", "--threads", "2"], {**env, "WORKER_METRICS_PORT": str(port)}
    )
    try:
        yield Worker(process, port)
    finally:
        process.popen.terminate()
        try:
            process.wait(timeout=30)
        finally:
            process.stop()


@pytest.fixture
def worker(database_url: str, redis_url: str, capture: Capture) -> Iterator[Worker]:
    yield from start_worker(job_env(database_url, redis_url, capture.url))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The application's own Database (named SQL, outbox.enqueue) on the test database."""
    settings = load_settings(
        database_url=database_url, redis_url="redis://127.0.0.1:1/0", db_pool_min_size=1
    )
    database = Database.from_settings(settings, name="hustle-test")
    await database.open(wait=True)
    yield database
    await database.close()


async def send(
    db: Database, job: str, payload: Mapping[str, Any], secrets: Mapping[str, Any] | None = None
) -> int:
    async with db.transaction() as tx:
        return await outbox.enqueue(tx, job, payload, secrets=secrets)
