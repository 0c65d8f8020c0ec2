"""hustle.v2's retries (AIP-155): a mutation sent again with the same `request_id` gets the first
answer and does nothing twice; the same id with another request, or a malformed one, is HX301
naming `request_id`; v2 ignores v1's `idempotency-key` header."""

from __future__ import annotations

import asyncio

import grpc

from hustle.v2 import dispute_pb2, task_pb2, upload_pb2
from tests.api.v2.market import V2, fails, invalid, request_id

T = task_pb2
S = grpc.StatusCode


def count(api: V2, query: str, *params: object) -> int:
    return int(api.world.value(query, *params))


async def test_a_retry_gets_the_first_answer_and_does_nothing_twice(api: V2) -> None:
    poster = api.poster()
    rid, task = request_id(), api.task()
    first = await api.create(poster, task, rid)
    again = await api.create(poster, task, rid)
    assert again == first  # the stored answer, byte for byte
    assert count(api, "SELECT count(*) FROM tasks") == 1

    # concurrent retries of a funding: one escrow change, one notification, the same answer
    fund = T.FundTaskRequest(
        task_id=first.task_id, payment_reference="pi_race", request_id=request_id()
    )
    answers = await asyncio.gather(
        *(api.tasks.FundTask(fund, metadata=poster.auth) for _ in range(3))
    )
    assert len({a.SerializeToString() for a in answers}) == 1
    assert answers[0].task.escrow_state == T.ESCROW_STATE_FUNDED
    assert count(api, "SELECT count(*) FROM notifications WHERE kind = 'ESCROW_FUNDED'") == 1

    # the same id with another request: refused, naming the field; nothing is done
    other = api.task(title="Paint the fence")
    refused = await invalid(api.tasks.CreateTask(T.CreateTaskRequest(task=other, request_id=rid),
                                                 metadata=poster.auth))  # fmt: skip
    assert refused == {"request_id": "was used with a different request"}
    assert count(api, "SELECT count(*) FROM tasks") == 1

    # ids are per caller: another poster's same id is another operation
    assert (await api.create(api.poster(), task, rid)).task_id != first.task_id
    # no id: no retry detection (a second task)
    await api.create(poster)
    await api.create(poster)
    assert count(api, "SELECT count(*) FROM tasks WHERE poster_id = %s", poster.user_id) == 3


async def test_the_winner_retrying_an_accept_gets_its_win(api: V2) -> None:
    poster, worker, other = api.poster(), api.worker(), api.worker()
    task = await api.post(poster)
    rid = request_id()
    won = await api.accept(worker, task.task_id, rid)
    assert await api.accept(worker, task.task_id, rid) == won
    await fails(api.accept(other, task.task_id, rid), S.FAILED_PRECONDITION, "HX203")
    assert count(api, "SELECT count(*) FROM notifications WHERE kind = 'TASK_ACCEPTED'") == 1


async def test_a_malformed_request_id_is_refused_with_the_other_fields(api: V2) -> None:
    poster = api.poster()
    good = api.task()
    alone = await invalid(api.tasks.CreateTask(T.CreateTaskRequest(task=good, request_id="retry-1"),
                                               metadata=poster.auth))  # fmt: skip
    assert list(alone) == ["request_id"]
    bad = api.task(price=10)
    both = await invalid(api.tasks.CreateTask(T.CreateTaskRequest(task=bad, request_id="retry-1"),
                                              metadata=poster.auth))  # fmt: skip
    assert sorted(both) == ["request_id", "task.price.amount_cents"]
    upload = upload_pb2.CreateUploadRequest(purpose=upload_pb2.UPLOAD_PURPOSE_AVATAR, content_type="image/gif",
                                            size_bytes=10, request_id="{nope}")  # fmt: skip
    assert sorted(await invalid(api.uploads.CreateUpload(upload, metadata=poster.auth))) == [
        "content_type", "request_id"]  # fmt: skip
    assert (
        count(api, "SELECT count(*) FROM tasks") + count(api, "SELECT count(*) FROM uploads") == 0
    )


async def test_v2_ignores_the_idempotency_key_header(api: V2) -> None:
    poster = api.poster()
    keyed = (*poster.auth, ("idempotency-key", "same-key"))
    request = T.CreateTaskRequest(task=api.task())
    first = (await api.tasks.CreateTask(request, metadata=keyed)).task
    second = (await api.tasks.CreateTask(request, metadata=keyed)).task
    assert first.task_id != second.task_id


async def test_every_retryable_mutation_replays(api: V2) -> None:
    """A second call with the id answers as the first, for the mutations v1 could not retry."""
    poster, worker, admin = api.poster(), api.worker(), api.admin()
    task = await api.post(poster)
    await api.accept(worker, task.task_id)
    await api.submit(worker, task.task_id)
    reject = T.RejectProofRequest(task_id=task.task_id, reason="Blurry", request_id=request_id())
    first = await api.tasks.RejectProof(reject, metadata=poster.auth)
    assert await api.tasks.RejectProof(reject, metadata=poster.auth) == first
    await api.submit(worker, task.task_id)
    opened = dispute_pb2.OpenDisputeRequest(
        task_id=task.task_id, reason="Not done", request_id=request_id()
    )
    dispute = await api.disputes.OpenDispute(opened, metadata=poster.auth)
    assert await api.disputes.OpenDispute(opened, metadata=poster.auth) == dispute
    resolve = dispute_pb2.ResolveDisputeRequest(dispute_id=dispute.dispute.dispute_id,
                                                resolution=dispute_pb2.DISPUTE_RESOLUTION_REFUND,
                                                request_id=request_id())  # fmt: skip
    resolved = await api.disputes.ResolveDispute(resolve, metadata=admin.auth)
    assert await api.disputes.ResolveDispute(resolve, metadata=admin.auth) == resolved
    assert resolved.task.state == T.TASK_STATE_CANCELLED
    assert count(api, "SELECT count(*) FROM notifications WHERE kind = 'DISPUTE_RESOLVED'") == 2
    rows = count(api, "SELECT count(*) FROM idempotency_keys WHERE method LIKE %s", "/hustle.v2.%")
    assert rows >= 5  # one per operation with an id (the helpers' FundTask and SubmitProof too)
