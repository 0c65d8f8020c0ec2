"""The eligibility predicate, rule by rule: each rule alone makes a worker ineligible."""

from __future__ import annotations

import uuid

import pytest

from tests.invariants.world import World


def eligible(world: World, worker: uuid.UUID, task: uuid.UUID) -> bool:
    return bool(world.value("SELECT is_eligible(%s::uuid, %s::uuid)", worker, task))


def test_baseline_is_eligible(world: World) -> None:
    assert eligible(world, world.worker(), world.task())


def test_same_state(world: World) -> None:
    task = world.task(state="CA")
    assert eligible(world, world.worker(state="CA"), task)
    assert not eligible(world, world.worker(state="NV"), task)


@pytest.mark.parametrize(
    ("tier", "required", "ok"), [(1, 2, False), (2, 2, True), (4, 3, True), (3, 4, False)]
)
def test_trust_tier(world: World, tier: int, required: int, ok: bool) -> None:
    assert eligible(world, world.worker(tier=tier), world.task(tier=required)) is ok


def test_required_trade(world: World) -> None:
    task = world.task(trade="electrician")
    assert not eligible(world, world.worker(), task)
    assert not eligible(world, world.worker(trades=("plumber",)), task)
    assert eligible(world, world.worker(trades=("electrician",)), task)


def test_insurance(world: World) -> None:
    task = world.task(insurance=True)
    assert not eligible(world, world.worker(), task)
    assert eligible(world, world.worker(insurance=True), task)


def test_background_check(world: World) -> None:
    task = world.task(background=True)
    assert not eligible(world, world.worker(), task)
    assert eligible(world, world.worker(background=True), task)


def test_task_must_be_open_funded_and_unassigned(world: World) -> None:
    worker = world.worker()
    assert not eligible(world, worker, world.task(funded=False))
    taken = world.task()
    world.accept(taken)
    assert not eligible(world, worker, taken)
    assert not eligible(world, worker, world.task_in("CANCELLED"))


def test_not_the_poster(world: World) -> None:
    worker = world.worker()
    assert not eligible(world, worker, world.task(poster=worker))


def test_no_profile_no_eligibility(world: World) -> None:
    assert not eligible(world, world.user(), world.task())


@pytest.mark.parametrize("credential", ["trade", "insurance", "background"])
def test_an_expired_credential_stops_at_once(world: World, credential: str) -> None:
    """The profile carries each credential's expiry and the predicate compares it with now():
    a profile whose credential ran out a second ago no longer grants the task."""
    task = world.task(
        trade="electrician" if credential == "trade" else None,
        insurance=credential == "insurance",
        background=credential == "background",
    )
    worker = world.worker(trades=("electrician",), insurance=True, background=True)
    assert eligible(world, worker, task)
    query = (
        "SELECT is_eligible(t, ROW(p.user_id, p.location_state, p.trust_tier, {trades}, {insurance}, {background},"
        " p.id_verified, p.version, p.recomputed_at)::capability_profiles)"
        " FROM tasks t, capability_profiles p WHERE t.id = %s AND p.user_id = %s"
    )
    past = "now() - interval '1 second'"
    expired = {
        "trades": "jsonb_build_object('electrician', now() - interval '1 second')"
        if credential == "trade"
        else "p.trades",
        "insurance": past if credential == "insurance" else "p.insurance_valid_until",
        "background": past if credential == "background" else "p.background_check_valid_until",
    }
    assert world.value(query.format(**expired), task, worker) is False
    still_valid = {
        "trades": "p.trades",
        "insurance": "p.insurance_valid_until",
        "background": "p.background_check_valid_until",
    }
    assert world.value(query.format(**still_valid), task, worker) is True


def test_reason_names_the_failing_rule(world: World) -> None:
    task = world.task(trade="electrician")
    worker = world.worker()
    reason = world.value(
        "SELECT ineligibility_reason(t, p) FROM tasks t, capability_profiles p WHERE t.id = %s AND p.user_id = %s",
        task,
        worker,
    )
    assert reason == "the task needs a verified electrician licence"
