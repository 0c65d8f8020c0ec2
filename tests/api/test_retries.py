"""Retries get the right answer (issue 12 §4): a mutation repeated by the caller who already owns
its effect (the first reply lost on the way) is answered as the first call was, and does nothing
twice; anyone else still gets the typed error. And the mutations that would do their work twice
honour `idempotency-key`, as their contract option says."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import psycopg
import pytest
from grpc import aio

from hustle.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    dispute_pb2,
    task_pb2,
    upload_pb2,
    upload_pb2_grpc,
    verification_pb2,
    verification_pb2_grpc,
)
from server.app import HustleServer, Resources
from server.config import Settings
from tests.api.market import Market, Person
from tests.api.test_tasks import fails

S = task_pb2
V = verification_pb2


@pytest.fixture
async def app(
    settings: Settings, resources: Resources, conn: psycopg.Connection[Any]
) -> AsyncIterator[tuple[Market, aio.Channel]]:
    roomy = settings.model_copy(update={"rate_limit_write_per_minute": 1000, "rate_limit_read_per_minute": 1000,
                                        "rate_limit_auth_per_minute": 1000})  # fmt: skip
    server = HustleServer(roomy, resources)
    await server.start()
    async with aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield Market(channel, conn), channel
    await server.stop(grace=0)


def count(market: Market, query: str, *params: object) -> int:
    return int(market.world.value(query, *params))


def keyed(person: Person, key: str) -> tuple[tuple[str, str], ...]:
    return (*person.auth, ("idempotency-key", key))


async def test_accept_retried_by_its_worker_is_ok(app: tuple[Market, aio.Channel]) -> None:
    market, _ = app
    poster, worker, other = market.poster(), market.worker(), market.worker()
    task = await market.post(poster)
    first = await market.accept(worker, task.task_id)
    again = await market.accept(worker, task.task_id)
    assert (again.state, again.worker_id, again.accepted_at) == (
        S.TASK_STATE_ACCEPTED,
        worker.id,
        first.accepted_at,
    )
    assert market.notifications(poster).count("TASK_ACCEPTED") == 1
    await fails(market.accept(other, task.task_id), grpc.StatusCode.FAILED_PRECONDITION, "HX203")


async def test_cancel_retried_by_its_canceller_only(app: tuple[Market, aio.Channel]) -> None:
    market, _ = app
    poster, admin = market.poster(), market.admin()
    task = await market.post(poster)
    cancel = S.CancelTaskRequest(task_id=task.task_id, reason="Changed my mind")
    first = (await market.tasks.CancelTask(cancel, metadata=poster.auth)).task
    again = (await market.tasks.CancelTask(cancel, metadata=poster.auth)).task
    assert again == first
    assert market.notifications(poster).count("ESCROW_REFUNDED") == 1
    # cancelled by an admin: the poster's cancel did not happen, and says so
    by_admin = await market.post(poster)
    await market.tasks.CancelTask(
        S.CancelTaskRequest(task_id=by_admin.task_id), metadata=admin.auth
    )
    await fails(market.tasks.CancelTask(S.CancelTaskRequest(task_id=by_admin.task_id), metadata=poster.auth),
                grpc.StatusCode.FAILED_PRECONDITION, "HX001")  # fmt: skip


async def test_approve_retried_gets_the_same_xp(app: tuple[Market, aio.Channel]) -> None:
    market, _ = app
    poster, worker = market.poster(), market.worker()
    task = await market.post(poster)
    await market.accept(worker, task.task_id)
    await market.submit(worker, task.task_id)
    approve = S.ApproveProofRequest(task_id=task.task_id)
    first = await market.tasks.ApproveProof(approve, metadata=poster.auth)
    again = await market.tasks.ApproveProof(approve, metadata=poster.auth)
    assert first.xp_awarded > 0
    assert again == first
    assert count(market, "SELECT count(*) FROM xp_ledger WHERE task_id = %s", task.task_id) == 1
    assert market.notifications(worker).count("ESCROW_RELEASED") == 1


async def test_reject_retried_with_its_reason(app: tuple[Market, aio.Channel]) -> None:
    market, _ = app
    poster, worker = market.poster(), market.worker()
    task = await market.post(poster)
    await market.accept(worker, task.task_id)
    await market.submit(worker, task.task_id)
    reject = S.RejectProofRequest(task_id=task.task_id, reason="Blurry")
    first = (await market.tasks.RejectProof(reject, metadata=poster.auth)).task
    again = (await market.tasks.RejectProof(reject, metadata=poster.auth)).task
    assert again == first
    assert market.notifications(worker).count("PROOF_REJECTED") == 1
    await fails(market.tasks.RejectProof(S.RejectProofRequest(task_id=task.task_id, reason="Other"),
                                         metadata=poster.auth),
                grpc.StatusCode.FAILED_PRECONDITION, "HX003")  # fmt: skip


async def test_submit_proof_retried_with_the_same_photos(app: tuple[Market, aio.Channel]) -> None:
    market, _ = app
    poster, worker = market.poster(), market.worker()
    task = await market.post(poster)
    await market.accept(worker, task.task_id)
    submit = S.SubmitProofRequest(
        task_id=task.task_id, photo_upload_ids=market.photos(worker, 2), note="Done"
    )
    first = await market.tasks.SubmitProof(submit, metadata=worker.auth)
    again = await market.tasks.SubmitProof(submit, metadata=worker.auth)
    assert again == first
    assert count(market, "SELECT count(*) FROM proofs WHERE task_id = %s", task.task_id) == 1
    other = S.SubmitProofRequest(task_id=task.task_id, photo_upload_ids=market.photos(worker, 1))
    await fails(market.tasks.SubmitProof(other, metadata=worker.auth),
                grpc.StatusCode.FAILED_PRECONDITION, "HX003")  # fmt: skip


async def test_dispute_open_and_resolve_retried(app: tuple[Market, aio.Channel]) -> None:
    market, _ = app
    poster, worker, admin, other_admin = (
        market.poster(),
        market.worker(),
        market.admin(),
        market.admin(),
    )
    task = await market.post(poster)
    await market.accept(worker, task.task_id)
    await market.submit(worker, task.task_id)
    open_it = dispute_pb2.OpenDisputeRequest(task_id=task.task_id, reason="Not done")
    opened = await market.disputes.OpenDispute(open_it, metadata=worker.auth)
    assert await market.disputes.OpenDispute(open_it, metadata=worker.auth) == opened
    await fails(market.disputes.OpenDispute(open_it, metadata=poster.auth),
                grpc.StatusCode.FAILED_PRECONDITION, "HX003")  # fmt: skip
    resolve = dispute_pb2.ResolveDisputeRequest(
        dispute_id=opened.dispute.dispute_id,
        resolution=dispute_pb2.DISPUTE_RESOLUTION_SPLIT,
        split_release=common_pb2.Money(amount_cents=1000, currency="USD"),
        note="half each",
    )
    resolved = await market.disputes.ResolveDispute(resolve, metadata=admin.auth)
    assert await market.disputes.ResolveDispute(resolve, metadata=admin.auth) == resolved
    await fails(market.disputes.ResolveDispute(resolve, metadata=other_admin.auth),
                grpc.StatusCode.FAILED_PRECONDITION, "HX003")  # fmt: skip
    emails = market.world.rows("SELECT payload->>'template', count(*) FROM outbox WHERE job = 'email.send'"
                               " GROUP BY 1 ORDER BY 1")  # fmt: skip
    assert emails == [("dispute_opened", 2), ("dispute_resolved", 2)]


async def test_review_retried_by_its_admin(app: tuple[Market, aio.Channel]) -> None:
    market, channel = app
    stub = verification_pb2_grpc.VerificationServiceStub(channel)
    user, admin, other_admin = market.worker(), market.admin(), market.admin()
    record = market.world.verification(user.user_id, "INSURANCE")
    review = V.ReviewVerificationRequest(verification_id=str(record), approve=True)
    first = await stub.ReviewVerification(review, metadata=admin.auth)
    assert await stub.ReviewVerification(review, metadata=admin.auth) == first
    await fails(stub.ReviewVerification(review, metadata=other_admin.auth),
                grpc.StatusCode.FAILED_PRECONDITION, "HX003")  # fmt: skip
    reject = V.ReviewVerificationRequest(verification_id=str(record), reason="Forged")
    await fails(stub.ReviewVerification(reject, metadata=admin.auth),
                grpc.StatusCode.FAILED_PRECONDITION, "HX003")  # fmt: skip
    assert (
        count(
            market, "SELECT count(*) FROM outbox WHERE payload->>'template' = 'verification_status'"
        )
        == 1
    )


async def test_revoking_a_revoked_session_is_done(app: tuple[Market, aio.Channel]) -> None:
    market, channel = app
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    user = market.worker()
    spare = market.session(user.user_id)
    spare_id = str(market.world.value("SELECT id FROM sessions WHERE user_id = %s ORDER BY created_at DESC LIMIT 1",
                                      user.user_id))  # fmt: skip
    revoke = auth_pb2.RevokeSessionRequest(session_id=spare_id)
    await auth.RevokeSession(revoke, metadata=user.auth)
    await auth.RevokeSession(revoke, metadata=user.auth)
    await fails(auth.RevokeSession(auth_pb2.RevokeSessionRequest(session_id=str(uuid.uuid4())), metadata=user.auth),
                grpc.StatusCode.NOT_FOUND, "HX302")  # fmt: skip
    assert spare.token  # the spare session's token no longer works
    with pytest.raises(aio.AioRpcError) as refused:
        await auth.ListSessions(auth_pb2.ListSessionsRequest(), metadata=spare.auth)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_keyed_mutations_do_their_work_once(app: tuple[Market, aio.Channel]) -> None:
    """CreateUpload, SubmitVerification and StartPhoneVerification declare the option too."""
    market, channel = app
    uploads = upload_pb2_grpc.UploadServiceStub(channel)
    verifications = verification_pb2_grpc.VerificationServiceStub(channel)
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    user = market.worker()

    create = upload_pb2.CreateUploadRequest(purpose=upload_pb2.UPLOAD_PURPOSE_PROOF_PHOTO,
                                            content_type="image/jpeg", size_bytes=1000)  # fmt: skip
    first = await uploads.CreateUpload(create, metadata=keyed(user, "up-1"))
    assert await uploads.CreateUpload(create, metadata=keyed(user, "up-1")) == first
    assert count(market, "SELECT count(*) FROM uploads WHERE owner_id = %s", user.user_id) == 1

    document = str(market.world.upload(user.user_id, "VERIFICATION_DOC"))
    submit = V.SubmitVerificationRequest(
        kind=V.VERIFICATION_KIND_ID, document_upload_ids=[document]
    )
    submitted = await verifications.SubmitVerification(submit, metadata=keyed(user, "id-1"))
    assert await verifications.SubmitVerification(submit, metadata=keyed(user, "id-1")) == submitted
    assert (
        count(market, "SELECT count(*) FROM verification_records WHERE user_id = %s", user.user_id)
        == 1
    )

    start = auth_pb2.StartPhoneVerificationRequest(phone_number="+14155550123")
    started = await auth.StartPhoneVerification(start, metadata=keyed(user, "otp-1"))
    assert await auth.StartPhoneVerification(start, metadata=keyed(user, "otp-1")) == started
    assert count(market, "SELECT count(*) FROM outbox WHERE job = 'sms.send'") == 1
    # without a key, each call is a new request: a second text is sent
    await auth.StartPhoneVerification(start, metadata=user.auth)
    assert count(market, "SELECT count(*) FROM outbox WHERE job = 'sms.send'") == 2
