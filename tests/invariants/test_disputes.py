"""Disputes: who opens them, when, who resolves them, and how each resolution settles."""

from __future__ import annotations

import psycopg
import pytest

from tests.invariants.world import World, hx_code, refused


def test_only_poster_or_worker_opens(world: World) -> None:
    task = world.task_in("PROOF_SUBMITTED")
    refused(
        world,
        "HX202",
        "INSERT INTO disputes (task_id, opened_by, reason) VALUES (%s, %s, 'x')",
        task,
        world.user(),
    )
    world.dispute(task, by=world.worker_of(task))
    assert (world.task_state(task), world.escrow_state(task)) == ("DISPUTED", "LOCKED_DISPUTE")


def test_dispute_needs_submitted_proof(world: World) -> None:
    task = world.task_in("ACCEPTED")
    refused(
        world,
        "HX003",
        "INSERT INTO disputes (task_id, opened_by, reason) VALUES (%s, %s, 'x')",
        task,
        world.poster_of(task),
    )


def test_task_is_disputed_only_with_an_open_dispute(world: World) -> None:
    task = world.task_in("PROOF_SUBMITTED")
    refused(world, "HX003", "UPDATE tasks SET state = 'DISPUTED' WHERE id = %s", task)


def test_only_an_admin_resolves(world: World) -> None:
    task = world.task_in("DISPUTED")
    poster = world.poster_of(task)
    refused(
        world,
        "HX202",
        "UPDATE disputes SET state = 'RESOLVED', resolution = 'REFUND', resolved_by = %s, resolved_at = now()"
        " WHERE task_id = %s",
        poster,
        task,
    )


def test_disputed_task_settles_only_through_its_resolution(world: World) -> None:
    task = world.task_in("DISPUTED")
    with pytest.raises(psycopg.Error) as caught, world.transaction():
        world.rows("UPDATE proofs SET state = 'ACCEPTED' WHERE task_id = %s", task)
        world.rows("UPDATE tasks SET state = 'COMPLETED' WHERE id = %s", task)
    assert hx_code(caught.value) == "HX003"
    assert world.task_state(task) == "DISPUTED"


@pytest.mark.parametrize(
    ("resolution", "split", "outcome"),
    [("RELEASE", None, ("COMPLETED", "RELEASED")), ("REFUND", None, ("CANCELLED", "REFUNDED")),
     ("SPLIT", 500, ("COMPLETED", "REFUND_PARTIAL"))],
)  # fmt: skip
def test_each_resolution(
    world: World, resolution: str, split: int | None, outcome: tuple[str, str]
) -> None:
    task = world.task_in("DISPUTED")
    world.resolve(task, resolution, split)
    assert (world.task_state(task), world.escrow_state(task)) == outcome
    assert world.value("SELECT state FROM disputes WHERE task_id = %s", task) == "RESOLVED"


def test_resolution_must_match_the_settlement(world: World) -> None:
    task = world.task_in("DISPUTED")
    admin = world.admin()
    with pytest.raises(psycopg.Error) as caught, world.transaction():
        world.rows(
            "UPDATE disputes SET state = 'RESOLVED', resolution = 'REFUND', resolved_by = %s, resolved_at = now()"
            " WHERE task_id = %s",
            admin,
            task,
        )
        world.rows("UPDATE proofs SET state = 'ACCEPTED' WHERE task_id = %s", task)
        world.rows(
            "UPDATE tasks SET state = 'COMPLETED' WHERE id = %s", task
        )  # a refund does not complete
    assert hx_code(caught.value) == "HX003"


def test_split_releases_less_than_the_whole(world: World) -> None:
    task = world.task_in("DISPUTED")
    refused(
        world,
        "HX301",
        "UPDATE disputes SET state = 'RESOLVED', resolution = 'SPLIT', split_release_cents = 2500,"
        " resolved_by = %s, resolved_at = now() WHERE task_id = %s",
        world.admin(),
        task,
    )
    refused(
        world,
        "HX301",
        "UPDATE disputes SET state = 'RESOLVED', resolution = 'SPLIT', split_release_cents = NULL,"
        " resolved_by = %s, resolved_at = now() WHERE task_id = %s",
        world.admin(),
        task,
    )


def test_resolved_dispute_is_final(world: World) -> None:
    task = world.task_in("DISPUTED")
    world.resolve(task, "RELEASE")
    refused(world, "HX003", "UPDATE disputes SET resolution = 'REFUND' WHERE task_id = %s", task)
    refused(world, "HX102", "DELETE FROM disputes WHERE task_id = %s", task)
