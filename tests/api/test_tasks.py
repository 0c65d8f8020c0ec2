"""TaskService and DisputeService through a real channel: the life of a task and every unhappy
branch, the accept race, cross-user access, idempotency keys."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import psycopg
import pytest
from grpc import aio

from hustle.v1 import common_pb2, dispute_pb2, task_pb2, user_pb2
from server.app import HustleServer, Resources
from server.config import Settings
from tests.api.market import Market
from tests.helpers import error_details

S = task_pb2


@pytest.fixture
async def market(
    settings: Settings, resources: Resources, conn: psycopg.Connection[Any]
) -> AsyncIterator[Market]:
    roomy = settings.model_copy(update={"rate_limit_write_per_minute": 1000, "rate_limit_read_per_minute": 1000,
                                        "db_pool_max_size": 10})  # fmt: skip
    server = HustleServer(roomy, resources)
    await server.start()
    async with aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield Market(channel, conn)
    await server.stop(grace=0)


async def fails(call: object, code: grpc.StatusCode, reason: str) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == code, caught.value
    assert error_details(caught.value)["ErrorInfo"].reason == reason, caught.value
    return caught.value


async def test_the_whole_life_of_a_task(market: Market) -> None:
    poster, worker = market.poster(), market.worker()
    task = await market.post(poster, fund=False)
    assert (task.state, task.escrow_state) == (S.TASK_STATE_OPEN, S.ESCROW_STATE_PENDING)
    seen = (
        await market.tasks.GetTask(S.GetTaskRequest(task_id=task.task_id), metadata=worker.auth)
    ).task
    assert not seen.eligible  # not funded yet

    task = (await market.tasks.FundTask(S.FundTaskRequest(task_id=task.task_id, payment_reference="pi_1"),
                                        metadata=poster.auth)).task  # fmt: skip
    assert task.escrow_state == S.ESCROW_STATE_FUNDED
    assert (
        await market.tasks.GetTask(S.GetTaskRequest(task_id=task.task_id), metadata=worker.auth)
    ).task.eligible

    accepted = await market.accept(worker, task.task_id)
    assert (accepted.state, accepted.worker_id) == (S.TASK_STATE_ACCEPTED, worker.id)
    submitted = await market.submit(worker, task.task_id, photos=3)
    assert submitted.task.state == S.TASK_STATE_PROOF_SUBMITTED
    assert len(submitted.proof.photo_upload_ids) == 3

    approved = await market.tasks.ApproveProof(
        S.ApproveProofRequest(task_id=task.task_id), metadata=poster.auth
    )
    assert (approved.task.state, approved.task.escrow_state) == (
        S.TASK_STATE_COMPLETED,
        S.ESCROW_STATE_RELEASED,
    )
    assert approved.xp_awarded == 42  # $42, no streak yet, no decay
    me = (await market.users.GetMe(user_pb2.GetMeRequest(), metadata=worker.auth)).me
    assert me.xp_total == 42
    assert sorted(market.notifications(poster)) == [
        "ESCROW_FUNDED",
        "PROOF_SUBMITTED",
        "RATING_REQUESTED",  # hustle.v2's ratings: asked of both parties on completion
        "TASK_ACCEPTED",
    ]
    assert sorted(market.notifications(worker)) == [
        "ESCROW_RELEASED",
        "PROOF_ACCEPTED",
        "RATING_REQUESTED",
        "XP_EARNED",
    ]
    proofs = await market.tasks.ListTaskProofs(
        S.ListTaskProofsRequest(task_id=task.task_id), metadata=poster.auth
    )
    assert [p.state for p in proofs.proofs] == ["ACCEPTED"]


async def test_reject_then_resubmit(market: Market) -> None:
    poster, worker = market.poster(), market.worker()
    task = await market.post(poster)
    await market.accept(worker, task.task_id)
    await market.submit(worker, task.task_id)
    await fails(market.tasks.RejectProof(S.RejectProofRequest(task_id=task.task_id, reason=" "), metadata=poster.auth),
                grpc.StatusCode.INVALID_ARGUMENT, "HX301")  # fmt: skip
    back = await market.tasks.RejectProof(S.RejectProofRequest(task_id=task.task_id, reason="Blurry photos"),
                                          metadata=poster.auth)  # fmt: skip
    assert back.task.state == S.TASK_STATE_ACCEPTED
    await market.submit(worker, task.task_id, photos=1)
    done = await market.tasks.ApproveProof(
        S.ApproveProofRequest(task_id=task.task_id), metadata=poster.auth
    )
    assert done.task.state == S.TASK_STATE_COMPLETED
    proofs = await market.tasks.ListTaskProofs(
        S.ListTaskProofsRequest(task_id=task.task_id), metadata=worker.auth
    )
    assert [(p.state, p.rejection_reason) for p in proofs.proofs] == [
        ("ACCEPTED", ""),
        ("REJECTED", "Blurry photos"),
    ]


@pytest.mark.parametrize(
    ("resolution", "split", "outcome", "xp"),
    [
        (
            dispute_pb2.DISPUTE_RESOLUTION_RELEASE,
            0,
            (S.TASK_STATE_COMPLETED, S.ESCROW_STATE_RELEASED),
            42,
        ),
        (
            dispute_pb2.DISPUTE_RESOLUTION_REFUND,
            0,
            (S.TASK_STATE_CANCELLED, S.ESCROW_STATE_REFUNDED),
            0,
        ),
        (
            dispute_pb2.DISPUTE_RESOLUTION_SPLIT,
            1500,
            (S.TASK_STATE_COMPLETED, S.ESCROW_STATE_REFUND_PARTIAL),
            0,
        ),
    ],
)
async def test_dispute_and_each_resolution(market: Market, resolution: int, split: int,
                                           outcome: tuple[int, int], xp: int) -> None:  # fmt: skip
    poster, worker, admin = market.poster(), market.worker(), market.admin()
    task = await market.post(poster)
    await market.accept(worker, task.task_id)
    await market.submit(worker, task.task_id)
    opened = await market.disputes.OpenDispute(dispute_pb2.OpenDisputeRequest(task_id=task.task_id, reason="Not done"),
                                               metadata=worker.auth)  # fmt: skip
    assert (opened.task.state, opened.task.escrow_state) == (
        S.TASK_STATE_DISPUTED,
        S.ESCROW_STATE_LOCKED_DISPUTE,
    )
    queue = await market.disputes.ListOpenDisputes(
        dispute_pb2.ListOpenDisputesRequest(), metadata=admin.auth
    )
    assert [d.dispute_id for d in queue.disputes] == [opened.dispute.dispute_id]
    await fails(market.disputes.ListOpenDisputes(dispute_pb2.ListOpenDisputesRequest(), metadata=poster.auth),
                grpc.StatusCode.PERMISSION_DENIED, "HX202")  # fmt: skip

    request = dispute_pb2.ResolveDisputeRequest(
        dispute_id=opened.dispute.dispute_id, resolution=resolution, note="ok"
    )
    if split:
        request.split_release.CopyFrom(common_pb2.Money(amount_cents=split, currency="USD"))
    resolved = await market.disputes.ResolveDispute(request, metadata=admin.auth)
    assert (resolved.task.state, resolved.task.escrow_state) == outcome
    assert resolved.dispute.state == "RESOLVED"
    me = (await market.users.GetMe(user_pb2.GetMeRequest(), metadata=worker.auth)).me
    assert me.xp_total == xp
    emails = market.world.rows("SELECT payload->>'template', count(*) FROM outbox WHERE job = 'email.send'"
                               " GROUP BY 1 ORDER BY 1")  # fmt: skip
    assert emails == [("dispute_opened", 2), ("dispute_resolved", 2)]


async def test_cancel_refunds_and_tells_the_worker(market: Market) -> None:
    poster, worker = market.poster(), market.worker()
    open_task = await market.post(poster)
    cancelled = await market.tasks.CancelTask(S.CancelTaskRequest(task_id=open_task.task_id, reason="Fixed it myself"),
                                              metadata=poster.auth)  # fmt: skip
    assert (cancelled.task.state, cancelled.task.escrow_state) == (
        S.TASK_STATE_CANCELLED,
        S.ESCROW_STATE_REFUNDED,
    )
    taken = await market.post(poster)
    await market.accept(worker, taken.task_id)
    await market.tasks.CancelTask(
        S.CancelTaskRequest(task_id=taken.task_id, reason="No-show"), metadata=poster.auth
    )
    assert "TASK_CANCELLED" in market.notifications(worker)
    # the poster's retry of their own cancel is answered with the cancelled task (issue 12 §4)
    again = await market.tasks.CancelTask(
        S.CancelTaskRequest(task_id=taken.task_id), metadata=poster.auth
    )
    assert again.task.state == S.TASK_STATE_CANCELLED
    assert market.notifications(worker).count("TASK_CANCELLED") == 1
    expired = await market.post(poster, fund=False)
    market.world.expire(uuid.UUID(expired.task_id))
    await fails(market.tasks.CancelTask(S.CancelTaskRequest(task_id=expired.task_id), metadata=poster.auth),
                grpc.StatusCode.FAILED_PRECONDITION, "HX001")  # fmt: skip


async def test_fifty_workers_race_for_one_task(market: Market) -> None:
    poster = market.poster()
    task = await market.post(poster)
    workers = [market.worker() for _ in range(50)]
    results = await asyncio.gather(
        *(market.accept(w, task.task_id) for w in workers), return_exceptions=True
    )
    won = [w for w, r in zip(workers, results, strict=True) if isinstance(r, task_pb2.Task)]
    lost = [r for r in results if isinstance(r, aio.AioRpcError)]
    assert len(won) == 1
    assert len(lost) == 49
    assert {(e.code(), error_details(e)["ErrorInfo"].reason) for e in lost} == {
        (grpc.StatusCode.FAILED_PRECONDITION, "HX203")
    }
    assert market.world.rows("SELECT worker_id FROM tasks WHERE id = %s", task.task_id) == [
        (won[0].user_id,)
    ]


async def test_accept_says_why_not(market: Market) -> None:
    poster = market.poster()
    rookie = market.worker(tier=1)
    licensed = market.worker(trades=("electrician",))
    needs_tier = await market.post(poster, tier=3)
    error = await fails(
        market.accept(rookie, needs_tier.task_id), grpc.StatusCode.PERMISSION_DENIED, "HX201"
    )
    assert "higher trust tier" in error.details()
    needs_trade = await market.post(poster, trade="electrician")
    await fails(
        market.accept(rookie, needs_trade.task_id), grpc.StatusCode.PERMISSION_DENIED, "HX201"
    )
    assert (await market.accept(licensed, needs_trade.task_id)).state == S.TASK_STATE_ACCEPTED
    unfunded = await market.post(poster, fund=False)
    await fails(
        market.accept(rookie, unfunded.task_id), grpc.StatusCode.FAILED_PRECONDITION, "HX204"
    )
    poster_worker = market.session(market.world.worker())
    own = await market.post(poster_worker)
    await fails(
        market.accept(poster_worker, own.task_id), grpc.StatusCode.FAILED_PRECONDITION, "HX008"
    )
    await fails(
        market.accept(rookie, "7b1c5f5e-2a55-4e52-9c1d-000000000000"),
        grpc.StatusCode.NOT_FOUND,
        "HX302",
    )


async def test_cross_user_access_is_permission_denied(market: Market) -> None:
    owner, stranger, worker, other_worker = (
        market.poster(),
        market.poster(),
        market.worker(),
        market.worker(),
    )
    task = await market.post(owner, fund=False)
    await fails(market.tasks.FundTask(S.FundTaskRequest(task_id=task.task_id, payment_reference="pi_x"),
                                      metadata=stranger.auth), grpc.StatusCode.PERMISSION_DENIED, "HX202")  # fmt: skip
    await fails(market.tasks.UpdateTask(S.UpdateTaskRequest(task_id=task.task_id, title="Mine now"),
                                        metadata=stranger.auth), grpc.StatusCode.PERMISSION_DENIED, "HX202")  # fmt: skip
    await fails(market.tasks.CancelTask(S.CancelTaskRequest(task_id=task.task_id), metadata=stranger.auth),
                grpc.StatusCode.PERMISSION_DENIED, "HX202")  # fmt: skip
    task = (await market.tasks.FundTask(S.FundTaskRequest(task_id=task.task_id, payment_reference="pi_x"),
                                        metadata=owner.auth)).task  # fmt: skip
    await market.accept(worker, task.task_id)
    await fails(market.tasks.SubmitProof(S.SubmitProofRequest(task_id=task.task_id,
                                                              photo_upload_ids=market.photos(other_worker)),
                                         metadata=other_worker.auth),
                grpc.StatusCode.PERMISSION_DENIED, "HX202")  # fmt: skip
    await fails(market.tasks.GetTask(S.GetTaskRequest(task_id=task.task_id), metadata=stranger.auth),
                grpc.StatusCode.PERMISSION_DENIED, "HX202")  # fmt: skip
    # someone else's (READY) photos cannot be attached either
    await fails(market.tasks.SubmitProof(S.SubmitProofRequest(task_id=task.task_id,
                                                              photo_upload_ids=market.photos(other_worker)),
                                         metadata=worker.auth),
                grpc.StatusCode.PERMISSION_DENIED, "HX202")  # fmt: skip
    await market.submit(worker, task.task_id)
    await fails(market.tasks.ApproveProof(S.ApproveProofRequest(task_id=task.task_id), metadata=worker.auth),
                grpc.StatusCode.PERMISSION_DENIED, "HX202")  # fmt: skip


async def test_idempotency_keys_replay_the_first_response(market: Market) -> None:
    poster, worker = market.poster(), market.worker()
    request = market.draft()
    first = await market.create(poster, request, key="create-1")
    again = await market.create(poster, request, key="create-1")  # the client's retry: same bytes
    assert again == first
    assert market.world.rows("SELECT count(*) FROM tasks WHERE poster_id = %s", poster.user_id) == [
        (1,)
    ]
    other = market.draft(price=9900)
    error = await fails(
        market.create(poster, other, key="create-1"), grpc.StatusCode.INVALID_ARGUMENT, "HX301"
    )
    assert error_details(error)["BadRequest"].field_violations[0].field == "idempotency-key"

    fund = S.FundTaskRequest(task_id=first.task_id, payment_reference="pi_9")
    funded = await market.tasks.FundTask(
        fund, metadata=(*poster.auth, ("idempotency-key", "fund-1"))
    )
    replay = await market.tasks.FundTask(
        fund, metadata=(*poster.auth, ("idempotency-key", "fund-1"))
    )
    assert replay == funded
    # without a key, the same payment again is a retry too (issue 12 §4); another payment is not
    unkeyed = await market.tasks.FundTask(fund, metadata=poster.auth)
    assert unkeyed.task.escrow_state == S.ESCROW_STATE_FUNDED
    await fails(
        market.tasks.FundTask(S.FundTaskRequest(task_id=first.task_id, payment_reference="pi_10"),
                              metadata=poster.auth),
        grpc.StatusCode.FAILED_PRECONDITION,
        "HX003",
    )  # fmt: skip
    assert market.notifications(poster).count("ESCROW_FUNDED") == 1

    await market.accept(worker, first.task_id)
    proof = S.SubmitProofRequest(
        task_id=first.task_id, photo_upload_ids=market.photos(worker, 2), note="done"
    )
    a, b = await asyncio.gather(
        market.tasks.SubmitProof(proof, metadata=(*worker.auth, ("idempotency-key", "proof-1"))),
        market.tasks.SubmitProof(proof, metadata=(*worker.auth, ("idempotency-key", "proof-1"))),
    )  # concurrently: one waits for the other's commit
    assert a == b
    assert market.world.rows("SELECT count(*) FROM proofs WHERE task_id = %s", first.task_id) == [
        (1,)
    ]


@pytest.mark.parametrize(
    ("change", "bad_field"),
    [
        ({"price": common_pb2.Money(amount_cents=499, currency="USD")}, "price.amount_cents"),
        ({"price": common_pb2.Money(amount_cents=1000, currency="EUR")}, "price.currency"),
        ({"title": ""}, "title"),
        ({"category": "plumbing stuff"}, "category"),
        ({"location": common_pb2.LatLng(latitude=91, longitude=0)}, "location.latitude"),
        ({"location_state": "Calif"}, "location_state"),
        (
            {"requirements": S.TaskRequirements(required_trust_tier=7)},
            "requirements.required_trust_tier",
        ),
    ],
)
async def test_bad_task_input_names_the_field(
    market: Market, change: dict[str, Any], bad_field: str
) -> None:
    poster = market.poster()
    good = {"title": "t", "category": "PLUMBING", "price": common_pb2.Money(amount_cents=1000, currency="USD"),
            "address": "a", "location_state": "CA", "location": common_pb2.LatLng(latitude=34, longitude=-118)}  # fmt: skip
    request = S.CreateTaskRequest(**{**good, **change})
    request.deadline.GetCurrentTime()
    request.deadline.seconds += 86_400
    error = await fails(
        market.tasks.CreateTask(request, metadata=poster.auth),
        grpc.StatusCode.INVALID_ARGUMENT,
        "HX301",
    )
    assert error_details(error)["BadRequest"].field_violations[0].field == bad_field


async def test_lists_page_with_tokens(market: Market) -> None:
    poster = market.poster()
    made = [await market.post(poster, fund=False) for _ in range(5)]
    first = await market.tasks.ListMyPostedTasks(
        S.ListMyPostedTasksRequest(page_size=3), metadata=poster.auth
    )
    second = await market.tasks.ListMyPostedTasks(
        S.ListMyPostedTasksRequest(page_size=3, page_token=first.next_page_token),
        metadata=poster.auth,
    )
    listed = [t.task_id for t in [*first.tasks, *second.tasks]]
    assert listed == [t.task_id for t in reversed(made)]
    assert not second.next_page_token
    other = market.poster()
    assert not (
        await market.tasks.ListMyPostedTasks(S.ListMyPostedTasksRequest(), metadata=other.auth)
    ).tasks


async def test_a_deadline_past_year_9999_is_invalid_not_internal(market: Market) -> None:
    poster = market.poster()
    request = market.draft()
    request.deadline.seconds = 10**12  # Timestamp.ToDatetime raises ValueError on it
    error = await fails(
        market.tasks.CreateTask(request, metadata=poster.auth, timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
        "HX301",
    )
    assert error_details(error)["BadRequest"].field_violations[0].field == "deadline"
