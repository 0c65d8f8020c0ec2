"""The task state machine, enforced by Postgres (INV-3, INV-6, INV-8, INV-10).

Each test first shows the row in the state the violation starts from, then breaks the rule with
raw SQL (as a buggy service would) and expects the HX code; the legal path is shown to work.
"""

from __future__ import annotations

import itertools

import psycopg
import pytest

from tests.invariants.world import TASK_STATES, World, hx_code, refused

ALLOWED = {
    ("OPEN", "ACCEPTED"), ("OPEN", "CANCELLED"), ("OPEN", "EXPIRED"),
    ("ACCEPTED", "PROOF_SUBMITTED"), ("ACCEPTED", "CANCELLED"),
    ("PROOF_SUBMITTED", "COMPLETED"), ("PROOF_SUBMITTED", "ACCEPTED"), ("PROOF_SUBMITTED", "DISPUTED"),
    ("DISPUTED", "COMPLETED"), ("DISPUTED", "CANCELLED"),
}  # fmt: skip
TERMINAL = {"COMPLETED", "CANCELLED", "EXPIRED"}
FORBIDDEN = sorted(
    (a, b)
    for a, b in itertools.product(TASK_STATES, TASK_STATES)
    if a != b and (a, b) not in ALLOWED
)


@pytest.mark.parametrize(("source", "target"), FORBIDDEN)
def test_forbidden_transition_is_refused(world: World, source: str, target: str) -> None:
    task = world.task_in(source)
    assert world.task_state(task) == source
    code = "HX001" if source in TERMINAL else "HX003"
    extra_worker = world.worker() if target == "ACCEPTED" and source == "OPEN" else None
    if extra_worker:
        refused(
            world,
            code,
            "UPDATE tasks SET state = %s, worker_id = %s WHERE id = %s",
            target,
            extra_worker,
            task,
        )
    else:
        refused(world, code, "UPDATE tasks SET state = %s WHERE id = %s", target, task)
    assert world.task_state(task) == source


def test_the_state_machine_is_the_domains_table(world: World) -> None:
    pairs = {
        (a, b)
        for a, b in itertools.product(TASK_STATES, TASK_STATES)
        if world.value("SELECT task_transition_allowed(%s, %s)", a, b)
    }
    assert pairs == ALLOWED


@pytest.mark.parametrize("state", sorted(TERMINAL))
@pytest.mark.parametrize(
    ("column", "value"),
    [("title", "New title"), ("description", "edited"), ("cancel_reason", "x"), ("urgent", True)],
)
def test_terminal_task_is_frozen(world: World, state: str, column: str, value: object) -> None:
    task = world.task_in(state)
    assert world.task_state(task) == state
    refused(world, "HX001", f"UPDATE tasks SET {column} = %s WHERE id = %s", value, task)


def test_insert_must_start_open(world: World) -> None:
    poster = world.user()
    for state in ("ACCEPTED", "COMPLETED"):
        refused(
            world,
            "HX003",
            "INSERT INTO tasks (poster_id, title, category, price_cents, address, location_state, location, deadline, state)"
            " VALUES (%s, 't', 'CLEANING', 1000, 'a', 'CA', 'POINT(-118 34)', now() + interval '1 day', %s)",
            poster,
            state,
        )


def test_deadline_must_be_in_the_future(world: World) -> None:
    refused(
        world,
        "HX301",
        "INSERT INTO tasks (poster_id, title, category, price_cents, address, location_state, location, deadline)"
        " VALUES (%s, 't', 'CLEANING', 1000, 'a', 'CA', 'POINT(-118 34)', now() - interval '1 minute')",
        world.user(),
    )


def test_price_minimum(world: World) -> None:
    refused(
        world,
        "HX301",
        "INSERT INTO tasks (poster_id, title, category, price_cents, address, location_state, location, deadline)"
        " VALUES (%s, 't', 'CLEANING', 499, 'a', 'CA', 'POINT(-118 34)', now() + interval '1 day')",
        world.user(),
    )


@pytest.mark.parametrize(
    ("column", "value"),
    [("required_trust_tier", 3), ("required_trade", "electrician"), ("insurance_required", True),
     ("background_check_required", True), ("price_cents", 9999), ("requires_proof", False)],
)  # fmt: skip
def test_requirements_and_price_are_fixed_once_posted(
    world: World, column: str, value: object
) -> None:
    task = world.task()
    assert world.task_state(task) == "OPEN"
    refused(world, "HX003", f"UPDATE tasks SET {column} = %s WHERE id = %s", value, task)


def test_open_task_is_editable_and_accepted_one_is_not(world: World) -> None:
    task = world.task()
    world.rows("UPDATE tasks SET title = 'Fix the kitchen sink' WHERE id = %s", task)
    assert world.value("SELECT title FROM tasks WHERE id = %s", task) == "Fix the kitchen sink"
    world.accept(task)
    assert world.task_state(task) == "ACCEPTED"
    refused(
        world, "HX003", "UPDATE tasks SET title = 'Changed after acceptance' WHERE id = %s", task
    )


def test_funding_stamp_is_the_escrows(world: World) -> None:
    task = world.task(funded=False)
    assert world.value("SELECT funded_at FROM tasks WHERE id = %s", task) is None
    refused(world, "HX003", "UPDATE tasks SET funded_at = now() WHERE id = %s", task)
    world.fund(task)
    assert world.value("SELECT funded_at IS NOT NULL FROM tasks WHERE id = %s", task)


def test_transition_times_are_the_databases(world: World) -> None:
    task = world.task()
    worker = world.accept(task)
    assert world.value("SELECT accepted_at IS NOT NULL FROM tasks WHERE id = %s", task)
    assert world.worker_of(task) == worker
    refused(
        world,
        "HX003",
        "UPDATE tasks SET accepted_at = now() - interval '1 day' WHERE id = %s",
        task,
    )


# --- accept: INV-8 and eligibility ------------------------------------------------------------


def test_poster_cannot_take_own_task(world: World) -> None:
    poster = world.worker()
    task = world.task(poster)
    assert world.task_state(task) == "OPEN"
    refused(
        world,
        "HX008",
        "UPDATE tasks SET state = 'ACCEPTED', worker_id = poster_id WHERE id = %s",
        task,
    )


def test_second_worker_cannot_take_an_accepted_task(world: World) -> None:
    task = world.task()
    first = world.accept(task)
    assert (world.task_state(task), world.worker_of(task)) == ("ACCEPTED", first)
    refused(world, "HX203", "UPDATE tasks SET worker_id = %s WHERE id = %s", world.worker(), task)
    assert world.worker_of(task) == first


def test_unfunded_task_cannot_be_accepted(world: World) -> None:
    task = world.task(funded=False)
    assert world.escrow_state(task) == "PENDING"
    refused(
        world,
        "HX204",
        "UPDATE tasks SET state = 'ACCEPTED', worker_id = %s WHERE id = %s",
        world.worker(),
        task,
    )


def test_ineligible_worker_cannot_accept(world: World) -> None:
    task = world.task(tier=3)
    rookie = world.worker(tier=1)
    assert world.value("SELECT is_eligible(%s::uuid, %s::uuid)", rookie, task) is False
    refused(
        world,
        "HX201",
        "UPDATE tasks SET state = 'ACCEPTED', worker_id = %s WHERE id = %s",
        rookie,
        task,
    )
    trusted = world.worker(tier=3)
    world.accept(task, trusted)
    assert world.task_state(task) == "ACCEPTED"


def test_worker_without_profile_cannot_accept(world: World) -> None:
    task = world.task()
    stranger = world.user()  # no capability profile computed
    refused(
        world,
        "HX201",
        "UPDATE tasks SET state = 'ACCEPTED', worker_id = %s WHERE id = %s",
        stranger,
        task,
    )


def test_worker_is_assigned_only_by_accepting(world: World) -> None:
    task = world.task()
    refused(world, "HX003", "UPDATE tasks SET worker_id = %s WHERE id = %s", world.worker(), task)


# --- proof: INV-3 and INV-9 -------------------------------------------------------------------


def test_completion_needs_an_accepted_proof(world: World) -> None:
    task = world.task_in("PROOF_SUBMITTED")
    assert world.value("SELECT state FROM proofs WHERE task_id = %s", task) == "SUBMITTED"
    refused(world, "HX006", "UPDATE tasks SET state = 'COMPLETED' WHERE id = %s", task)
    world.approve(task)
    assert world.task_state(task) == "COMPLETED"


def test_task_without_proof_requirement_completes_without_photos(world: World) -> None:
    task = world.task(requires_proof=False)
    world.accept(task)
    with world.transaction():
        world.rows("UPDATE tasks SET state = 'PROOF_SUBMITTED' WHERE id = %s", task)
    with world.transaction():
        world.rows("UPDATE tasks SET state = 'COMPLETED' WHERE id = %s", task)
        world.rows("UPDATE escrows SET state = 'RELEASED' WHERE task_id = %s", task)
    assert (world.task_state(task), world.escrow_state(task)) == ("COMPLETED", "RELEASED")


def test_submission_needs_a_proof(world: World) -> None:
    task = world.task_in("ACCEPTED")
    assert world.value("SELECT count(*) FROM proofs WHERE task_id = %s", task) == 0
    refused(world, "HX007", "UPDATE tasks SET state = 'PROOF_SUBMITTED' WHERE id = %s", task)


def test_proof_without_photos_is_refused_at_commit(world: World) -> None:
    task = world.task_in("ACCEPTED")
    worker = world.worker_of(task)
    with pytest.raises(psycopg.Error) as caught, world.transaction():
        world.rows("INSERT INTO proofs (task_id, worker_id) VALUES (%s, %s)", task, worker)
    assert hx_code(caught.value) == "HX007"
    assert world.value("SELECT count(*) FROM proofs WHERE task_id = %s", task) == 0


def test_a_sixth_photo_is_refused(world: World) -> None:
    task = world.task_in("ACCEPTED")
    worker = world.worker_of(task)
    uploads = [world.upload(worker) for _ in range(6)]
    with pytest.raises(psycopg.Error) as caught, world.transaction():
        proof = world.value(
            "INSERT INTO proofs (task_id, worker_id) VALUES (%s, %s) RETURNING id", task, worker
        )
        for position, upload in enumerate(uploads, start=1):
            world.rows("INSERT INTO proof_photos VALUES (%s, %s, %s)", proof, position, upload)
    assert hx_code(caught.value) == "HX007"
    world.submit_proof(task, photos=5)
    assert world.value("SELECT count(*) FROM proof_photos") == 5


def test_proof_photos_are_fixed(world: World) -> None:
    task = world.task_in("PROOF_SUBMITTED")
    proof = world.value("SELECT id FROM proofs WHERE task_id = %s", task)
    assert world.value("SELECT count(*) FROM proof_photos WHERE proof_id = %s", proof) == 1
    refused(world, "HX007", "DELETE FROM proof_photos WHERE proof_id = %s", proof)
    refused(world, "HX007", "UPDATE proof_photos SET position = 2 WHERE proof_id = %s", proof)


def test_proof_photo_must_be_own_ready_upload(world: World) -> None:
    task = world.task_in("ACCEPTED")
    worker = world.worker_of(task)
    someone_elses = world.upload(world.user())
    not_ready = world.upload(worker, ready=False)
    avatar = world.upload(worker, "AVATAR")
    for upload, code in ((someone_elses, "HX202"), (not_ready, "HX304"), (avatar, "HX301")):
        with pytest.raises(psycopg.Error) as caught, world.transaction():
            proof = world.value(
                "INSERT INTO proofs (task_id, worker_id) VALUES (%s, %s) RETURNING id", task, worker
            )
            world.rows("INSERT INTO proof_photos VALUES (%s, 1, %s)", proof, upload)
        assert hx_code(caught.value) == code


def test_only_the_tasks_worker_submits_proof(world: World) -> None:
    task = world.task_in("ACCEPTED")
    other = world.worker()
    refused(world, "HX202", "INSERT INTO proofs (task_id, worker_id) VALUES (%s, %s)", task, other)


def test_proof_needs_an_accepted_task(world: World) -> None:
    task = world.task_in("OPEN")
    refused(
        world,
        "HX202",
        "INSERT INTO proofs (task_id, worker_id) VALUES (%s, %s)",
        task,
        world.worker(),
    )


def test_reviewed_proof_is_final(world: World) -> None:
    task = world.task_in("COMPLETED")
    assert world.value("SELECT state FROM proofs WHERE task_id = %s", task) == "ACCEPTED"
    refused(
        world,
        "HX003",
        "UPDATE proofs SET state = 'REJECTED', rejection_reason = 'late' WHERE task_id = %s",
        task,
    )


def test_reject_and_resubmit(world: World) -> None:
    task = world.task_in("PROOF_SUBMITTED")
    refused(
        world, "HX003", "UPDATE tasks SET state = 'ACCEPTED' WHERE id = %s", task
    )  # proof still pending
    world.reject(task)
    assert world.task_state(task) == "ACCEPTED"
    world.submit_proof(task, photos=2)
    world.approve(task)
    assert world.task_state(task) == "COMPLETED"
    assert sorted(
        r[0] for r in world.rows("SELECT state FROM proofs WHERE task_id = %s", task)
    ) == ["ACCEPTED", "REJECTED"]


def test_rejection_needs_a_reason(world: World) -> None:
    task = world.task_in("PROOF_SUBMITTED")
    refused(world, "HX301", "UPDATE proofs SET state = 'REJECTED' WHERE task_id = %s", task)


def test_expiry_needs_a_past_deadline(world: World) -> None:
    task = world.task()
    assert world.value("SELECT deadline > now() FROM tasks WHERE id = %s", task)
    refused(world, "HX003", "UPDATE tasks SET state = 'EXPIRED' WHERE id = %s", task)
    world.expire(task)
    assert (world.task_state(task), world.escrow_state(task)) == ("EXPIRED", "REFUNDED")


def test_cancel_from_accepted_refunds(world: World) -> None:
    task = world.task_in("ACCEPTED")
    world.cancel(task)
    assert (world.task_state(task), world.escrow_state(task)) == ("CANCELLED", "REFUNDED")


def test_tasks_are_never_deleted(world: World) -> None:
    task = world.task()
    refused(world, "HX102", "DELETE FROM tasks WHERE id = %s", task)
