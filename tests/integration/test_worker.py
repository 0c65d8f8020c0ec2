"""A real Dramatiq worker on Redis runs a real actor whose effect shows in Postgres."""

from __future__ import annotations

import json
from collections.abc import Iterator

import dramatiq
import psycopg
import pytest
from dramatiq.brokers.redis import RedisBroker

from tests.helpers import eventually
from tests.processes import Process


@pytest.fixture
def worker(database_url: str, redis_url: str) -> Iterator[Process]:
    process = Process(
        ["worker", "--processes", "1", "--threads", "2"],
        {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "SHUTDOWN_GRACE_SECONDS": "5"},
    )
    yield process
    process.popen.terminate()
    try:
        process.wait(timeout=30)
    finally:
        process.stop()


async def test_outbox_purge_runs_in_the_worker(
    database_url: str, redis_url: str, worker: Process
) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO outbox (job, created_at, dispatched_at, done_at) VALUES "
            "('email.send', now() - interval '30 days', now() - interval '30 days', now() - interval '30 days'),"  # old: purged
            "('email.send', now() - interval '1 day', now() - interval '1 day', now() - interval '1 day'),"  # recent: kept
            "('email.send', now() - interval '30 days', NULL, NULL),"  # never dispatched: kept
            "('email.send', now() - interval '30 days', now() - interval '30 days', NULL)"  # never done: kept
        )
        cur = await conn.execute("SELECT count(*) FROM outbox")
        assert (await cur.fetchone()) == (4,)

        # Enqueue the way any producer would: a message on the Redis broker.
        sender = RedisBroker(url=redis_url)
        sender.enqueue(
            dramatiq.Message(
                queue_name="maintenance",
                actor_name="outbox.purge",
                args=(7,),
                kwargs={},
                options={},
            )
        )
        sender.close()

        async def remaining() -> list[tuple[str, bool]]:
            cur = await conn.execute(
                "SELECT created_at::date::text, dispatched_at IS NULL FROM outbox ORDER BY id"
            )
            return [(r[0], r[1]) for r in await cur.fetchall()]

        rows = await eventually(
            remaining, lambda r: len(r) == 3, timeout=60, what=f"the purge\n{worker.output}"
        )
    assert [dispatched_is_null for _, dispatched_is_null in rows] == [False, True, False]

    def purge_logs() -> list[dict[str, object]]:
        logged = [json.loads(line) for line in worker.lines if line.startswith("{")]
        return [entry for entry in logged if entry["msg"] == "outbox purged"]

    # The line is written after the commit, and read from the worker's pipe by another thread.
    purged = await eventually(purge_logs, bool, timeout=15, what=lambda: worker.output)
    assert len(purged) == 1
    assert purged[0]["job"] == "outbox.purge"
    assert purged[0]["purged"] == 1
