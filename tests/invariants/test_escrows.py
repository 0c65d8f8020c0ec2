"""Escrows: their state machine, a fixed amount, frozen outcomes, and agreement with the task
(INV-2, INV-4, INV-6, INV-10)."""

from __future__ import annotations

import itertools
import uuid

import psycopg
import pytest

from tests.invariants.world import World, hx_code, refused

ESCROW_STATES = ("PENDING", "FUNDED", "LOCKED_DISPUTE", "RELEASED", "REFUNDED", "REFUND_PARTIAL")
ALLOWED = {
    ("PENDING", "FUNDED"),
    ("FUNDED", "LOCKED_DISPUTE"), ("FUNDED", "RELEASED"), ("FUNDED", "REFUNDED"),
    ("LOCKED_DISPUTE", "RELEASED"), ("LOCKED_DISPUTE", "REFUNDED"), ("LOCKED_DISPUTE", "REFUND_PARTIAL"),
}  # fmt: skip
SETTLED = {"RELEASED", "REFUNDED", "REFUND_PARTIAL"}


def task_with_escrow_in(world: World, state: str) -> uuid.UUID:
    if state == "PENDING":
        return world.task(funded=False)
    if state == "FUNDED":
        return world.task()
    if state == "LOCKED_DISPUTE":
        return world.task_in("DISPUTED")
    if state == "RELEASED":
        return world.task_in("COMPLETED")
    if state == "REFUNDED":
        return world.task_in("CANCELLED")
    task = world.task_in("DISPUTED")
    world.resolve(task, "SPLIT", split_release_cents=1000)
    return task


@pytest.mark.parametrize(
    ("source", "target"),
    sorted(
        (a, b)
        for a, b in itertools.product(ESCROW_STATES, ESCROW_STATES)
        if a != b and (a, b) not in ALLOWED
    ),
)
def test_forbidden_escrow_transition_is_refused(world: World, source: str, target: str) -> None:
    task = task_with_escrow_in(world, source)
    assert world.escrow_state(task) == source
    refused(
        world,
        "HX002" if source in SETTLED else "HX003",
        "UPDATE escrows SET state = %s, payment_reference = 'pi_x' WHERE task_id = %s",
        target,
        task,
    )
    assert world.escrow_state(task) == source


def test_the_escrow_machine_is_the_domains(world: World) -> None:
    pairs = {
        (a, b)
        for a, b in itertools.product(ESCROW_STATES, ESCROW_STATES)
        if world.value("SELECT escrow_transition_allowed(%s, %s)", a, b)
    }
    assert pairs == ALLOWED


@pytest.mark.parametrize("state", ["PENDING", "FUNDED", "LOCKED_DISPUTE"])
def test_amount_never_changes(world: World, state: str) -> None:
    task = task_with_escrow_in(world, state)
    assert world.escrow_state(task) == state
    refused(
        world,
        "HX004",
        "UPDATE escrows SET amount_cents = amount_cents + 100 WHERE task_id = %s",
        task,
    )


def test_escrow_holds_exactly_the_price(world: World) -> None:
    poster = world.user()
    with pytest.raises(psycopg.Error) as caught, world.transaction():
        task = world.value(
            "INSERT INTO tasks (poster_id, title, category, price_cents, address, location_state, location, deadline)"
            " VALUES (%s, 't', 'CLEANING', 1000, 'a', 'CA', 'POINT(-118 34)', now() + interval '1 day') RETURNING id",
            poster,
        )
        world.rows(
            "INSERT INTO escrows (task_id, amount_cents, currency) VALUES (%s, 900, 'USD')", task
        )
    assert hx_code(caught.value) == "HX004"


@pytest.mark.parametrize("state", sorted(SETTLED))
def test_settled_escrow_is_frozen(world: World, state: str) -> None:
    task = task_with_escrow_in(world, state)
    assert world.escrow_state(task) == state
    refused(
        world, "HX002", "UPDATE escrows SET payment_reference = 'pi_other' WHERE task_id = %s", task
    )


def test_release_needs_a_completed_task(world: World) -> None:
    task = world.task_in("PROOF_SUBMITTED")
    assert (world.task_state(task), world.escrow_state(task)) == ("PROOF_SUBMITTED", "FUNDED")
    refused(world, "HX005", "UPDATE escrows SET state = 'RELEASED' WHERE task_id = %s", task)


def test_funding_needs_an_open_task_and_a_reference(world: World) -> None:
    task = world.task(funded=False)
    refused(
        world, "HX301", "UPDATE escrows SET state = 'FUNDED' WHERE task_id = %s", task
    )  # no reference
    world.cancel(task)
    assert (world.task_state(task), world.escrow_state(task)) == ("CANCELLED", "PENDING")
    refused(
        world,
        "HX003",
        "UPDATE escrows SET state = 'FUNDED', payment_reference = 'pi' WHERE task_id = %s",
        task,
    )


def test_completed_task_with_unreleased_escrow_is_refused_at_commit(world: World) -> None:
    task = world.task_in("PROOF_SUBMITTED")
    with pytest.raises(psycopg.Error) as caught, world.transaction():
        world.rows("UPDATE proofs SET state = 'ACCEPTED' WHERE task_id = %s", task)
        world.rows("UPDATE tasks SET state = 'COMPLETED' WHERE id = %s", task)
        # ... and the service forgets to release the escrow
    assert hx_code(caught.value) == "HX003"
    assert "escrow is FUNDED" in str(caught.value)
    assert world.task_state(task) == "PROOF_SUBMITTED"


def test_cancelled_task_keeps_no_funded_escrow(world: World) -> None:
    task = world.task()
    with pytest.raises(psycopg.Error) as caught, world.transaction():
        world.rows("UPDATE tasks SET state = 'CANCELLED' WHERE id = %s", task)
    assert hx_code(caught.value) == "HX003"
    world.cancel(task)
    assert world.escrow_state(task) == "REFUNDED"


def test_task_without_escrow_is_refused_at_commit(world: World) -> None:
    with pytest.raises(psycopg.Error) as caught, world.transaction():
        world.rows(
            "INSERT INTO tasks (poster_id, title, category, price_cents, address, location_state, location, deadline)"
            " VALUES (%s, 't', 'CLEANING', 1000, 'a', 'CA', 'POINT(-118 34)', now() + interval '1 day')",
            world.user(),
        )
    assert hx_code(caught.value) == "HX003"


def test_one_escrow_per_task(world: World) -> None:
    task = world.task(funded=False)
    refused(
        world,
        "HX303",
        "INSERT INTO escrows (task_id, amount_cents, currency) VALUES (%s, 2500, 'USD')",
        task,
    )


def test_escrows_are_never_deleted(world: World) -> None:
    task = world.task()
    refused(world, "HX102", "DELETE FROM escrows WHERE task_id = %s", task)


def test_split_adds_up(world: World) -> None:
    task = task_with_escrow_in(world, "REFUND_PARTIAL")
    assert world.rows(
        "SELECT released_cents, refunded_cents, amount_cents FROM escrows WHERE task_id = %s", task
    ) == [(1000, 1500, 2500)]
