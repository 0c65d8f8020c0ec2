"""hustle.v2.MessageService through a real channel: a thread between a task's poster and worker
(a photo included, posted to the local S3 and processed by the real worker), unread counts,
marking read, read receipts on and off, the refusals (closed thread, stranger, contact details,
length, photos, an inactive account, the hourly limit), admin reads around disputes (logged) and
hiding, and who may call what."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import dramatiq
import grpc
import pytest
from dramatiq.brokers.redis import RedisBroker
from grpc import aio
from PIL import Image

from hustle.v1 import upload_pb2 as v1_upload_pb2
from hustle.v1 import upload_pb2_grpc as v1_upload_pb2_grpc
from hustle.v2 import message_pb2, message_pb2_grpc, upload_pb2
from server.app import HustleServer, Resources
from server.config import Settings
from tests.api.market import Person
from tests.api.v2.conftest import ROOMY
from tests.api.v2.market import V2, fails, request_id
from tests.helpers import error_details, eventually
from tests.invariants.test_messages import backdate_end
from tests.invariants.test_messages import send as send_raw
from tests.jobs_harness import Worker

M = message_pb2
U = upload_pb2
S = grpc.StatusCode


@pytest.fixture
async def v2_server(settings: Settings, resources: Resources) -> AsyncIterator[HustleServer]:
    """This module's server: roomy per-minute limits, the MESSAGE group's too (the hourly and
    daily limits are the database's, and tested here)."""
    roomy = {**ROOMY, "rate_limit_message_per_minute": 1000}
    server = HustleServer(settings.model_copy(update=roomy), resources)
    await server.start()
    yield server
    await server.stop(grace=0)


@pytest.fixture
def chat(v2_channel: aio.Channel) -> message_pb2_grpc.MessageServiceStub:
    return message_pb2_grpc.MessageServiceStub(v2_channel)


async def in_progress(api: V2) -> tuple[str, Person, Person]:
    """An ACCEPTED task posted and taken through the API: (task id, poster, worker)."""
    poster, worker = api.poster(), api.worker()
    task = await api.post(poster)
    await api.accept(worker, task.task_id)
    return task.task_id, poster, worker


def say(task_id: str, text: str = "", photos: list[str] | None = None, caption: str = "",
        rid: str = "") -> M.SendMessageRequest:  # fmt: skip
    return M.SendMessageRequest(task_id=task_id, text=text, photo_upload_ids=photos or [],
                                caption=caption, request_id=rid)  # fmt: skip


async def thread(chat: message_pb2_grpc.MessageServiceStub, who: Person, task_id: str,
                 page_size: int = 0) -> list[M.Message]:  # fmt: skip
    listed = await chat.ListMessages(
        M.ListMessagesRequest(task_id=task_id, page_size=page_size), metadata=who.auth, timeout=10
    )
    return list(listed.messages)


async def unread(chat: message_pb2_grpc.MessageServiceStub, who: Person) -> tuple[dict[str, int], int]:  # fmt: skip
    counts = await chat.GetUnreadCounts(M.GetUnreadCountsRequest(), metadata=who.auth, timeout=10)
    return {t.task_id: t.unread for t in counts.threads}, counts.total


def badges(api: V2, who: Person) -> int:
    """The user's unread NEW_MESSAGE notifications."""
    return int(api.world.value("SELECT count(*) FROM notifications WHERE user_id = %s"
                               " AND kind = 'NEW_MESSAGE' AND read_at IS NULL", who.user_id))  # fmt: skip


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 120, 200)).save(out, "JPEG")
    return out.getvalue()


async def message_photo(api: V2, who: Person, task_id: str, jobs: Worker) -> str:
    """A photo for the task's thread: created, POSTed to S3, completed, processed → READY."""
    data = jpeg()
    created = await api.uploads.CreateUpload(
        U.CreateUploadRequest(purpose=U.UPLOAD_PURPOSE_MESSAGE_PHOTO, content_type="image/jpeg",
                              size_bytes=len(data), task_id=task_id, request_id=request_id()),
        metadata=who.auth, timeout=10)  # fmt: skip
    upload_id = created.upload.upload_id
    assert created.post.fields["key"] == f"messages/{task_id}/{upload_id}"
    form = aiohttp.FormData()
    for name, value in created.post.fields.items():
        form.add_field(name, value)
    form.add_field("file", data, filename="photo.jpg", content_type="image/jpeg")
    async with aiohttp.ClientSession() as http, http.post(created.post.url, data=form) as response:
        assert response.status in (200, 204)
    await api.uploads.CompleteUpload(
        U.CompleteUploadRequest(upload_id=upload_id), metadata=who.auth
    )

    async def state() -> int:
        got = await api.uploads.GetUpload(
            U.GetUploadRequest(upload_id=upload_id), metadata=who.auth
        )
        return got.upload.state

    ready = await eventually(state, lambda s: s in (U.UPLOAD_STATE_READY, U.UPLOAD_STATE_REJECTED),
                             timeout=30, what=lambda: jobs.process.output)  # fmt: skip
    assert ready == U.UPLOAD_STATE_READY
    return upload_id


async def test_a_thread_back_and_forth_with_a_photo(
    api: V2, chat: message_pb2_grpc.MessageServiceStub, worker: Worker, v2_channel: aio.Channel
) -> None:
    task_id, poster, hand = await in_progress(api)
    hello = (await chat.SendMessage(say(task_id, "  On my way, about 20 minutes out.  "),
                                    metadata=hand.auth)).message  # fmt: skip
    assert (hello.text, hello.sender_id, hello.recipient_id) == (
        "On my way, about 20 minutes out.", hand.id, poster.id)  # fmt: skip
    assert not hello.HasField("read_at")

    # a photo: the worker's own upload for this thread, processed by the real worker
    photo = await message_photo(api, hand, task_id, worker)
    retry = request_id()
    sent = (await chat.SendMessage(say(task_id, photos=[photo], caption="The leak", rid=retry),
                                   metadata=hand.auth)).message  # fmt: skip
    again = (await chat.SendMessage(say(task_id, photos=[photo], caption="The leak", rid=retry),
                                    metadata=hand.auth)).message  # fmt: skip
    assert again == sent  # a retry: the first answer, one message
    assert [p.upload_id for p in sent.photos] == [photo]
    assert await unread(chat, poster) == ({task_id: 2}, 2)
    assert await unread(chat, hand) == ({}, 0)

    listed = await thread(chat, poster, task_id)
    assert [m.message_id for m in listed] == [sent.message_id, hello.message_id]  # newest first
    [picture] = listed[0].photos
    assert (picture.width, picture.height, listed[0].caption) == (64, 48, "The leak")
    async with aiohttp.ClientSession() as http:
        for url in (picture.download_url, picture.thumbnail_url):
            async with http.get(url) as response:
                assert response.status == 200
                assert (await response.read())[:3] == b"\xff\xd8\xff"
    # the recipient sees the photo in the thread, not through GetUpload (it is the sender's);
    # and hustle.v1 does not know message photos at all
    await fails(api.uploads.GetUpload(U.GetUploadRequest(upload_id=photo), metadata=poster.auth),
                S.PERMISSION_DENIED, "HX202")  # fmt: skip
    v1 = v1_upload_pb2_grpc.UploadServiceStub(v2_channel)
    await fails(v1.GetUpload(v1_upload_pb2.GetUploadRequest(upload_id=photo), metadata=hand.auth),
                S.NOT_FOUND, "HX302")  # fmt: skip

    # the poster reads the older one, then the rest; marking again marks nothing
    assert badges(api, poster) == 2
    mark = M.MarkThreadReadRequest(task_id=task_id, up_to_id=hello.message_id)
    assert (await chat.MarkThreadRead(mark, metadata=poster.auth)).marked == 1
    assert badges(api, poster) == 1
    assert await unread(chat, poster) == ({task_id: 1}, 1)
    everything = M.MarkThreadReadRequest(task_id=task_id)
    assert (await chat.MarkThreadRead(everything, metadata=poster.auth)).marked == 1
    assert (await chat.MarkThreadRead(everything, metadata=poster.auth)).marked == 0
    assert (await chat.MarkThreadRead(everything, metadata=hand.auth)).marked == 0
    assert await unread(chat, poster) == ({}, 0)
    assert badges(api, poster) == 0  # the NEW_MESSAGEs were marked read with their messages

    # read receipts: the sender sees the reads, until the reader turns them off
    assert all(m.HasField("read_at") for m in await thread(chat, hand, task_id))
    off = await chat.SetReadReceipts(M.SetReadReceiptsRequest(enabled=False), metadata=poster.auth)
    assert not off.settings.read_receipts
    assert not any(m.HasField("read_at") for m in await thread(chat, hand, task_id))
    assert all(m.HasField("read_at") for m in await thread(chat, poster, task_id))  # own reads
    got = await chat.GetMessageSettings(M.GetMessageSettingsRequest(), metadata=poster.auth)
    assert not got.settings.read_receipts
    mine = await chat.GetMessageSettings(M.GetMessageSettingsRequest(), metadata=hand.auth)
    assert mine.settings.read_receipts  # on by default
    await chat.SetReadReceipts(M.SetReadReceiptsRequest(enabled=True), metadata=poster.auth)
    assert all(m.HasField("read_at") for m in await thread(chat, hand, task_id))

    # the reply, and each recipient's NEW_MESSAGE with a preview of at most 50 characters
    reply = "Thanks! The gate code is at the front desk, ask for Sam at reception."
    await chat.SendMessage(say(task_id, reply), metadata=poster.auth)
    page = await thread(chat, hand, task_id, page_size=2)
    assert [m.text for m in page] == [reply, ""]
    told = api.world.rows(
        "SELECT user_id, body FROM notifications WHERE kind = 'NEW_MESSAGE' ORDER BY created_at"
    )
    assert told == [
        (poster.user_id, "On my way, about 20 minutes out."),
        (poster.user_id, "Sent a photo"),
        (hand.user_id, reply[:49] + "…"),
    ]
    assert all(len(body) <= 50 for _, body in told)


async def test_message_photos_belong_to_a_thread(
    api: V2, chat: message_pb2_grpc.MessageServiceStub
) -> None:
    task_id, poster, hand = await in_progress(api)
    stranger = api.poster()

    def ask(purpose: int, task: str = "") -> U.CreateUploadRequest:
        return U.CreateUploadRequest(purpose=purpose, content_type="image/jpeg", size_bytes=1000,
                                     task_id=task)  # fmt: skip

    await fails(api.uploads.CreateUpload(ask(U.UPLOAD_PURPOSE_MESSAGE_PHOTO, task_id),
                                         metadata=stranger.auth), S.PERMISSION_DENIED, "HX802")  # fmt: skip
    error = await fails(api.uploads.CreateUpload(ask(U.UPLOAD_PURPOSE_MESSAGE_PHOTO),
                                                 metadata=hand.auth), S.INVALID_ARGUMENT, "HX301")  # fmt: skip
    assert error_details(error)["ErrorInfo"].metadata["field"] == "task_id"  # type: ignore[attr-defined]
    await fails(api.uploads.CreateUpload(ask(U.UPLOAD_PURPOSE_AVATAR, task_id), metadata=hand.auth),
                S.INVALID_ARGUMENT, "HX301")  # fmt: skip
    big = U.CreateUploadRequest(purpose=U.UPLOAD_PURPOSE_MESSAGE_PHOTO, content_type="image/webp",
                                size_bytes=5 * 1024 * 1024 + 1, task_id=task_id)  # fmt: skip
    error = await fails(
        api.uploads.CreateUpload(big, metadata=hand.auth), S.INVALID_ARGUMENT, "HX301"
    )
    assert error_details(error)["BadRequest"].field_violations  # type: ignore[attr-defined]
    pending = (await api.uploads.CreateUpload(ask(U.UPLOAD_PURPOSE_MESSAGE_PHOTO, task_id),
                                              metadata=hand.auth)).upload.upload_id  # fmt: skip
    await fails(chat.SendMessage(say(task_id, "see", [pending]), metadata=hand.auth),
                S.INVALID_ARGUMENT, "HX803")  # not READY  # fmt: skip
    await fails(chat.SendMessage(say(task_id, "see", [pending]), metadata=poster.auth),
                S.INVALID_ARGUMENT, "HX803")  # not theirs  # fmt: skip


async def test_the_thread_opens_with_acceptance_and_closes_with_the_task(
    api: V2, chat: message_pb2_grpc.MessageServiceStub
) -> None:
    poster, hand = api.poster(), api.worker()
    task = await api.post(poster)
    await fails(chat.SendMessage(say(task.task_id, "Anyone?"), metadata=poster.auth),
                S.FAILED_PRECONDITION, "HX801")  # fmt: skip
    await api.accept(hand, task.task_id)
    await chat.SendMessage(say(task.task_id, "Welcome"), metadata=poster.auth)
    await api.submit(hand, task.task_id)
    await chat.SendMessage(say(task.task_id, "Proof is in"), metadata=hand.auth)
    world = api.world
    world.approve(uuid.UUID(task.task_id))
    for who in (poster, hand):
        await fails(chat.SendMessage(say(task.task_id, "One more thing"), metadata=who.auth),
                    S.FAILED_PRECONDITION, "HX801")  # fmt: skip
    # read-only, not gone: both still read it and mark it read
    assert [m.text for m in await thread(chat, poster, task.task_id)] == ["Proof is in", "Welcome"]
    done = M.MarkThreadReadRequest(task_id=task.task_id)
    assert (await chat.MarkThreadRead(done, metadata=poster.auth)).marked == 1


async def test_refused_messages_name_the_rule_and_the_field(
    api: V2, chat: message_pb2_grpc.MessageServiceStub
) -> None:
    task_id, poster, hand = await in_progress(api)
    stranger = api.worker()
    await fails(chat.SendMessage(say(task_id, "Hi"), metadata=stranger.auth),
                S.PERMISSION_DENIED, "HX802")  # fmt: skip
    await fails(chat.SendMessage(say(str(uuid.uuid4()), "Hi"), metadata=poster.auth),
                S.NOT_FOUND, "HX302")  # fmt: skip

    async def refused(request: M.SendMessageRequest, code: S, reason: str, field: str) -> None:
        error = await fails(chat.SendMessage(request, metadata=poster.auth), code, reason)
        info: Any = error_details(error)["ErrorInfo"]
        assert info.metadata["field"] == field, error

    await refused(say(task_id, "Call me on 415-555-0123"), S.INVALID_ARGUMENT, "HX812", "text")
    await refused(say(task_id, "or mail ana@example.com"), S.INVALID_ARGUMENT, "HX812", "text")
    await refused(say(task_id, "see https://x.example/y"), S.INVALID_ARGUMENT, "HX812", "text")
    await refused(say(task_id, "x" * 501), S.INVALID_ARGUMENT, "HX804", "text")
    await refused(say(task_id, "   "), S.INVALID_ARGUMENT, "HX804", "text")
    four = [str(uuid.uuid4()) for _ in range(4)]
    await refused(say(task_id, "look", four), S.INVALID_ARGUMENT, "HX803", "photo_upload_ids")
    await refused(say(task_id, "hi", caption="a caption"), S.INVALID_ARGUMENT, "HX301", "caption")
    await refused(say("nope", "hi"), S.INVALID_ARGUMENT, "HX301", "task_id")
    await refused(say(task_id, "hi", ["nope"]), S.INVALID_ARGUMENT, "HX301", "photo_upload_ids[0]")
    assert api.world.value("SELECT count(*) FROM messages") == 0  # nothing half-written

    # an inactive account cannot write (INV-17); the other party can
    api.world.rows("UPDATE users SET account_status = 'SUSPENDED' WHERE id = %s", hand.user_id)
    await fails(chat.SendMessage(say(task_id, "Hello?"), metadata=hand.auth),
                S.PERMISSION_DENIED, "HX405")  # fmt: skip
    api.world.rows("UPDATE users SET account_status = 'ACTIVE' WHERE id = %s", hand.user_id)

    # 10 an hour per sender and thread, with the delay until the next may go
    for i in range(10):
        await chat.SendMessage(say(task_id, f"note {i}"), metadata=poster.auth)
    error = await fails(chat.SendMessage(say(task_id, "note 10"), metadata=poster.auth),
                        S.RESOURCE_EXHAUSTED, "HX501")  # fmt: skip
    delay: Any = error_details(error)["RetryInfo"]
    assert 3500 < delay.retry_delay.seconds <= 3600
    await chat.SendMessage(say(task_id, "my turn"), metadata=hand.auth)


async def test_admins_read_disputed_threads_only_and_every_read_is_logged(
    api: V2, chat: message_pb2_grpc.MessageServiceStub
) -> None:
    task_id, poster, hand = await in_progress(api)
    admin = api.admin()
    first = (await chat.SendMessage(say(task_id, "Starting now"), metadata=hand.auth)).message
    rude = (
        await chat.SendMessage(say(task_id, "This is taking forever"), metadata=poster.auth)
    ).message
    await fails(chat.ListMessages(M.ListMessagesRequest(task_id=task_id), metadata=admin.auth),
                S.PERMISSION_DENIED, "HX802")  # fmt: skip
    world, task = api.world, uuid.UUID(task_id)
    world.submit_proof(task)
    world.dispute(task)
    seen = await thread(chat, admin, task_id)
    assert [m.message_id for m in seen] == [rude.message_id, first.message_id]
    world.resolve(task, "RELEASE")  # was disputed: still readable by admins, and kept
    assert len(await thread(chat, admin, task_id)) == 2
    log = world.rows("SELECT actor_id, action, target_kind, target_id, details->>'messages'"
                     " FROM admin_actions ORDER BY id")  # fmt: skip
    assert log == [(admin.user_id, "message.read_thread", "task", task_id, "2")] * 2

    hide = M.HideMessageRequest(message_id=rude.message_id, reason="Reported as abusive")
    await fails(chat.HideMessage(hide, metadata=poster.auth), S.PERMISSION_DENIED, "HX202")
    hidden = (await chat.HideMessage(hide, metadata=admin.auth)).message
    assert (hidden.hidden_reason, hidden.HasField("hidden_at")) == ("Reported as abusive", True)
    assert (await chat.HideMessage(hide, metadata=admin.auth)).message == hidden  # once
    for who in (poster, hand):  # gone for the parties, and from the unread counts
        assert [m.message_id for m in await thread(chat, who, task_id)] == [first.message_id]
    assert await unread(chat, hand) == ({}, 0)
    kept = await thread(chat, admin, task_id)
    assert [m.hidden_reason for m in kept] == ["Reported as abusive", ""]
    hides = world.rows("SELECT actor_id, target_kind, target_id, reason FROM admin_actions"
                       " WHERE action = 'message.hide'")  # fmt: skip
    assert hides == [(admin.user_id, "message", rude.message_id, "Reported as abusive")]
    missing = M.HideMessageRequest(message_id=str(uuid.uuid4()), reason="spam")
    await fails(chat.HideMessage(missing, metadata=admin.auth), S.NOT_FOUND, "HX302")
    reasonless = M.HideMessageRequest(message_id=first.message_id)
    await fails(chat.HideMessage(reasonless, metadata=admin.auth), S.INVALID_ARGUMENT, "HX301")


async def test_who_may_call_what(api: V2, chat: message_pb2_grpc.MessageServiceStub) -> None:
    """The matrix: anonymous, stranger, poster, worker, admin against every MessageService RPC
    on an undisputed task's thread (and ListMessages on a disputed one)."""
    task_id, poster, hand = await in_progress(api)
    disputed, d_poster, d_worker = await in_progress(api)
    people = {"anonymous": None, "stranger": api.worker(), "poster": poster, "worker": hand,
              "admin": api.admin()}  # fmt: skip
    message = (await chat.SendMessage(say(task_id, "hello"), metadata=hand.auth)).message
    await chat.SendMessage(say(disputed, "hello"), metadata=d_worker.auth)
    api.world.submit_proof(uuid.UUID(disputed))
    api.world.dispute(uuid.UUID(disputed))
    calls = {
        "SendMessage": (chat.SendMessage, say(task_id, "hi")),
        "ListMessages": (chat.ListMessages, M.ListMessagesRequest(task_id=task_id)),
        "ListMessages(disputed)": (chat.ListMessages, M.ListMessagesRequest(task_id=disputed)),
        "MarkThreadRead": (chat.MarkThreadRead, M.MarkThreadReadRequest(task_id=task_id)),
        "GetUnreadCounts": (chat.GetUnreadCounts, M.GetUnreadCountsRequest()),
        "GetMessageSettings": (chat.GetMessageSettings, M.GetMessageSettingsRequest()),
        "SetReadReceipts": (chat.SetReadReceipts, M.SetReadReceiptsRequest(enabled=True)),
        "HideMessage": (chat.HideMessage,
                        M.HideMessageRequest(message_id=message.message_id, reason="spam")),
    }  # fmt: skip
    ok, party_only = "OK", "HX802"
    expected = {  # anonymous, stranger, poster, worker, admin (the disputed task's: strangers)
        "SendMessage": ("HX401", party_only, ok, ok, party_only),
        "ListMessages": ("HX401", party_only, ok, ok, party_only),
        "ListMessages(disputed)": ("HX401", party_only, party_only, party_only, ok),
        "MarkThreadRead": ("HX401", party_only, ok, ok, party_only),
        "GetUnreadCounts": ("HX401", ok, ok, ok, ok),
        "GetMessageSettings": ("HX401", ok, ok, ok, ok),
        "SetReadReceipts": ("HX401", ok, ok, ok, ok),
        "HideMessage": ("HX401", "HX202", "HX202", "HX202", ok),
    }
    found: dict[str, tuple[str, ...]] = {}
    for name, (method, request) in calls.items():
        row = []
        for role, who in people.items():
            try:
                answer: Any = await method(request, metadata=who.auth if who else (), timeout=10)
            except aio.AioRpcError as error:
                info: Any = error_details(error).get("ErrorInfo")
                row.append(info.reason if info else error.code().name)
                continue
            row.append(ok)
            if name == "GetUnreadCounts":  # the parties marked theirs read; nobody sees d_poster's
                assert answer.total == 0, role
            if name.startswith("ListMessages") and role != "admin":
                assert all(task_id == m.task_id for m in answer.messages)
        found[name] = tuple(row)
    assert found == expected
    assert await unread(chat, d_poster) == ({disputed: 1}, 1)  # the disputed thread's reader
    assert {r[0] for r in api.world.rows("SELECT target_id FROM admin_actions")} == {
        disputed, message.message_id}  # the admin's read and hide, logged  # fmt: skip


async def test_the_daily_purge_keeps_disputed_and_recent_threads(
    api: V2, worker: Worker, redis_url: str
) -> None:
    """message.purge, sent as the scheduler sends it and run by the real worker: the threads of
    tasks that ended more than 90 days ago go, with their photos (rows and S3 objects), unless
    the task was ever disputed."""
    world = api.world
    old, recent, disputed = (world.task_in("ACCEPTED") for _ in range(3))
    for task in (old, recent, disputed):
        send_raw(world, task, world.poster_of(task), "See you at nine")
    poster = api.people.session(world.poster_of(old))
    photo = await message_photo(api, poster, str(old), worker)
    world.rows("INSERT INTO messages (task_id, sender_id, photo_ids) VALUES (%s, %s, %s::uuid[])",
               old, poster.user_id, [photo])  # fmt: skip
    got = await api.uploads.GetUpload(U.GetUploadRequest(upload_id=photo), metadata=poster.auth)
    links = (got.upload.download_url, got.upload.thumbnail_url)
    async with aiohttp.ClientSession() as http:
        for url in links:
            async with http.get(url) as response:
                assert response.status == 200
    for task in (old, recent):
        world.submit_proof(task)
        world.approve(task)
    world.submit_proof(disputed)
    world.dispute(disputed)
    world.resolve(disputed, "RELEASE")
    backdate_end(world, old, 91)
    backdate_end(world, recent, 89)
    backdate_end(world, disputed, 400)

    producer = RedisBroker(url=redis_url)
    producer.enqueue(dramatiq.Message(queue_name="schedules", actor_name="message.purge", args=(),
                                      kwargs={}, options={}))  # fmt: skip
    producer.close()

    def left() -> list[tuple[Any, ...]]:
        return world.rows("SELECT task_id FROM messages ORDER BY task_id")

    await eventually(left, lambda rows: (old,) not in rows, timeout=30,
                     what=lambda: worker.process.output)  # fmt: skip
    assert sorted(left()) == sorted([(recent,), (disputed,)])
    assert world.value("SELECT count(*) FROM uploads WHERE id = %s", photo) == 0

    async def statuses() -> list[int]:
        async with aiohttp.ClientSession() as http:
            found = []
            for url in links:
                async with http.get(url) as response:
                    found.append(response.status)
            return found

    await eventually(statuses, lambda found: found == [404, 404], timeout=10,
                     what="the photo's objects deleted from S3")  # fmt: skip


async def test_the_hourly_limit_holds_for_concurrent_sends(
    api: V2, chat: message_pb2_grpc.MessageServiceStub
) -> None:
    """Twelve sends at once by one sender in one thread: exactly ten go (the database counts
    one sender's messages one at a time), two are told when to retry."""
    task_id, poster, _ = await in_progress(api)
    calls = [chat.SendMessage(say(task_id, f"burst {i}"), metadata=poster.auth, timeout=10)
             for i in range(12)]  # fmt: skip
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    refusals = [o for o in outcomes if isinstance(o, aio.AioRpcError)]
    assert len(refusals) == 2, outcomes
    for error in refusals:
        assert error.code() == S.RESOURCE_EXHAUSTED
        assert error_details(error)["ErrorInfo"].reason == "HX501"  # type: ignore[attr-defined]
    assert api.world.value("SELECT count(*) FROM messages WHERE task_id = %s", task_id) == 10
