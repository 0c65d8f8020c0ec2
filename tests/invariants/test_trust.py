"""Trust tiers (INV-15): raw SQL cannot change a tier without a reason, and every change has its
ledger row; the events that move tiers queue trust.evaluate in their own transaction."""

from __future__ import annotations

import uuid

from tests.invariants.world import World, refused


def evaluations(world: World, user: uuid.UUID) -> list[str]:
    rows = world.rows(
        "SELECT payload->>'event' FROM outbox WHERE job = 'trust.evaluate' AND payload->>'user_id' = %s"
        " ORDER BY id",
        str(user),
    )
    return [r[0] for r in rows]


def test_a_tier_changes_only_with_a_reason(world: World) -> None:
    user = world.user(tier=2)
    refused(world, "HX104", "UPDATE users SET trust_tier = 3 WHERE id = %s", user)
    world.rows("SET hustle.trust_reason = '   '")  # blank is no reason
    refused(world, "HX104", "UPDATE users SET trust_tier = 3 WHERE id = %s", user)
    world.rows("RESET hustle.trust_reason")
    assert world.value("SELECT trust_tier FROM users WHERE id = %s", user) == 2
    with world.transaction():
        world.rows("SELECT set_config('hustle.trust_reason', 'promoted by hand', true)")
        world.rows("UPDATE users SET trust_tier = 3 WHERE id = %s", user)
    assert world.rows(
        "SELECT old_tier, new_tier, reason FROM trust_ledger WHERE user_id = %s ORDER BY id", user
    ) == [(None, 2, "account created"), (2, 3, "promoted by hand")]
    # the reason lasts one transaction only
    refused(world, "HX104", "UPDATE users SET trust_tier = 4 WHERE id = %s", user)


def test_other_changes_of_a_user_need_no_reason(world: World) -> None:
    user = world.user(tier=3)
    world.rows("UPDATE users SET full_name = 'Renamed', trust_tier = 3 WHERE id = %s", user)
    assert world.value("SELECT count(*) FROM trust_ledger WHERE user_id = %s", user) == 1


def test_a_ledger_row_is_never_made_by_hand_or_changed(world: World) -> None:
    user = world.user()
    refused(world, "HX102",
            "INSERT INTO trust_ledger (user_id, old_tier, new_tier, reason) VALUES (%s, 1, 4, 'x')", user)  # fmt: skip
    refused(world, "HX102", "UPDATE trust_ledger SET new_tier = 4 WHERE user_id = %s", user)
    refused(world, "HX102", "DELETE FROM trust_ledger WHERE user_id = %s", user)


def test_what_happens_to_a_worker_queues_an_evaluation(world: World) -> None:
    done = world.task_in("COMPLETED")
    worker = world.worker_of(done)
    assert evaluations(world, worker) == ["completed"]

    lost = world.task_in("DISPUTED")
    world.resolve(lost, "REFUND")
    assert evaluations(world, world.worker_of(lost)) == ["dispute_lost"]

    split = world.task_in("DISPUTED")
    world.resolve(split, "SPLIT", split_release_cents=1000)
    assert evaluations(world, world.worker_of(split)) == ["completed"]

    no_show = world.task()
    absent = world.accept(no_show)
    with world.transaction():
        world.rows(
            "UPDATE tasks SET state = 'CANCELLED', cancel_reason = 'never came', cancelled_by = poster_id"
            " WHERE id = %s",
            no_show,
        )
        world.rows("UPDATE escrows SET state = 'REFUNDED' WHERE task_id = %s", no_show)
    assert evaluations(world, absent) == ["no_show"]

    by_admin = world.task()
    spared = world.accept(by_admin)
    with world.transaction():
        world.rows(
            "UPDATE tasks SET state = 'CANCELLED', cancel_reason = 'policy', cancelled_by = %s WHERE id = %s",
            world.admin(),
            by_admin,
        )
        world.rows("UPDATE escrows SET state = 'REFUNDED' WHERE task_id = %s", by_admin)
    assert evaluations(world, spared) == []  # an admin's cancellation is not a no-show


def test_id_and_phone_verification_changes_queue_an_evaluation(world: World) -> None:
    user = world.user()
    world.verification(user, "ID", approve_by=world.admin())
    world.verification(user, "INSURANCE", approve_by=world.admin())  # not about tiers
    world.rows(
        "UPDATE users SET phone = '+14155550123', phone_verified_at = now() WHERE id = %s", user
    )
    assert evaluations(world, user) == ["verification", "phone"]
