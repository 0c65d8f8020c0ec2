"""XP and trust ledgers: append-only, XP only for released escrows, once, and users.xp_total is
always the ledger's sum (INV-1, INV-5, INV-7)."""

from __future__ import annotations

import pytest

from tests.invariants.world import World, refused


def award_sql() -> str:
    return (
        "INSERT INTO xp_ledger (user_id, task_id, escrow_id)"
        " SELECT t.worker_id, t.id, e.id FROM tasks t JOIN escrows e ON e.task_id = t.id WHERE t.id = %s"
    )


def test_xp_needs_a_released_escrow(world: World) -> None:
    task = world.task_in("PROOF_SUBMITTED")
    assert world.escrow_state(task) == "FUNDED"
    refused(world, "HX101", award_sql(), task)
    world.approve(task)
    world.award_xp(task)


def test_a_split_earns_no_xp(world: World) -> None:
    task = world.task_in("DISPUTED")
    world.resolve(task, "SPLIT", split_release_cents=1200)
    assert (world.task_state(task), world.escrow_state(task)) == ("COMPLETED", "REFUND_PARTIAL")
    refused(world, "HX101", award_sql(), task)


def test_xp_once_per_escrow(world: World) -> None:
    task = world.task_in("COMPLETED")
    world.award_xp(task)
    assert world.value("SELECT count(*) FROM xp_ledger") == 1
    refused(world, "HX103", award_sql(), task)


def test_xp_goes_to_the_tasks_worker_by_the_formula(world: World) -> None:
    task = world.task_in("COMPLETED")
    stranger = world.user()
    refused(
        world,
        "HX101",
        "INSERT INTO xp_ledger (user_id, task_id, escrow_id) SELECT %s, t.id, e.id"
        " FROM tasks t JOIN escrows e ON e.task_id = t.id WHERE t.id = %s",
        stranger,
        task,
    )
    refused(
        world,
        "HX101",
        "INSERT INTO xp_ledger (user_id, task_id, escrow_id, amount) SELECT t.worker_id, t.id, e.id, 5000"
        " FROM tasks t JOIN escrows e ON e.task_id = t.id WHERE t.id = %s",
        task,
    )


@pytest.mark.parametrize("table", ["xp_ledger", "trust_ledger"])
def test_ledgers_are_append_only(world: World, table: str) -> None:
    task = world.task_in("COMPLETED")
    world.award_xp(task)
    assert world.value(f"SELECT count(*) FROM {table}") >= 1
    refused(world, "HX102", f"UPDATE {table} SET created_at = now() - interval '1 day'")
    refused(world, "HX102", f"DELETE FROM {table}")
    refused(world, "HX102", f"TRUNCATE {table}")


def test_xp_total_is_the_ledgers_sum(world: World) -> None:
    worker = world.worker()
    for price in (2500, 12000, 700):
        task = world.task(price=price)
        world.accept(task, worker)
        world.submit_proof(task)
        world.approve(task)
        world.award_xp(task)
    total, level = world.rows("SELECT xp_total, level FROM users WHERE id = %s", worker)[0]
    assert total == world.value("SELECT sum(amount) FROM xp_ledger WHERE user_id = %s", worker)
    assert total == world.value(
        "SELECT xp_after FROM xp_ledger WHERE user_id = %s ORDER BY id DESC LIMIT 1", worker
    )
    assert level == world.value("SELECT level_for_xp(%s)", total)
    refused(world, "HX102", "UPDATE users SET xp_total = xp_total + 1000 WHERE id = %s", worker)
    refused(world, "HX102", "UPDATE users SET level = 10 WHERE id = %s", worker)


def test_entries_record_before_and_after(world: World) -> None:
    worker = world.worker()
    entries = []
    for _ in range(2):
        task = world.task(price=9000)
        world.accept(task, worker)
        world.submit_proof(task)
        world.approve(task)
        entries.append(world.award_xp(task))
    (a1, before1, after1, _, _), (a2, before2, after2, _, _) = entries
    assert (before1, after1) == (0, a1)
    assert (before2, after2) == (after1, after1 + a2)


@pytest.mark.parametrize(
    ("xp", "level"),
    [(0, 1), (99, 1), (100, 2), (299, 2), (300, 3), (700, 4), (1500, 5), (2700, 6), (4500, 7),
     (7000, 8), (10500, 9), (18499, 9), (18500, 10), (10**9, 10)],
)  # fmt: skip
def test_level_thresholds(world: World, xp: int, level: int) -> None:
    assert world.value("SELECT level_for_xp(%s)", xp) == level


@pytest.mark.parametrize(
    ("price_cents", "streak", "xp_total", "award"),
    [
        (2500, 0, 0, 25),  # base = whole dollars
        (500, 0, 0, 10),  # base is at least 10
        (2599, 0, 0, 25),  # whole dollars, not rounded up
        (10000, 3, 0, 110),  # streak 3 → 1.1
        (10000, 7, 0, 120),  # 7 → 1.2
        (10000, 14, 0, 130),  # 14 → 1.3
        (10000, 29, 0, 130),
        (10000, 30, 0, 150),  # 30+ → 1.5
        (10000, 0, 9000, 50),  # decay 1 / (1 + log10(10)) = 0.5
        (1100, 30, 0, 17),  # 11 x 1.5 = 16.5: rounds half away from zero
        (2500, 3, 0, 28),  # 25 x 1.1 = 27.5 → 28
        (500, 0, 10**12, 1),  # at least 1
    ],
)
def test_award_formula(
    world: World, price_cents: int, streak: int, xp_total: int, award: int
) -> None:
    assert world.value("SELECT xp_award(%s, %s, %s)", price_cents, streak, xp_total) == award


def test_every_trust_tier_change_is_recorded(world: World) -> None:
    user = world.user(tier=1)
    admin = world.admin()
    with world.transaction():
        world.rows("SELECT set_config('hustle.actor_id', %s, true)", str(admin))
        world.rows("SELECT set_config('hustle.trust_reason', '10 tasks completed', true)")
        world.rows("UPDATE users SET trust_tier = 2 WHERE id = %s", user)
    world.rows("UPDATE users SET full_name = 'Renamed' WHERE id = %s", user)  # not a tier change
    rows = world.rows(
        "SELECT old_tier, new_tier, reason, actor_id FROM trust_ledger WHERE user_id = %s ORDER BY id",
        user,
    )
    assert rows == [(None, 1, "account created", None), (1, 2, "10 tasks completed", admin)]


def test_trust_entries_are_written_only_by_the_database(world: World) -> None:
    user = world.user()
    refused(
        world,
        "HX102",
        "INSERT INTO trust_ledger (user_id, old_tier, new_tier, reason) VALUES (%s, 1, 4, 'x')",
        user,
    )
