"""The legal paths work: every helper of World is itself a walk through the state machines."""

from __future__ import annotations

import pytest

from tests.invariants.world import World


@pytest.mark.parametrize(
    "state",
    ["OPEN", "ACCEPTED", "PROOF_SUBMITTED", "DISPUTED", "COMPLETED", "CANCELLED", "EXPIRED"],
)
def test_each_state_is_reachable(world: World, state: str) -> None:
    task = world.task_in(state)
    assert world.task_state(task) == state


def test_whole_life_with_xp(world: World) -> None:
    task = world.task(price=4200)
    worker = world.accept(task)
    world.submit_proof(task, photos=3)
    world.approve(task)
    assert (world.task_state(task), world.escrow_state(task)) == ("COMPLETED", "RELEASED")
    amount, before, after, level_before, level_after = world.award_xp(task)
    assert (amount, before, after, level_before, level_after) == (42, 0, 42, 1, 1)
    assert world.value("SELECT xp_total FROM users WHERE id = %s", worker) == 42
