"""INV-17 and the admin set, against raw SQL: a suspended or banned account is eligible for
nothing, cannot take or post a task, cannot open a session (HX405); a ban is final; the last
active admin keeps admin rights (HX206). Each test tries to break the rule and must fail."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import psycopg
import pytest

from tests.invariants.world import World, hx_code, refused


def suspend(world: World, user: uuid.UUID, status: str = "SUSPENDED") -> None:
    world.rows("UPDATE users SET account_status = %s WHERE id = %s", status, user)


@pytest.mark.parametrize("status", ["SUSPENDED", "BANNED"])
def test_a_restricted_worker_is_eligible_for_nothing_and_takes_nothing(
    world: World, status: str
) -> None:
    worker = world.worker()
    task = world.task()
    assert world.value("SELECT is_eligible(%s, %s)", worker, task) is True
    suspend(world, worker, status)
    assert world.value("SELECT is_eligible(%s, %s)", worker, task) is False
    reason = world.value(
        "SELECT ineligibility_reason(t, p) FROM tasks t, capability_profiles p"
        " WHERE t.id = %s AND p.user_id = %s",
        task,
        worker,
    )
    assert reason == "the account is suspended or banned"
    # the feeds' scans (the predicate inlined) find nothing
    feed = world.value(
        "SELECT count(*) FROM capability_profiles p CROSS JOIN LATERAL"
        " (SELECT t.id FROM tasks t WHERE t.state = 'OPEN' AND t.funded_at IS NOT NULL"
        "   AND t.location_state = p.location_state AND is_eligible(t, p)) t WHERE p.user_id = %s",
        worker,
    )
    assert feed == 0
    nearby = world.value(
        "SELECT count(*) FROM nearby_open_tasks(%s, ST_SetSRID(ST_MakePoint(-118.25, 34.05), 4326)::geography,"
        " 16000, NULL, NULL, NULL, 50)",
        worker,
    )
    assert nearby == 0
    refused(
        world,
        "HX405",
        "UPDATE tasks SET state = 'ACCEPTED', worker_id = %s WHERE id = %s",
        worker,
        task,
    )
    assert world.task_state(task) == "OPEN"


def test_a_restricted_account_posts_nothing_and_opens_no_session(world: World) -> None:
    poster = world.user()
    suspend(world, poster)
    with pytest.raises(psycopg.Error) as caught:
        world.task(poster)
    assert hx_code(caught.value) == "HX405"
    refused(
        world,
        "HX405",
        "INSERT INTO sessions (user_id, token_hash, expires_at)"
        " VALUES (%s, %s, now() + interval '1 day')",
        poster,
        b"\x01" * 32,
    )
    world.rows("UPDATE users SET account_status = 'ACTIVE' WHERE id = %s", poster)
    world.task(poster)  # reinstated: posts again


def test_a_ban_is_final_and_standing_changes_are_stamped(world: World) -> None:
    user = world.user()
    assert world.value("SELECT account_status_at FROM users WHERE id = %s", user) is None
    suspend(world, user)
    stamped = world.value("SELECT account_status_at FROM users WHERE id = %s", user)
    assert stamped is not None
    refused(
        world,
        "HX003",
        "UPDATE users SET account_status_at = now() - interval '1 day' WHERE id = %s",
        user,
    )
    suspend(world, user, "BANNED")
    for status in ("ACTIVE", "SUSPENDED"):
        refused(world, "HX003", "UPDATE users SET account_status = %s WHERE id = %s", status, user)
    assert world.value("SELECT account_status FROM users WHERE id = %s", user) == "BANNED"


def test_the_last_active_admin_keeps_admin_rights(world: World) -> None:
    first = world.admin()
    refused(world, "HX206", "UPDATE users SET is_admin = false WHERE id = %s", first)
    refused(world, "HX206", "UPDATE users SET account_status = 'SUSPENDED' WHERE id = %s", first)
    second = world.admin()
    refused(world, "HX206", "UPDATE users SET is_admin = false WHERE is_admin")  # both at once
    world.rows("UPDATE users SET is_admin = false WHERE id = %s", second)  # one of two: fine
    refused(world, "HX206", "UPDATE users SET account_status = 'BANNED' WHERE id = %s", first)
    assert world.value("SELECT count(*) FROM users WHERE is_admin") == 1


def _in_thread(url: str, query: str, *params: object) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(query, params)  # type: ignore[arg-type]
            outcome.append("ok")
        except psycopg.Error as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _wait_until_blocked(world: World, deadline: float = 10.0) -> None:
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        if world.value(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'"
        ):
            return
        time.sleep(0.02)
    raise AssertionError("the racing statement never waited for the suspension")


@pytest.mark.parametrize("race", ["accept", "session"])
def test_a_suspension_wins_its_race_with_an_accept_or_a_sign_in(
    world: World, database_url: str, race: str
) -> None:
    worker = world.worker()
    task = world.task()
    with psycopg.connect(database_url) as suspension:
        suspension.execute(
            "UPDATE users SET account_status = 'SUSPENDED' WHERE id = %s", (worker,)
        )  # not committed yet: the accept (or the session) sees an active account so far
        if race == "accept":
            thread, outcome = _in_thread(
                database_url,
                "UPDATE tasks SET state = 'ACCEPTED', worker_id = %s WHERE id = %s",
                worker,
                task,
            )
        else:
            thread, outcome = _in_thread(
                database_url,
                "INSERT INTO sessions (user_id, token_hash, expires_at)"
                " VALUES (%s, %s, now() + interval '1 day')",
                worker,
                b"\x02" * 32,
            )
        _wait_until_blocked(world)
        suspension.commit()
    thread.join(timeout=10)
    assert len(outcome) == 1, outcome
    assert isinstance(outcome[0], psycopg.Error), outcome
    assert hx_code(outcome[0]) == "HX405"
    assert world.task_state(task) == "OPEN"
    assert world.value("SELECT count(*) FROM sessions WHERE user_id = %s", worker) == 0
