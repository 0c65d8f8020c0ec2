"""trust.evaluate through the real worker, case by case: each user's history is written in the
database, the job is sent through the outbox, and the tier moves (or not) one step at a time,
each change with its ledger row, its notification and the capability profile recomputed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import dramatiq
import psycopg
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from server.db import Database
from tests.helpers import eventually
from tests.invariants.world import World
from tests.jobs_harness import Worker, send


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield World(conn)


@dataclass(frozen=True)
class Case:
    name: str
    tier: int
    path: tuple[int, ...]  # the tiers it moves through, in order
    event: str | None = None
    id_ok: bool = True
    phone_ok: bool = True
    age_days: int = 60
    completed: int = 0
    late: int = 0
    stars: tuple[int, ...] = ()  # revealed ratings of their work
    demoted_days_ago: int | None = None


CASES = [
    Case("VERIFIED at 5 completed with ID and phone", 1, (2,), completed=5),
    Case("no ID: stays", 1, (), completed=5, id_ok=False),
    Case("4 completed: stays", 1, (), completed=4),
    Case("one step at a time to TRUSTED", 1, (2, 3), completed=20),
    Case("TRUSTED needs 95 % on time", 2, (), completed=20, late=2),
    Case("TRUSTED needs an account of 7 days", 2, (), completed=20, age_days=3),
    Case("ELITE", 3, (4,), completed=100, stars=(5, 5, 5, 5, 4)),
    Case("ELITE needs 4.8", 3, (), completed=100, stars=(5, 5, 4, 4)),
    Case("a dispute lost: one down", 3, (2,), event="dispute_lost", completed=20),
    Case("a no-show at the floor: stays", 1, (), event="no_show", completed=5, id_ok=False),
    Case("cool-down after a demotion", 1, (), completed=5, demoted_days_ago=0),
    Case("the cool-down is over", 1, (2,), completed=5, demoted_days_ago=31),
    Case("a lapsed ID caps at ROOKIE", 3, (1,), completed=20, id_ok=False),
    Case("a lapsed phone caps at ROOKIE", 2, (1,), completed=5, phone_ok=False),
]


def make(world: World, admin: uuid.UUID, case: Case) -> uuid.UUID:
    """A worker with the case's history, written directly (triggers off for the past)."""
    start_tier = case.tier + 1 if case.demoted_days_ago is not None else case.tier
    user = world.user(tier=start_tier)
    if case.id_ok:  # (its approval queues an evaluation too: the outcome is the same)
        world.verification(user, "ID", approve_by=admin)
    if case.demoted_days_ago is not None:
        with world.transaction():
            world.rows("SELECT set_config('hustle.trust_reason', 'demoted by an admin', true)")
            world.rows("UPDATE users SET trust_tier = %s WHERE id = %s", case.tier, user)
    poster = world.user()
    # the past, with triggers off
    world.rows("SET session_replication_role = replica")
    try:
        world.rows(
            "UPDATE trust_ledger SET created_at = now() - make_interval(days => %s)"
            " WHERE user_id = %s AND old_tier IS NOT NULL",
            case.demoted_days_ago or 0,
            user,
        )
        world.rows(
            "UPDATE users SET created_at = now() - make_interval(days => %s), phone = '+14155550100',"
            " phone_verified_at = CASE WHEN %s THEN now() END WHERE id = %s",
            case.age_days,
            case.phone_ok,
            user,
        )
        world.rows(
            "INSERT INTO tasks (poster_id, worker_id, title, category, price_cents, address, location_state,"
            " location, deadline, state, created_at, accepted_at, proof_submitted_at, completed_at)"
            " SELECT %s, %s, 'Job ' || i, 'PLUMBING', 2500, '1 Main St', 'CA',"
            " ST_SetSRID(ST_MakePoint(-118.25, 34.05), 4326)::geography, now() - interval '10 days',"
            " 'COMPLETED', now() - interval '12 days', now() - interval '12 days',"
            " now() - CASE WHEN i <= %s THEN interval '9 days' ELSE interval '11 days' END,"
            " now() - interval '9 days'"
            " FROM generate_series(1, %s) i",
            poster,
            user,
            case.late,
            case.completed,
        )
        world.rows(
            "INSERT INTO ratings (task_id, rater_id, ratee_id, ratee_role, stars, created_at, revealed_at)"
            " SELECT t.id, t.poster_id, t.worker_id, 'WORKER', s.stars, now() - interval '8 days', now()"
            " FROM (SELECT id, poster_id, worker_id, row_number() OVER (ORDER BY id) AS n FROM tasks"
            "       WHERE worker_id = %s) t"
            " JOIN unnest(%s::int[]) WITH ORDINALITY AS s(stars, n) ON s.n = t.n",
            user,
            list(case.stars),
        )
    finally:
        world.rows("SET session_replication_role = origin")
    world.profile(user)
    return user


@pytest.fixture
def users(world: World) -> dict[str, uuid.UUID]:
    """Every case's worker, made before the job worker starts."""
    admin = world.admin()
    return {case.name: make(world, admin, case) for case in CASES}


async def test_the_rules_through_the_job(
    world: World, users: dict[str, uuid.UUID], worker: Worker, db: Database, redis_url: str
) -> None:
    cache = redis.Redis.from_url(redis_url)
    for case in CASES:
        await send(db, "trust.evaluate", {"user_id": str(users[case.name]), "event": case.event})

    def waiting() -> int:
        return int(
            world.value(
                "SELECT count(*) FROM outbox WHERE job = 'trust.evaluate' AND done_at IS NULL"
            )
        )

    await eventually(waiting, lambda n: n == 0, timeout=30, what=lambda: worker.process.output)
    for case in CASES:
        user = users[case.name]
        changes = world.rows(
            "SELECT old_tier, new_tier, reason, actor_id FROM trust_ledger"
            " WHERE user_id = %s AND old_tier IS NOT NULL AND reason <> 'demoted by an admin' ORDER BY id",
            user,
        )
        assert [c[1] for c in changes] == list(case.path), (case.name, changes)
        tiers = [case.tier, *case.path]
        for (old, new, reason, actor), before, after in zip(
            changes, tiers[:-1], tiers[1:], strict=True
        ):
            assert (old, new, actor) == (before, after, None), case.name
            assert reason.startswith(("promoted: ", "demoted: ", "capped at Rookie: ")), reason
        final = tiers[-1]
        assert world.value("SELECT trust_tier FROM users WHERE id = %s", user) == final, case.name
        assert (
            world.value("SELECT trust_tier FROM capability_profiles WHERE user_id = %s", user)
            == final
        )
        told = world.rows(
            "SELECT data->>'new_tier' FROM notifications WHERE user_id = %s AND kind = 'TRUST_TIER_CHANGED'"
            " ORDER BY created_at, id",
            user,
        )
        assert [int(t[0]) for t in told] == list(case.path), case.name
        if case.path:  # the user's feed pages are keyed by the new profile version (Redis)
            version = world.value(
                "SELECT version FROM capability_profiles WHERE user_id = %s", user
            )
            entry = cache.get(f"feeduser:{user}")
            assert entry is not None, case.name
            assert entry.decode().split("|")[0] == str(version), case.name


async def test_the_daily_sweep_finds_who_may_move(
    world: World, worker: Worker, redis_url: str
) -> None:
    admin = world.admin()
    lapsed = make(world, admin, Case("lapsed", 3, (1,), completed=20, id_ok=False))
    ready = make(world, admin, Case("ready", 1, (2,), completed=5, demoted_days_ago=31))
    idle = make(world, admin, Case("idle", 1, (), completed=2))
    producer = RedisBroker(url=redis_url)
    producer.enqueue(dramatiq.Message(queue_name="schedules", actor_name="trust.sweep", args=(),
                                      kwargs={}, options={}))  # fmt: skip
    producer.close()

    def tiers() -> list[int]:
        return [
            world.value("SELECT trust_tier FROM users WHERE id = %s", u)
            for u in (lapsed, ready, idle)
        ]

    await eventually(
        tiers, lambda t: t == [1, 2, 1], timeout=30, what=lambda: worker.process.output
    )
    reasons = world.rows(
        "SELECT reason FROM trust_ledger WHERE user_id = ANY(%s) AND old_tier IS NOT NULL"
        " AND reason <> 'demoted by an admin' ORDER BY id",
        [lapsed, ready, idle],
    )
    assert sorted(r[0].split(":")[0] for r in reasons) == ["capped at Rookie", "promoted"]
