"""The notification jobs with a real worker. sms.urgent_fanout: a task becoming OPEN + funded +
urgent queues the fan-out in its transaction; the worker decides each nearby user once (SENT,
or dropped for quiet hours or a cap) and sends the SMS through the real Twilio SDK to the
capture endpoint. notification.purge: rows older than 30 days go, the rest stay."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import dramatiq
import psycopg
import pytest
from dramatiq.brokers.redis import RedisBroker

from tests.helpers import eventually
from tests.invariants.world import World
from tests.jobs_harness import Capture, Worker

_phones = itertools.count(1000)


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield World(conn)


def night_zone() -> str:
    """A zone where it is now 23:MM."""
    offset = (23 - datetime.now(UTC).hour) % 24
    if offset > 14:
        offset -= 24
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def opted_in(
    world: World,
    user: uuid.UUID,
    *,
    lat: float = 34.06,
    lng: float = -118.25,
    cap: int = 3,
    quiet_zone: str | None = None,
) -> str:
    """The user saves a point, verifies a phone and turns urgent SMS on; their phone number.
    Quiet hours are off unless a zone is given (then on, in that zone), so that the real time
    of day decides nothing."""
    phone = f"+1555{next(_phones):07d}"
    world.rows("UPDATE users SET phone = %s, phone_verified_at = now(), time_zone = %s WHERE id = %s",
               phone, quiet_zone, user)  # fmt: skip
    world.rows(
        "INSERT INTO notification_settings (user_id, urgent_location, urgent_daily_cap, quiet_hours_enabled)"
        " VALUES (%s, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s, %s)",
        user, lng, lat, cap, quiet_zone is not None,
    )  # fmt: skip
    world.rows("INSERT INTO notification_preferences VALUES (%s, 'URGENT_TASK_NEARBY', 'SMS', true)",
               user)  # fmt: skip
    return phone


def sent_before(world: World, user: uuid.UUID, tasks: list[uuid.UUID], age: str) -> None:
    for task in tasks:
        world.rows(
            "INSERT INTO urgent_sms_sends (task_id, user_id, outcome, distance_m, created_at)"
            " VALUES (%s, %s, 'SENT', 1000, now() - %s::interval)",
            task, user, age,
        )  # fmt: skip


def fanouts(world: World, task: uuid.UUID) -> list[tuple[object, ...]]:
    return world.rows(
        "SELECT id, done_at IS NOT NULL FROM outbox WHERE job = 'sms.urgent_fanout'"
        " AND payload->>'task_id' = %s ORDER BY id",
        str(task),
    )


def test_the_fanout_is_queued_when_a_task_becomes_open_funded_and_urgent(world: World) -> None:
    urgent = world.task(urgent=True)
    assert len(fanouts(world, urgent)) == 1  # funding it did
    plain = world.task()
    assert fanouts(world, plain) == []
    world.rows("UPDATE tasks SET urgent = true WHERE id = %s", plain)
    assert len(fanouts(world, plain)) == 1  # marked urgent while open and funded
    world.rows("UPDATE tasks SET title = 'Fix the tap' WHERE id = %s", plain)
    assert len(fanouts(world, plain)) == 1  # nothing new: it was urgent already
    unfunded = world.task(urgent=True, funded=False)
    assert fanouts(world, unfunded) == []


async def test_one_sms_to_each_eligible_opted_in_user_in_radius_within_the_caps(
    world: World, capture: Capture, worker: Worker
) -> None:
    earlier = [world.task() for _ in range(20)]  # tasks earlier urgent SMS were about
    sent = world.worker()
    near = opted_in(world, sent)
    far = world.worker()
    opted_in(world, far, lat=34.15)  # about 11 km, outside the default 5 km
    elsewhere = world.worker(state="TX")  # not eligible: another state
    opted_in(world, elsewhere)
    not_opted = world.worker()
    world.rows("INSERT INTO notification_settings (user_id, urgent_location) VALUES"
               " (%s, ST_SetSRID(ST_MakePoint(-118.25, 34.06), 4326)::geography)", not_opted)  # fmt: skip
    suspended = world.worker()
    opted_in(world, suspended)
    world.rows("UPDATE users SET account_status = 'SUSPENDED' WHERE id = %s", suspended)
    own_cap = world.worker()
    opted_in(world, own_cap, cap=1)
    sent_before(world, own_cap, earlier[:1], "2 hours")
    hourly = world.worker()
    opted_in(world, hourly, cap=20)
    sent_before(world, hourly, earlier[:5], "10 minutes")
    daily = world.worker()
    opted_in(world, daily, cap=20)
    sent_before(world, daily, earlier, "2 hours")
    quiet = world.worker()
    opted_in(world, quiet, quiet_zone=night_zone())

    task = world.task(urgent=True, price=8000)
    [(fanout, _)] = fanouts(world, task)
    await eventually(lambda: fanouts(world, task), lambda rows: rows[0][1], timeout=30,
                     what=lambda: worker.process.output)  # fmt: skip
    [sms] = await eventually(capture.sms, lambda s: len(s) == 1, timeout=20,
                             what=lambda: worker.process.output)  # fmt: skip
    assert sms["to"] == near
    assert sms["body"].startswith('Hustle: urgent task 1.1 km away — "Fix the sink" for $80.00.')
    decided = dict(
        world.rows("SELECT user_id, outcome FROM urgent_sms_sends WHERE task_id = %s", task)
    )
    assert decided == {
        sent: "SENT",
        own_cap: "DROPPED_OWN_CAP",
        hourly: "DROPPED_HOURLY_CAP",
        daily: "DROPPED_DAILY_CAP",
        quiet: "DROPPED_QUIET_HOURS",
    }
    told = world.rows("SELECT user_id FROM notifications WHERE kind = 'URGENT_TASK_NEARBY'"
                      " AND task_id = %s", task)  # fmt: skip
    assert sorted(u for (u,) in told) == sorted(decided)  # in-app for each one decided

    def counted() -> str:
        lines = worker.metrics().splitlines()
        return "\n".join(line for line in lines if line.startswith("urgent_sms_total"))

    metrics = await eventually(counted, lambda text: 'outcome="sent"' in text)
    assert 'urgent_sms_total{outcome="sent"} 1.0' in metrics
    assert 'urgent_sms_total{outcome="dropped_quiet_hours"} 1.0' in metrics

    # the job again (the task marked urgent twice, a redelivery): everyone was decided already
    world.rows("INSERT INTO outbox (job, payload) VALUES ('sms.urgent_fanout', %s)",
               json.dumps({"task_id": str(task)}))  # fmt: skip
    await eventually(lambda: fanouts(world, task), lambda rows: len(rows) == 2 and rows[1][1],
                     timeout=30, what=lambda: worker.process.output)  # fmt: skip
    assert len(capture.sms()) == 1
    assert world.value("SELECT count(*) FROM notifications WHERE kind = 'URGENT_TASK_NEARBY'") == 5
    assert fanout != fanouts(world, task)[1][0]


async def test_notification_purge_deletes_what_is_older_than_30_days(
    world: World, worker: Worker, redis_url: str
) -> None:
    user = world.user()
    for age in ("31 days", "30 days 1 minute", "29 days", "1 hour"):
        world.rows("INSERT INTO notifications (user_id, kind, title, created_at)"
                   " VALUES (%s, 'LEVEL_UP', %s, now() - %s::interval)", user, age, age)  # fmt: skip
    producer = RedisBroker(url=redis_url)
    producer.enqueue(dramatiq.Message(queue_name="schedules", actor_name="notification.purge",
                                      args=(), kwargs={}, options={}))  # fmt: skip
    producer.close()
    left = await eventually(
        lambda: world.rows("SELECT title FROM notifications ORDER BY created_at"),
        lambda rows: len(rows) == 2,
        timeout=30,
        what=lambda: worker.process.output,
    )
    assert left == [("29 days",), ("1 hour",)]
