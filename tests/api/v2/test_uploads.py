"""hustle.v2.UploadService, VerificationService and DisputeService through a real channel: a file
posted to the local S3, verification documents, the review queue with its `kinds` filter and
`decision`, disputes opened and resolved."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import grpc

from hustle.v2 import common_pb2, dispute_pb2, task_pb2, upload_pb2, verification_pb2
from tests.api.v2.market import V2, fails, invalid, request_id, timestamp

U = upload_pb2
V = verification_pb2
D = dispute_pb2
S = grpc.StatusCode


async def post_file(post: U.PresignedPost, data: bytes) -> int:
    form = aiohttp.FormData()
    for name, value in post.fields.items():
        form.add_field(name, value)
    form.add_field("file", data, filename="upload.bin", content_type=post.fields["Content-Type"])
    async with aiohttp.ClientSession() as http, http.post(post.url, data=form) as response:
        return response.status


async def test_an_upload_from_request_to_completion(api: V2) -> None:
    owner, other = api.poster(), api.poster()
    request = U.CreateUploadRequest(purpose=U.UPLOAD_PURPOSE_AVATAR, content_type="IMAGE/PNG", size_bytes=64,
                                    request_id=request_id())  # fmt: skip
    created = await api.uploads.CreateUpload(request, metadata=owner.auth)
    assert (created.upload.state, created.upload.content_type) == (
        U.UPLOAD_STATE_PENDING,
        "image/png",
    )
    assert await api.uploads.CreateUpload(request, metadata=owner.auth) == created  # a retry
    upload_id = created.upload.upload_id
    complete = U.CompleteUploadRequest(upload_id=upload_id)
    await fails(
        api.uploads.CompleteUpload(complete, metadata=owner.auth), S.FAILED_PRECONDITION, "HX304"
    )
    assert await post_file(created.post, b"\x89PNG\r\n\x1a\n" + b"\0" * 56) in (200, 204)
    await fails(
        api.uploads.CompleteUpload(complete, metadata=other.auth), S.PERMISSION_DENIED, "HX202"
    )
    done = (await api.uploads.CompleteUpload(complete, metadata=owner.auth)).upload
    assert done.state == U.UPLOAD_STATE_UPLOADED  # READY once the worker has processed it
    assert (
        await api.uploads.CompleteUpload(complete, metadata=owner.auth)
    ).upload == done  # idempotent
    got = (
        await api.uploads.GetUpload(U.GetUploadRequest(upload_id=upload_id), metadata=owner.auth)
    ).upload
    assert (got.upload_id, got.purpose, got.download_url) == (
        upload_id,
        U.UPLOAD_PURPOSE_AVATAR,
        "",
    )
    missing = U.GetUploadRequest(upload_id=str(uuid.uuid4()))
    await fails(api.uploads.GetUpload(missing, metadata=owner.auth), S.NOT_FOUND, "HX302")
    bad = U.CreateUploadRequest(
        purpose=U.UPLOAD_PURPOSE_PROOF_PHOTO, content_type="text/html", size_bytes=0
    )
    assert sorted(await invalid(api.uploads.CreateUpload(bad, metadata=owner.auth))) == [
        "content_type",
        "size_bytes",
    ]
    unset = U.CreateUploadRequest(content_type="image/png", size_bytes=10)
    assert list(await invalid(api.uploads.CreateUpload(unset, metadata=owner.auth))) == ["purpose"]
    assert list(
        await invalid(api.uploads.GetUpload(U.GetUploadRequest(), metadata=owner.auth))
    ) == ["upload_id"]


async def test_verifications_submitted_listed_and_reviewed(api: V2) -> None:
    worker, admin = api.poster(), api.admin()
    docs = [str(api.world.upload(worker.user_id, "VERIFICATION_DOC")) for _ in range(3)]
    expires = timestamp(datetime.now(UTC) + timedelta(days=200))
    licence = V.SubmitVerificationRequest(kind=V.VERIFICATION_KIND_TRADE_LICENSE, trade="Electrician",
                                          expires_at=expires, document_upload_ids=[docs[0]],
                                          request_id=request_id())  # fmt: skip
    submitted = (
        await api.verifications.SubmitVerification(licence, metadata=worker.auth)
    ).verification
    assert (submitted.state, submitted.trade) == (V.VERIFICATION_STATE_PENDING, "electrician")
    assert (
        await api.verifications.SubmitVerification(licence, metadata=worker.auth)
    ).verification == submitted
    insurance = V.SubmitVerificationRequest(
        kind=V.VERIFICATION_KIND_INSURANCE, document_upload_ids=[docs[1]]
    )
    await api.verifications.SubmitVerification(insurance, metadata=worker.auth)
    ident = V.SubmitVerificationRequest(kind=V.VERIFICATION_KIND_ID, document_upload_ids=[docs[2]])
    await api.verifications.SubmitVerification(ident, metadata=worker.auth)

    mine = await api.verifications.ListMyVerifications(
        V.ListMyVerificationsRequest(page_size=2), metadata=worker.auth
    )
    more = await api.verifications.ListMyVerifications(
        V.ListMyVerificationsRequest(page_size=2, page_token=mine.next_page_token), metadata=worker.auth)  # fmt: skip
    kinds = [v.kind for v in (*mine.verifications, *more.verifications)]
    assert kinds == [
        V.VERIFICATION_KIND_ID,
        V.VERIFICATION_KIND_INSURANCE,
        V.VERIFICATION_KIND_TRADE_LICENSE,
    ]
    assert more.next_page_token == ""

    queue = V.ListPendingVerificationsRequest(
        kinds=[V.VERIFICATION_KIND_TRADE_LICENSE, V.VERIFICATION_KIND_ID]
    )
    pending = await api.verifications.ListPendingVerifications(queue, metadata=admin.auth)
    assert [v.kind for v in pending.verifications] == [
        V.VERIFICATION_KIND_TRADE_LICENSE,
        V.VERIFICATION_KIND_ID,
    ]
    await fails(api.verifications.ListPendingVerifications(queue, metadata=worker.auth),
                S.PERMISSION_DENIED, "HX202")  # fmt: skip

    undecided = V.ReviewVerificationRequest(verification_id=submitted.verification_id)
    assert list(await invalid(api.verifications.ReviewVerification(undecided, metadata=admin.auth))) == [
        "decision"]  # unset is an error, never a rejection  # fmt: skip
    reasonless = V.ReviewVerificationRequest(verification_id=submitted.verification_id,
                                             decision=V.VERIFICATION_DECISION_REJECT)  # fmt: skip
    assert list(
        await invalid(api.verifications.ReviewVerification(reasonless, metadata=admin.auth))
    ) == ["reason"]
    approve = V.ReviewVerificationRequest(verification_id=submitted.verification_id,
                                          decision=V.VERIFICATION_DECISION_APPROVE, request_id=request_id())  # fmt: skip
    reviewed = (
        await api.verifications.ReviewVerification(approve, metadata=admin.auth)
    ).verification
    assert reviewed.state == V.VERIFICATION_STATE_APPROVED
    assert (
        await api.verifications.ReviewVerification(approve, metadata=admin.auth)
    ).verification == reviewed
    reject = V.ReviewVerificationRequest(verification_id=submitted.verification_id,
                                         decision=V.VERIFICATION_DECISION_REJECT, reason="Changed my mind")  # fmt: skip
    await fails(
        api.verifications.ReviewVerification(reject, metadata=admin.auth),
        S.FAILED_PRECONDITION,
        "HX003",
    )
    left = await api.verifications.ListPendingVerifications(
        V.ListPendingVerificationsRequest(), metadata=admin.auth
    )
    assert [v.kind for v in left.verifications] == [
        V.VERIFICATION_KIND_INSURANCE,
        V.VERIFICATION_KIND_ID,
    ]


async def test_bad_verifications_list_every_field(api: V2) -> None:
    worker = api.poster()
    past = timestamp(datetime.now(UTC) - timedelta(days=1))
    bad = V.SubmitVerificationRequest(kind=V.VERIFICATION_KIND_INSURANCE, trade="plumber", expires_at=past,
                                      document_upload_ids=["x"])  # fmt: skip
    assert sorted(await invalid(api.verifications.SubmitVerification(bad, metadata=worker.auth))) == [
        "document_upload_ids[0]", "expires_at", "trade"]  # fmt: skip
    assert sorted(await invalid(api.verifications.SubmitVerification(V.SubmitVerificationRequest(),
                                                                     metadata=worker.auth))) == [
        "document_upload_ids", "kind"]  # fmt: skip
    theirs = str(api.world.upload(api.poster().user_id, "VERIFICATION_DOC"))
    stolen = V.SubmitVerificationRequest(kind=V.VERIFICATION_KIND_ID, document_upload_ids=[theirs])
    await fails(
        api.verifications.SubmitVerification(stolen, metadata=worker.auth),
        S.PERMISSION_DENIED,
        "HX202",
    )
    admin = api.admin()
    queue = V.ListPendingVerificationsRequest(kinds=[V.VERIFICATION_KIND_UNSPECIFIED], page_size=-1)
    assert sorted(await invalid(api.verifications.ListPendingVerifications(queue, metadata=admin.auth))) == [
        "kinds[0]", "page_size"]  # fmt: skip


async def test_disputes_opened_listed_and_resolved(api: V2) -> None:
    poster, worker, admin, stranger = api.poster(), api.worker(), api.admin(), api.poster()
    tasks = []
    for _ in range(2):
        task = await api.post(poster)
        await api.accept(worker, task.task_id)
        await api.submit(worker, task.task_id)
        tasks.append(task)
    opening = D.OpenDisputeRequest(
        task_id=tasks[0].task_id, reason="Not done", request_id=request_id()
    )
    await fails(
        api.disputes.OpenDispute(opening, metadata=stranger.auth), S.PERMISSION_DENIED, "HX202"
    )
    opened = await api.disputes.OpenDispute(opening, metadata=poster.auth)
    assert (opened.dispute.state, opened.task.state) == (
        D.DISPUTE_STATE_OPEN,
        task_pb2.TASK_STATE_DISPUTED,
    )
    assert opened.dispute.resolution == D.DISPUTE_RESOLUTION_UNSPECIFIED
    second = await api.disputes.OpenDispute(D.OpenDisputeRequest(task_id=tasks[1].task_id, reason="Bad"),
                                            metadata=worker.auth)  # fmt: skip
    first_page = await api.disputes.ListOpenDisputes(
        D.ListOpenDisputesRequest(page_size=1), metadata=admin.auth
    )
    rest = await api.disputes.ListOpenDisputes(D.ListOpenDisputesRequest(page_size=1,
                                               page_token=first_page.next_page_token), metadata=admin.auth)  # fmt: skip
    assert [d.dispute_id for d in (*first_page.disputes, *rest.disputes)] == [
        opened.dispute.dispute_id, second.dispute.dispute_id]  # oldest first  # fmt: skip
    await fails(api.disputes.ListOpenDisputes(D.ListOpenDisputesRequest(), metadata=poster.auth),
                S.PERMISSION_DENIED, "HX202")  # fmt: skip

    bad = D.ResolveDisputeRequest(dispute_id=opened.dispute.dispute_id, resolution=D.DISPUTE_RESOLUTION_REFUND,
                                  split_release=common_pb2.Money(amount_cents=100), note="x" * 2001)  # fmt: skip
    assert sorted(await invalid(api.disputes.ResolveDispute(bad, metadata=admin.auth))) == [
        "note",
        "split_release",
    ]
    unset = D.ResolveDisputeRequest(dispute_id="nope")
    assert sorted(await invalid(api.disputes.ResolveDispute(unset, metadata=admin.auth))) == [
        "dispute_id", "resolution"]  # fmt: skip
    split = D.ResolveDisputeRequest(dispute_id=opened.dispute.dispute_id, resolution=D.DISPUTE_RESOLUTION_SPLIT,
                                    split_release=common_pb2.Money(amount_cents=1000, currency="USD"),
                                    note="Half done", request_id=request_id())  # fmt: skip
    await fails(
        api.disputes.ResolveDispute(split, metadata=poster.auth), S.PERMISSION_DENIED, "HX202"
    )
    resolved = await api.disputes.ResolveDispute(split, metadata=admin.auth)
    assert (resolved.dispute.state, resolved.dispute.resolution) == (
        D.DISPUTE_STATE_RESOLVED, D.DISPUTE_RESOLUTION_SPLIT)  # fmt: skip
    assert resolved.dispute.split_release == common_pb2.Money(amount_cents=1000, currency="USD")
    assert (resolved.task.state, resolved.task.escrow_state) == (
        task_pb2.TASK_STATE_COMPLETED, task_pb2.ESCROW_STATE_REFUND_PARTIAL)  # fmt: skip
    release = D.ResolveDisputeRequest(
        dispute_id=opened.dispute.dispute_id, resolution=D.DISPUTE_RESOLUTION_RELEASE
    )
    await fails(
        api.disputes.ResolveDispute(release, metadata=admin.auth), S.FAILED_PRECONDITION, "HX003"
    )
    too_much = D.ResolveDisputeRequest(dispute_id=second.dispute.dispute_id, resolution=D.DISPUTE_RESOLUTION_SPLIT,
                                       split_release=common_pb2.Money(amount_cents=4200))  # fmt: skip
    await fails(
        api.disputes.ResolveDispute(too_much, metadata=admin.auth), S.INVALID_ARGUMENT, "HX301"
    )
