"""Jobs when things go wrong: Redis down at commit, a job that always fails, a redrive."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest

from server.db import Database
from tests.helpers import PrivateRedis, eventually
from tests.jobs_harness import Capture, Worker, job_env, send, start_worker
from tests.processes import ROOT


async def outbox_row(database_url: str, outbox_id: int) -> tuple[object, ...]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT dispatched_at IS NOT NULL, attempts, last_error FROM outbox WHERE id = %s",
            (outbox_id,),
        )
        row = await cur.fetchone()
        assert row is not None
        return tuple(row)


@pytest.fixture
def worker_on_private_redis(
    database_url: str, private_redis: PrivateRedis, capture: Capture
) -> Iterator[Worker]:
    yield from start_worker(job_env(database_url, private_redis.url, capture.url))


async def test_redis_down_at_commit_delivers_after_it_returns(
    db: Database,
    capture: Capture,
    private_redis: PrivateRedis,
    worker_on_private_redis: Worker,
    database_url: str,
) -> None:
    worker = worker_on_private_redis
    await eventually(
        lambda: any(e["msg"] == "outbox relay listening" for e in worker.logged()),
        bool,
        timeout=30,
        what=lambda: worker.process.output,
    )
    private_redis.stop()
    outbox_id = await send(
        db,
        "email.send",
        {"template": "verify_email", "to": "rae@example.com", "params": {"name": "Rae"}},
        {"link": "https://app/v"},
    )
    # the relay tried, Redis refused, and the row is still there, undispatched
    row = await eventually(
        lambda: outbox_row(database_url, outbox_id),
        lambda r: r[2] is not None,
        timeout=30,
        what=lambda: f"the relay's failed attempt\n{worker.process.output}",
    )
    assert row[0] is False
    assert "Connection" in str(row[2])
    assert capture.emails() == []

    private_redis.start()
    [email] = await eventually(
        capture.emails,
        lambda e: len(e) == 1,
        timeout=60,
        what=lambda: f"delivery after Redis returned\n{worker.process.output}",
    )
    assert email["to"] == ["rae@example.com"]
    dispatched = await outbox_row(database_url, outbox_id)
    assert dispatched[0] is True
    assert dispatched[2] is None


def dead_letters(env: dict[str, str], *args: str) -> str:
    import os

    run = subprocess.run(
        [sys.executable, "-m", "server", "dead-letters", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return run.stdout


def metric(text: str, prefix: str) -> float:
    line = next((line for line in text.splitlines() if line.startswith(prefix)), "")
    return float(line.split()[-1]) if line else 0.0


async def test_always_failing_job_is_dead_lettered_visible_and_redriven(
    db: Database, capture: Capture, worker: Worker, database_url: str, redis_url: str
) -> None:
    capture.fail_next(1000, status=500)
    await send(
        db,
        "email.send",
        {"template": "verify_email", "to": "max@example.com", "params": {"name": "Max"}},
        {"link": "https://app/v"},
    )
    # JOB_MAX_RETRIES=2: three attempts, then the dead-letter queue
    await eventually(
        worker.metrics,
        lambda m: metric(m, 'jobs_dead_lettered_total{actor="email.send"}') == 1,
        timeout=60,
        what=lambda: f"the dead letter in /metrics\n{worker.process.output}",
    )
    text = worker.metrics()
    assert metric(text, 'jobs_retries_total{actor="email.send"}') == 2
    assert metric(text, 'jobs_processed_total{actor="email.send",outcome="failure"}') == 3
    assert metric(text, 'jobs_dead_letter_queue_size{queue="messages"}') == 1
    assert capture.state.attempts == 3
    assert capture.emails() == []

    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    listing = dead_letters(env)
    assert "email.send" in listing
    assert "retries=2" in listing

    capture.fail_next(0)
    assert "sent 1 message(s) back" in dead_letters(env, "--redrive")
    [email] = await eventually(
        capture.emails, lambda e: len(e) == 1, timeout=30, what=lambda: worker.process.output
    )
    assert email["to"] == ["max@example.com"]
    assert "no dead-lettered jobs" in dead_letters(env)
