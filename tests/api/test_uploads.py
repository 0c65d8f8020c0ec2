"""Uploads straight to S3 (the local endpoint), their checks and cleaning by the real worker;
verification documents and the capability profile they drive."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import grpc
import psycopg
import pytest
from grpc import aio
from PIL import ExifTags, Image

from hustle.v1 import (
    feed_pb2,
    upload_pb2,
    upload_pb2_grpc,
    user_pb2,
    verification_pb2,
    verification_pb2_grpc,
)
from server.app import HustleServer, Resources
from server.config import Settings
from tests.api.market import Market, Person
from tests.helpers import error_details, eventually
from tests.jobs_harness import Capture, Worker, job_env, start_worker

U = upload_pb2
V = verification_pb2


def jpeg_with_gps(size: tuple[int, int] = (640, 480)) -> bytes:
    image = Image.new("RGB", size, (200, 80, 40))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    exif[ExifTags.Base.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (37.0, 46.0, 30.0),
        ExifTags.GPS.GPSLongitudeRef: "W", ExifTags.GPS.GPSLongitude: (122.0, 25.0, 10.0),
    }  # fmt: skip
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def minimal_pdf() -> bytes:
    return (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
            b"trailer<</Root 1 0 R>>\n%%EOF\n")  # fmt: skip


@pytest.fixture
async def app(
    settings: Settings, resources: Resources, conn: psycopg.Connection[Any]
) -> AsyncIterator[tuple[Market, aio.Channel]]:
    roomy = {
        "rate_limit_upload_per_minute": 1000,
        "rate_limit_read_per_minute": 100_000,
    }  # the tests poll
    server = HustleServer(settings.model_copy(update=roomy), resources)
    await server.start()
    async with aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield Market(channel, conn), channel
    await server.stop(grace=0)


@pytest.fixture
def worker(database_url: str, redis_url: str, capture: Capture) -> Iterator[Worker]:
    yield from start_worker(job_env(database_url, redis_url, capture.url))


async def post_file(post: U.PresignedPost, data: bytes, content_type: str | None = None) -> int:
    form = aiohttp.FormData()
    for name, value in post.fields.items():
        form.add_field(name, content_type if name == "Content-Type" and content_type else value)
    form.add_field(
        "file",
        data,
        filename="upload.bin",
        content_type=content_type or post.fields["Content-Type"],
    )
    async with aiohttp.ClientSession() as http, http.post(post.url, data=form) as response:
        return response.status


async def create(stub: upload_pb2_grpc.UploadServiceStub, who: Person, purpose: int, content_type: str,
                 size: int) -> U.CreateUploadResponse:  # fmt: skip
    return await stub.CreateUpload(U.CreateUploadRequest(purpose=purpose, content_type=content_type, size_bytes=size),
                                   metadata=who.auth, timeout=10)  # fmt: skip


async def until_processed(stub: upload_pb2_grpc.UploadServiceStub, who: Person, upload_id: str,
                          worker: Worker) -> U.Upload:  # fmt: skip
    async def state() -> U.Upload:
        return (
            await stub.GetUpload(
                U.GetUploadRequest(upload_id=upload_id), metadata=who.auth, timeout=10
            )
        ).upload

    return await eventually(state, lambda u: u.state in (U.UPLOAD_STATE_READY, U.UPLOAD_STATE_REJECTED), timeout=30,
                            what=lambda: worker.process.output)  # fmt: skip


async def fails(call: object, code: grpc.StatusCode, reason: str) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == code, caught.value
    assert error_details(caught.value)["ErrorInfo"].reason == reason
    return caught.value


async def test_a_photo_with_gps_comes_out_clean_with_a_thumbnail(
    app: tuple[Market, aio.Channel], worker: Worker
) -> None:
    market, channel = app
    stub = upload_pb2_grpc.UploadServiceStub(channel)
    me = market.poster()
    original = jpeg_with_gps()
    assert (
        Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    )  # it carries GPS
    created = await create(stub, me, U.UPLOAD_PURPOSE_PROOF_PHOTO, "image/jpeg", len(original))
    assert created.upload.state == U.UPLOAD_STATE_PENDING
    assert await post_file(created.post, original) in (200, 204)
    done = await stub.CompleteUpload(
        U.CompleteUploadRequest(upload_id=created.upload.upload_id), metadata=me.auth
    )
    assert done.upload.state == U.UPLOAD_STATE_UPLOADED
    ready = await until_processed(stub, me, created.upload.upload_id, worker)
    assert ready.state == U.UPLOAD_STATE_READY, ready.rejection_reason
    assert (ready.width, ready.height) == (640, 480)
    async with aiohttp.ClientSession() as http:
        async with http.get(ready.download_url) as response:
            assert response.status == 200
            cleaned = Image.open(io.BytesIO(await response.read()))
        async with http.get(ready.thumbnail_url) as response:
            thumbnail = Image.open(io.BytesIO(await response.read()))
    assert cleaned.format == "JPEG"
    assert not cleaned.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert len(cleaned.getexif()) == 0
    assert max(thumbnail.size) == 320
    sha = market.world.value(
        "SELECT encode(sha256, 'hex') FROM uploads WHERE id = %s", ready.upload_id
    )
    assert len(sha) == 64


@pytest.mark.parametrize(
    ("content_type", "data", "reason"),
    [
        ("image/jpeg", minimal_pdf(), "application/pdf, not image/jpeg"),
        ("image/jpeg", jpeg_with_gps()[:1500], "damaged or truncated"),
        ("image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "damaged or truncated"),
    ],
)
async def test_bad_files_end_rejected(app: tuple[Market, aio.Channel], worker: Worker, content_type: str,
                                      data: bytes, reason: str) -> None:  # fmt: skip
    market, channel = app
    stub = upload_pb2_grpc.UploadServiceStub(channel)
    me = market.poster()
    created = await create(stub, me, U.UPLOAD_PURPOSE_PROOF_PHOTO, content_type, len(data))
    assert await post_file(created.post, data) in (200, 204)
    await stub.CompleteUpload(
        U.CompleteUploadRequest(upload_id=created.upload.upload_id), metadata=me.auth
    )
    processed = await until_processed(stub, me, created.upload.upload_id, worker)
    assert processed.state == U.UPLOAD_STATE_REJECTED
    assert reason in processed.rejection_reason
    assert processed.download_url == ""


async def test_a_zero_byte_file_is_rejected(app: tuple[Market, aio.Channel]) -> None:
    market, channel = app
    stub = upload_pb2_grpc.UploadServiceStub(channel)
    me = market.poster()
    created = await create(stub, me, U.UPLOAD_PURPOSE_PROOF_PHOTO, "image/jpeg", 100)
    assert await post_file(created.post, b"") in (200, 204)
    error = await fails(stub.CompleteUpload(U.CompleteUploadRequest(upload_id=created.upload.upload_id), metadata=me.auth),
                        grpc.StatusCode.INVALID_ARGUMENT, "HX301")  # fmt: skip
    assert "empty" in error.details()
    state = (
        await stub.GetUpload(
            U.GetUploadRequest(upload_id=created.upload.upload_id), metadata=me.auth
        )
    ).upload
    assert state.state == U.UPLOAD_STATE_REJECTED


async def test_complete_before_the_file_exists_is_failed_precondition(
    app: tuple[Market, aio.Channel],
) -> None:
    market, channel = app
    stub = upload_pb2_grpc.UploadServiceStub(channel)
    me = market.poster()
    created = await create(stub, me, U.UPLOAD_PURPOSE_AVATAR, "image/png", 1000)
    await fails(stub.CompleteUpload(U.CompleteUploadRequest(upload_id=created.upload.upload_id), metadata=me.auth),
                grpc.StatusCode.FAILED_PRECONDITION, "HX304")  # fmt: skip


async def test_the_signed_policy_carries_the_conditions(app: tuple[Market, aio.Channel]) -> None:
    market, channel = app
    stub = upload_pb2_grpc.UploadServiceStub(channel)
    me = market.poster()
    created = await create(stub, me, U.UPLOAD_PURPOSE_VERIFICATION_DOC, "application/pdf", 123_456)
    policy = json.loads(base64.b64decode(created.post.fields["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, 123_456] in conditions
    assert {"Content-Type": "application/pdf"} in conditions
    key = market.world.value(
        "SELECT object_key FROM uploads WHERE id = %s", created.upload.upload_id
    )
    assert {"key": key} in conditions
    assert key == f"verification/{me.id}/{created.upload.upload_id}"
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert timedelta(minutes=9) < expiration - datetime.now(UTC) <= timedelta(minutes=10, seconds=5)
    assert created.post.fields["Content-Type"] == "application/pdf"


async def test_limits_are_enforced_again_on_completion(app: tuple[Market, aio.Channel]) -> None:
    """moto does not enforce the signed policy; CompleteUpload refuses what breaks it anyway."""
    market, channel = app
    stub = upload_pb2_grpc.UploadServiceStub(channel)
    me = market.poster()
    big = await create(stub, me, U.UPLOAD_PURPOSE_AVATAR, "image/jpeg", 1000)
    assert await post_file(big.post, jpeg_with_gps((2000, 2000))) in (
        200,
        204,
    )  # far over 1000 bytes
    error = await fails(stub.CompleteUpload(U.CompleteUploadRequest(upload_id=big.upload.upload_id), metadata=me.auth),
                        grpc.StatusCode.INVALID_ARGUMENT, "HX301")  # fmt: skip
    assert error_details(error)["BadRequest"].field_violations[0].field == "size_bytes"
    state = (
        await stub.GetUpload(U.GetUploadRequest(upload_id=big.upload.upload_id), metadata=me.auth)
    ).upload
    assert state.state == U.UPLOAD_STATE_REJECTED

    data = jpeg_with_gps()
    retyped = await create(stub, me, U.UPLOAD_PURPOSE_AVATAR, "image/jpeg", len(data))
    assert await post_file(retyped.post, data, content_type="image/gif") in (200, 204)
    error = await fails(stub.CompleteUpload(U.CompleteUploadRequest(upload_id=retyped.upload.upload_id), metadata=me.auth),
                        grpc.StatusCode.INVALID_ARGUMENT, "HX301")  # fmt: skip
    assert error_details(error)["BadRequest"].field_violations[0].field == "content_type"

    await fails(create(stub, me, U.UPLOAD_PURPOSE_AVATAR, "image/jpeg", 6 * 1024 * 1024),
                grpc.StatusCode.INVALID_ARGUMENT, "HX301")  # fmt: skip
    await fails(
        create(stub, me, U.UPLOAD_PURPOSE_AVATAR, "application/pdf", 100),
        grpc.StatusCode.INVALID_ARGUMENT,
        "HX301",
    )


async def test_another_users_upload_cannot_be_used(
    app: tuple[Market, aio.Channel], worker: Worker
) -> None:
    market, channel = app
    stub = upload_pb2_grpc.UploadServiceStub(channel)
    owner, thief = market.poster(), market.poster()
    data = jpeg_with_gps()
    created = await create(stub, owner, U.UPLOAD_PURPOSE_AVATAR, "image/jpeg", len(data))
    await post_file(created.post, data)
    await fails(stub.CompleteUpload(U.CompleteUploadRequest(upload_id=created.upload.upload_id), metadata=thief.auth),
                grpc.StatusCode.PERMISSION_DENIED, "HX202")  # fmt: skip
    await stub.CompleteUpload(
        U.CompleteUploadRequest(upload_id=created.upload.upload_id), metadata=owner.auth
    )
    assert (
        await until_processed(stub, owner, created.upload.upload_id, worker)
    ).state == U.UPLOAD_STATE_READY
    await fails(stub.GetUpload(U.GetUploadRequest(upload_id=created.upload.upload_id), metadata=thief.auth),
                grpc.StatusCode.PERMISSION_DENIED, "HX202")  # fmt: skip
    await fails(market.users.SetAvatar(user_pb2.SetAvatarRequest(upload_id=created.upload.upload_id), metadata=thief.auth),
                grpc.StatusCode.PERMISSION_DENIED, "HX202")  # fmt: skip
    me = (await market.users.SetAvatar(user_pb2.SetAvatarRequest(upload_id=created.upload.upload_id),
                                       metadata=owner.auth)).me  # fmt: skip
    assert me.avatar_upload_id == created.upload.upload_id


async def uploaded_document(
    stub: upload_pb2_grpc.UploadServiceStub, who: Person, worker: Worker
) -> str:
    pdf = minimal_pdf()
    created = await create(
        stub, who, U.UPLOAD_PURPOSE_VERIFICATION_DOC, "application/pdf", len(pdf)
    )
    await post_file(created.post, pdf)
    await stub.CompleteUpload(
        U.CompleteUploadRequest(upload_id=created.upload.upload_id), metadata=who.auth
    )
    assert (
        await until_processed(stub, who, created.upload.upload_id, worker)
    ).state == U.UPLOAD_STATE_READY
    return created.upload.upload_id


async def test_an_approved_licence_opens_its_trade_and_its_expiry_closes_it(
    app: tuple[Market, aio.Channel], worker: Worker, capture: Capture
) -> None:
    market, channel = app
    uploads = upload_pb2_grpc.UploadServiceStub(channel)
    verifications = verification_pb2_grpc.VerificationServiceStub(channel)
    poster, admin = market.poster(), market.admin()
    electrician = market.worker()
    market.world.rows(
        "UPDATE users SET email = 'sparky@example.com' WHERE id = %s", electrician.user_id
    )
    # the email below is sent at once whatever the time of day (quiet hours would hold it)
    market.world.rows(
        "INSERT INTO notification_settings (user_id, quiet_hours_enabled) VALUES (%s, false)",
        electrician.user_id,
    )
    task = await market.post(poster, trade="electrician")

    async def feed() -> list[str]:
        page = await market.feed.GetFeed(
            feed_pb2.GetFeedRequest(mode=feed_pb2.FEED_MODE_NORMAL), metadata=electrician.auth
        )
        return [item.task.task_id for item in page.items]

    assert task.task_id not in await feed()
    document = await uploaded_document(uploads, electrician, worker)
    expires = datetime.now(UTC) + timedelta(seconds=6)
    request = V.SubmitVerificationRequest(kind=V.VERIFICATION_KIND_TRADE_LICENSE, trade="electrician",
                                          document_upload_ids=[document])  # fmt: skip
    request.expires_at.FromDatetime(expires)
    submitted = (
        await verifications.SubmitVerification(request, metadata=electrician.auth)
    ).verification
    assert submitted.state == V.VERIFICATION_STATE_PENDING
    pending = await verifications.ListPendingVerifications(
        V.ListPendingVerificationsRequest(), metadata=admin.auth
    )
    assert [v.verification_id for v in pending.verifications] == [submitted.verification_id]
    await fails(verifications.ReviewVerification(V.ReviewVerificationRequest(verification_id=submitted.verification_id,
                                                                             approve=True), metadata=electrician.auth),
                grpc.StatusCode.PERMISSION_DENIED, "HX202")  # fmt: skip
    reviewed = await verifications.ReviewVerification(
        V.ReviewVerificationRequest(verification_id=submitted.verification_id, approve=True),
        metadata=admin.auth,
    )
    assert reviewed.verification.state == V.VERIFICATION_STATE_APPROVED

    # the recompute job runs; the next feed call has the trade's task
    await eventually(
        feed, lambda ids: task.task_id in ids, timeout=30, what=lambda: worker.process.output
    )
    [email] = await eventually(capture.emails, lambda e: len(e) == 1, timeout=30)
    assert (email["to"], email["subject"]) == (
        ["sparky@example.com"],
        "Your electrician licence was approved",
    )

    # the licence expires: the task leaves the feed at once, before any job runs
    await eventually(
        feed, lambda ids: task.task_id not in ids, timeout=20, what="the licence's expiry"
    )
    assert datetime.now(UTC) >= expires - timedelta(seconds=1)


async def test_a_rejection_needs_a_reason_and_is_emailed(app: tuple[Market, aio.Channel], worker: Worker,
                                                         capture: Capture) -> None:  # fmt: skip
    market, channel = app
    uploads = upload_pb2_grpc.UploadServiceStub(channel)
    verifications = verification_pb2_grpc.VerificationServiceStub(channel)
    user, admin = market.poster(), market.admin()
    # the email below is sent at once whatever the time of day (quiet hours would hold it)
    market.world.rows(
        "INSERT INTO notification_settings (user_id, quiet_hours_enabled) VALUES (%s, false)",
        user.user_id,
    )
    document = await uploaded_document(uploads, user, worker)
    submitted = (await verifications.SubmitVerification(
        V.SubmitVerificationRequest(kind=V.VERIFICATION_KIND_INSURANCE, document_upload_ids=[document]),
        metadata=user.auth)).verification  # fmt: skip
    await fails(verifications.ReviewVerification(V.ReviewVerificationRequest(verification_id=submitted.verification_id),
                                                 metadata=admin.auth), grpc.StatusCode.INVALID_ARGUMENT, "HX301")  # fmt: skip
    rejected = await verifications.ReviewVerification(
        V.ReviewVerificationRequest(verification_id=submitted.verification_id, reason="Expired policy"),
        metadata=admin.auth)  # fmt: skip
    assert (rejected.verification.state, rejected.verification.rejection_reason) == (
        V.VERIFICATION_STATE_REJECTED,
        "Expired policy",
    )
    [email] = await eventually(capture.emails, lambda e: len(e) == 1, timeout=30)
    assert "Expired policy" in email["text"]
    mine = await verifications.ListMyVerifications(
        V.ListMyVerificationsRequest(), metadata=user.auth
    )
    assert [v.state for v in mine.verifications] == [V.VERIFICATION_STATE_REJECTED]


async def test_a_verification_that_expired_already_is_refused(
    app: tuple[Market, aio.Channel],
) -> None:
    market, channel = app
    verifications = verification_pb2_grpc.VerificationServiceStub(channel)
    user = market.worker()
    document = str(market.world.upload(user.user_id, "VERIFICATION_DOC"))
    request = V.SubmitVerificationRequest(
        kind=V.VERIFICATION_KIND_INSURANCE, document_upload_ids=[document]
    )
    request.expires_at.FromDatetime(datetime.now(UTC) - timedelta(days=1))
    error = await fails(verifications.SubmitVerification(request, metadata=user.auth),
                        grpc.StatusCode.INVALID_ARGUMENT, "HX301")  # fmt: skip
    assert error_details(error)["BadRequest"].field_violations[0].field == "expires_at"
