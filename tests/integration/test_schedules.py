"""The periodic jobs (run by the worker when the scheduler sends them) and the scheduler."""

from __future__ import annotations

import json
from collections.abc import Iterator

import dramatiq
import psycopg
import pytest
from dramatiq.brokers.redis import RedisBroker

from tests.helpers import eventually
from tests.invariants.world import World
from tests.jobs_harness import Capture, Worker, job_env
from tests.processes import Process


def trigger(redis_url: str, actor: str) -> None:
    """Send a periodic actor's message, as the scheduler does at its time."""
    producer = RedisBroker(url=redis_url)
    producer.enqueue(
        dramatiq.Message(queue_name="schedules", actor_name=actor, args=(), kwargs={}, options={})
    )
    producer.close()


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield World(conn)


async def test_task_expire(world: World, worker: Worker, redis_url: str) -> None:
    due = world.task()  # funded
    world.rows(
        "UPDATE tasks SET deadline = created_at + interval '1 millisecond' WHERE id = %s", due
    )
    not_due = world.task()
    assert (world.task_state(due), world.escrow_state(due)) == ("OPEN", "FUNDED")
    trigger(redis_url, "task.expire")
    await eventually(
        lambda: world.task_state(due),
        lambda s: s == "EXPIRED",
        timeout=30,
        what=lambda: worker.process.output,
    )
    assert world.escrow_state(due) == "REFUNDED"
    assert world.task_state(not_due) == "OPEN"
    kinds = world.rows(
        "SELECT kind FROM notifications WHERE user_id = %s ORDER BY kind", world.poster_of(due)
    )
    assert kinds == [("ESCROW_REFUNDED",), ("TASK_EXPIRED",)]


async def test_verification_expire_tells_the_user_and_recomputes(
    world: World, worker: Worker, capture: Capture, redis_url: str
) -> None:
    user = world.user()
    world.rows("UPDATE users SET email = 'ivy@example.com', full_name = 'Ivy' WHERE id = %s", user)
    # the email below is sent at once whatever the time of day (quiet hours would hold it)
    world.rows(
        "INSERT INTO notification_settings (user_id, quiet_hours_enabled) VALUES (%s, false)", user
    )
    record = world.verification(user, "INSURANCE", expires_in="2 seconds", approve_by=world.admin())
    profile = await eventually(
        lambda: world.rows(
            "SELECT insurance_valid_until IS NOT NULL, version FROM capability_profiles WHERE user_id = %s",
            user,
        ),
        lambda r: bool(r) and r[0][0],
        timeout=30,
        what=lambda: f"the recompute after approval\n{worker.process.output}",
    )
    await eventually(
        lambda: world.value(
            "SELECT expires_at <= now() FROM verification_records WHERE id = %s", record
        ),
        bool,
        timeout=10,
        what="the credential's expiry to pass",
    )
    trigger(redis_url, "verification.expire")
    [email] = await eventually(
        capture.emails, lambda e: len(e) == 1, timeout=30, what=lambda: worker.process.output
    )
    assert email["to"] == ["ivy@example.com"]
    assert email["subject"] == "Your insurance has expired"
    assert world.value("SELECT state FROM verification_records WHERE id = %s", record) == "EXPIRED"
    assert (
        world.value("SELECT kind FROM notifications WHERE user_id = %s", user)
        == "VERIFICATION_EXPIRED"
    )
    await eventually(
        lambda: world.rows(
            "SELECT insurance_valid_until IS NULL, version FROM capability_profiles WHERE user_id = %s",
            user,
        ),
        lambda r: r[0][0] and r[0][1] == profile[0][1] + 1,
        timeout=30,
        what="the recompute after expiry",
    )


async def test_capability_recompute_runs_once_per_outbox_row(
    world: World, worker: Worker, database_url: str
) -> None:
    user = world.worker()
    version = world.value("SELECT version FROM capability_profiles WHERE user_id = %s", user)
    world.verification(user, "TRADE_LICENSE", trade="plumber", approve_by=world.admin())
    await eventually(
        lambda: world.rows(
            "SELECT trades ? 'plumber', version FROM capability_profiles WHERE user_id = %s", user
        ),
        lambda r: r[0] == (True, version + 1),
        timeout=30,
        what=lambda: worker.process.output,
    )
    runs = await eventually(
        lambda: world.rows("SELECT count(*) FROM job_runs WHERE actor = 'capability.recompute'"),
        lambda r: r[0][0] == 2,
        timeout=30,  # the PENDING submission and the approval
    )
    assert runs == [(2,)]


def test_scheduler_starts_lists_its_jobs_and_stops(database_url: str, redis_url: str) -> None:
    process = Process(["scheduler"], job_env(database_url, redis_url, "http://127.0.0.1:1"))
    try:
        import time

        deadline = time.monotonic() + 30
        while not any("outbox.sweep" in line for line in list(process.lines)):
            assert process.popen.poll() is None, process.output
            assert time.monotonic() < deadline, process.output
            time.sleep(0.1)
        process.popen.terminate()
        assert process.wait(timeout=15) == 0
    finally:
        process.stop()
    listed = " ".join(json.loads(line)["msg"] for line in process.lines if line.startswith("{"))
    for actor in ("task.expire", "verification.expire", "outbox.sweep", "outbox.purge"):
        assert actor in listed
