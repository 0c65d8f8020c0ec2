"""The admin log is append-only (INV-16) and an account's standing is one of three (the base
of INV-17): raw SQL cannot rewrite, delete or empty what admins did."""

from __future__ import annotations

import psycopg
import pytest

from tests.invariants.world import World, refused


def logged(world: World, actor: object) -> object:
    rows = world.rows(
        "INSERT INTO admin_actions (actor_id, action, target_kind, target_id, reason)"
        " VALUES (%s, 'user.suspend', 'user', %s, 'spam') RETURNING id",
        actor,
        world.user(),
    )
    return rows[0][0]


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE admin_actions SET reason = 'nothing happened' WHERE id = %s",
        "DELETE FROM admin_actions WHERE id = %s",
    ],
)
def test_an_admin_action_cannot_be_rewritten_or_deleted(world: World, change: str) -> None:
    entry = logged(world, world.user())
    refused(world, "HX102", change, entry)
    assert world.value("SELECT count(*) FROM admin_actions") == 1


def test_the_admin_log_cannot_be_emptied(world: World) -> None:
    logged(world, world.user())
    refused(world, "HX102", "TRUNCATE admin_actions")


def test_an_admin_action_needs_a_reason_and_a_known_actor(world: World) -> None:
    target = world.user()
    refused(
        world,
        "HX301",
        "INSERT INTO admin_actions (actor_id, action, target_kind, target_id, reason)"
        " VALUES (%s, 'user.ban', 'user', %s, '  ')",
        world.user(),
        target,
    )
    with pytest.raises(psycopg.errors.CheckViolation):  # a user actor needs its id
        world.rows(
            "INSERT INTO admin_actions (action, target_kind, target_id, reason)"
            " VALUES ('user.ban', 'user', %s, 'fraud')",
            target,
        )
    cli = world.rows(
        "INSERT INTO admin_actions (actor_label, action, target_kind, target_id, reason)"
        " VALUES ('cli', 'admin.grant', 'user', %s, 'the first admin') RETURNING actor_id",
        target,
    )
    assert cli == [(None,)]


def test_an_account_standing_is_active_suspended_or_banned(world: World) -> None:
    user = world.user()
    assert world.value("SELECT account_active(%s)", user) is True
    refused(world, "HX301", "UPDATE users SET account_status = 'ASLEEP' WHERE id = %s", user)
    world.rows("UPDATE users SET account_status = 'SUSPENDED' WHERE id = %s", user)
    assert world.value("SELECT account_active(%s)", user) is False
