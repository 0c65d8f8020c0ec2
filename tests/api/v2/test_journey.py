"""A whole journey through the v2 services, as two apps would make it: post, fund and accept;
a message each way (a photo included); proof, approval; both rate, and the ratings are revealed
together; the worker's summary and XP show it; enough completions move the worker to VERIFIED
and then TRUSTED, each with a trust-ledger row and a notification the worker lists and marks
read. The real worker process runs the jobs (uploads, trust.evaluate)."""

from __future__ import annotations

from grpc import aio

from hustle.v2 import (
    message_pb2,
    message_pb2_grpc,
    notification_pb2,
    notification_pb2_grpc,
    rating_pb2,
    rating_pb2_grpc,
    task_pb2,
    user_pb2,
)
from tests.api.v2.market import V2, request_id
from tests.api.v2.test_messages import message_photo
from tests.helpers import eventually
from tests.jobs_harness import Worker

T, M, N, R = task_pb2, message_pb2, notification_pb2, rating_pb2


async def test_post_message_prove_rate_and_rise_to_trusted(
    api: V2, v2_channel: aio.Channel, worker: Worker
) -> None:
    world = api.world
    chat = message_pb2_grpc.MessageServiceStub(v2_channel)
    ratings = rating_pb2_grpc.RatingServiceStub(v2_channel)
    notes = notification_pb2_grpc.NotificationServiceStub(v2_channel)
    poster, doer, admin = api.poster(), api.worker(), api.admin()
    # what VERIFIED asks besides completions (an approved ID, a verified phone) and TRUSTED's
    # account age, set up directly: this journey is about the work
    world.verification(doer.user_id, "ID", approve_by=admin.user_id)
    world.rows(
        "UPDATE users SET phone = '+14155550123', phone_verified_at = now() WHERE id = %s",
        doer.user_id,
    )
    world.rows("SET session_replication_role = replica")  # the past: a creation time never changes
    try:
        world.rows(
            "UPDATE users SET created_at = now() - interval '8 days' WHERE id = %s", doer.user_id
        )
    finally:
        world.rows("SET session_replication_role = origin")

    # post (funded) and accept, then a message each way, the worker's with a photo
    task = await api.post(poster)
    await api.accept(doer, task.task_id)
    await chat.SendMessage(
        M.SendMessageRequest(
            task_id=task.task_id, text="Side gate is open", request_id=request_id()
        ),
        metadata=poster.auth,
        timeout=10,
    )
    photo = await message_photo(api, doer, task.task_id, worker)
    await chat.SendMessage(
        M.SendMessageRequest(
            task_id=task.task_id,
            photo_upload_ids=[photo],
            caption="Started",
            request_id=request_id(),
        ),
        metadata=doer.auth,
        timeout=10,
    )
    thread = await chat.ListMessages(
        M.ListMessagesRequest(task_id=task.task_id), metadata=poster.auth, timeout=10
    )
    assert [m.text or m.caption for m in thread.messages] == ["Started", "Side gate is open"]
    assert [p.upload_id for p in thread.messages[0].photos] == [photo]

    # proof, approval
    await api.submit(doer, task.task_id)
    await api.tasks.ApproveProof(
        T.ApproveProofRequest(task_id=task.task_id, request_id=request_id()),
        metadata=poster.auth,
        timeout=10,
    )

    # both rate; blind until both have, then revealed together
    await ratings.RateTask(
        R.RateTaskRequest(task_id=task.task_id, stars=5, request_id=request_id()),
        metadata=poster.auth,
        timeout=10,
    )
    blind = await ratings.GetTaskRatings(
        R.GetTaskRatingsRequest(task_id=task.task_id), metadata=poster.auth, timeout=10
    )
    assert (blind.revealed, list(blind.ratings), blind.rated_by_caller) == (False, [], True)
    await ratings.RateTask(
        R.RateTaskRequest(task_id=task.task_id, stars=4, request_id=request_id()),
        metadata=doer.auth,
        timeout=10,
    )
    both = await ratings.GetTaskRatings(
        R.GetTaskRatingsRequest(task_id=task.task_id), metadata=doer.auth, timeout=10
    )
    assert both.revealed
    assert sorted(r.stars for r in both.ratings) == [4, 5]
    assert len({r.revealed_at.ToDatetime() for r in both.ratings}) == 1  # together

    summary = (
        await ratings.GetRatingSummary(
            R.GetRatingSummaryRequest(user_id=str(doer.user_id), role=R.RATING_ROLE_WORKER),
            metadata=doer.auth,
            timeout=10,
        )
    ).summary
    assert (summary.count, summary.average_stars) == (1, 5.0)
    me = (await api.users.GetMe(user_pb2.GetMeRequest(), metadata=doer.auth, timeout=10)).me
    assert me.xp_total > 0

    def tier() -> int:
        return int(world.value("SELECT trust_tier FROM users WHERE id = %s", doer.user_id))

    # four more completions: five with ID and phone make VERIFIED
    for _ in range(4):
        await api.complete(api.poster(), doer)
    await eventually(tier, lambda t: t == 2, timeout=30, what=lambda: worker.process.output)
    # fifteen more: twenty, all approved and on time, no dispute lost, 8 days old: TRUSTED
    for _ in range(15):
        await api.complete(api.poster(), doer)
    await eventually(tier, lambda t: t == 3, timeout=30, what=lambda: worker.process.output)

    ledger = world.rows(
        "SELECT old_tier, new_tier FROM trust_ledger WHERE user_id = %s ORDER BY id", doer.user_id
    )
    assert ledger == [(None, 1), (1, 2), (2, 3)]
    me = (await api.users.GetMe(user_pb2.GetMeRequest(), metadata=doer.auth, timeout=10)).me
    assert me.trust_tier == user_pb2.TRUST_TIER_TRUSTED

    # the worker lists the two tier changes and marks them read
    listed = await notes.ListNotifications(
        N.ListNotificationsRequest(page_size=100), metadata=doer.auth, timeout=10
    )
    kinds = [n.kind for n in listed.notifications]
    assert N.NOTIFICATION_KIND_NEW_MESSAGE in kinds
    assert N.NOTIFICATION_KIND_RATINGS_REVEALED in kinds
    changes = [n for n in listed.notifications if n.kind == N.NOTIFICATION_KIND_TRUST_TIER_CHANGED]
    assert len(changes) == 2
    before = (
        await notes.GetUnreadCount(N.GetUnreadCountRequest(), metadata=doer.auth, timeout=10)
    ).unread_count
    marked = await notes.MarkRead(
        N.MarkReadRequest(notification_ids=[n.notification_id for n in changes]),
        metadata=doer.auth,
        timeout=10,
    )
    assert marked.marked_count == 2
    after = (
        await notes.GetUnreadCount(N.GetUnreadCountRequest(), metadata=doer.auth, timeout=10)
    ).unread_count
    assert after == before - 2
