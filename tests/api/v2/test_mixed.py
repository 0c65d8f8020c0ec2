"""A v1 client and a v2 client on the same task at once: one process, one domain, one database.
The poster's app pins hustle.v1, the worker's hustle.v2; each sees the other's moves."""

from __future__ import annotations

from hustle.v1 import task_pb2 as v1_task
from hustle.v2 import common_pb2, feed_pb2, task_pb2
from tests.api.v2.market import V2, request_id

T = task_pb2


async def test_a_v1_poster_and_a_v2_worker(api: V2) -> None:
    v1 = api.people  # the v1 stubs on the same channel
    poster, worker = api.poster(), api.worker()

    # the poster posts and funds through v1
    posted = await v1.post(poster, lat=34.0, lng=-118.0)
    assert posted.escrow_state == v1_task.ESCROW_STATE_FUNDED

    # the worker finds it in the v2 NEARBY feed, accepts it and proves the work through v2
    nearby = await api.feed.GetFeed(
        feed_pb2.GetFeedRequest(mode=feed_pb2.FEED_MODE_NEARBY,
                                location=common_pb2.LatLng(latitude=34.0, longitude=-118.0)),
        metadata=worker.auth,
    )  # fmt: skip
    [item] = nearby.items
    assert (item.task.task_id, item.task.title, item.task.price.amount_cents) == (
        posted.task_id, posted.title, posted.price.amount_cents)  # fmt: skip
    assert item.HasField("distance_meters")
    accepted = await api.accept(worker, posted.task_id, request_id())
    assert accepted.state == T.TASK_STATE_ACCEPTED
    proved = await api.submit(worker, posted.task_id, photos=2)
    assert proved.proof.state == T.PROOF_STATE_SUBMITTED

    # the poster sees it through v1 (proof state as v1's text), and approves through v1
    seen = (
        await v1.tasks.GetTask(v1_task.GetTaskRequest(task_id=posted.task_id), metadata=poster.auth)
    ).task
    assert (seen.state, seen.worker_id) == (v1_task.TASK_STATE_PROOF_SUBMITTED, worker.id)
    proofs = await v1.tasks.ListTaskProofs(v1_task.ListTaskProofsRequest(task_id=posted.task_id),
                                           metadata=poster.auth)  # fmt: skip
    assert [p.state for p in proofs.proofs] == ["SUBMITTED"]
    approved = await v1.tasks.ApproveProof(v1_task.ApproveProofRequest(task_id=posted.task_id),
                                           metadata=poster.auth)  # fmt: skip
    assert approved.task.state == v1_task.TASK_STATE_COMPLETED

    # both see the same end state, each in its own shape
    mine = await api.tasks.ListMyAcceptedTasks(T.ListMyAcceptedTasksRequest(states=[T.TASK_STATE_COMPLETED]),
                                               metadata=worker.auth)  # fmt: skip
    [done] = mine.tasks
    assert (done.task_id, done.escrow_state) == (posted.task_id, T.ESCROW_STATE_RELEASED)
    assert done.closed_at == approved.task.closed_at
    v2_proofs = await api.tasks.ListTaskProofs(T.ListTaskProofsRequest(task_id=posted.task_id),
                                               metadata=worker.auth)  # fmt: skip
    assert [p.state for p in v2_proofs.proofs] == [T.PROOF_STATE_ACCEPTED]
    posted_v1 = await v1.tasks.ListMyPostedTasks(
        v1_task.ListMyPostedTasksRequest(), metadata=poster.auth
    )
    assert [t.state for t in posted_v1.tasks] == [v1_task.TASK_STATE_COMPLETED]
