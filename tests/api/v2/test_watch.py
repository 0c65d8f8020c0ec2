"""Watch streams (issue 16) through the real server and the generated v2 stubs: WatchTask across
two server processes, resuming from a cursor, access, the per-user cap, old cursors, WatchFeed's
entries and exits, WatchNotifications, the end of streams on shutdown, and their metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import psycopg
import pytest
from grpc import aio

from hustle.v2 import (
    common_pb2,
    feed_pb2,
    message_pb2,
    message_pb2_grpc,
    notification_pb2,
    notification_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
)
from server import metrics
from server.app import HustleServer, Resources
from server.config import Settings
from tests.api.v2.conftest import ROOMY
from tests.api.v2.market import V2, request_id
from tests.clients.conftest import Server, server_env
from tests.helpers import error_details

T = task_pb2
K = task_pb2.TaskEventKind
FK = feed_pb2.FeedEventKind
NK = notification_pb2.WatchNotificationsEventKind
# quick heartbeats: "nothing more came" is then a heartbeat, not a wait
WATCHING = {**ROOMY, "watch_heartbeat_seconds": 0.4, "watch_streams_per_user": 3}


@pytest.fixture
async def watch_server(settings: Settings, resources: Resources) -> AsyncIterator[HustleServer]:
    server = HustleServer(settings.model_copy(update=WATCHING), resources)
    await server.start()
    yield server
    await server.stop(grace=0)


@pytest.fixture
async def channel(watch_server: HustleServer) -> AsyncIterator[aio.Channel]:
    async with aio.insecure_channel(f"127.0.0.1:{watch_server.grpc_port}") as opened:
        yield opened


@pytest.fixture
def api(channel: aio.Channel, conn: psycopg.Connection[Any]) -> V2:
    return V2(channel, conn)


async def read(call: Any, timeout: float = 5.0) -> Any:
    message = await asyncio.wait_for(call.read(), timeout)
    assert message is not grpc.aio.EOF, "the stream ended"
    return message


async def next_event(call: Any, timeout: float = 5.0) -> Any:
    """The next message that is not a heartbeat."""
    deadline = time.monotonic() + timeout
    while True:
        message = await read(call, max(0.01, deadline - time.monotonic()))
        if message.kind not in (
            K.TASK_EVENT_KIND_HEARTBEAT,
            FK.FEED_EVENT_KIND_HEARTBEAT,
            NK.WATCH_NOTIFICATIONS_EVENT_KIND_HEARTBEAT,
        ):
            return message


async def quiet(call: Any) -> Any:
    """The next message is a heartbeat (nothing else was pending): returned."""
    message = await read(call, 3.0)
    assert message.kind == 1, message  # HEARTBEAT, in each of the watch streams' kinds
    return message


async def refused(call: Any, code: grpc.StatusCode, reason: str) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as caught:
        await asyncio.wait_for(call.read(), 5)
    assert caught.value.code() == code, caught.value
    assert error_details(caught.value)["ErrorInfo"].reason == reason, caught.value  # type: ignore[attr-defined]
    return caught.value


def watch_task(api: V2, who: Any, task_id: str, after: str = "") -> Any:
    return api.tasks.WatchTask(T.WatchTaskRequest(task_id=task_id, after=after), metadata=who.auth)


async def test_a_watcher_sees_an_accept_made_through_another_process_within_a_second(
    api: V2, database_url: str, redis_url: str
) -> None:
    poster, worker = api.poster(), api.worker()
    task = await api.post(poster)
    other = Server(server_env(database_url, redis_url))
    try:
        await other.start_serving()
        call = watch_task(api, poster, task.task_id)
        first = await read(call)
        assert first.kind == K.TASK_EVENT_KIND_HEARTBEAT
        assert first.cursor
        async with aio.insecure_channel(other.address) as elsewhere:
            accept = task_pb2_grpc.TaskServiceStub(elsewhere).AcceptTask
            await accept(
                T.AcceptTaskRequest(task_id=task.task_id, request_id=request_id()),
                metadata=worker.auth,
                timeout=10,
            )
            committed = time.monotonic()
        event = await next_event(call, timeout=5)
        while event.kind == K.TASK_EVENT_KIND_FUNDED:  # the funding, if the hub was behind it
            event = await next_event(call, timeout=5)
        seen = time.monotonic() - committed
        call.cancel()
    finally:
        if other.runs:
            other.stop()
    assert event.kind == K.TASK_EVENT_KIND_STATE_CHANGED
    assert (event.previous_state, event.state) == (T.TASK_STATE_OPEN, T.TASK_STATE_ACCEPTED)
    assert int(event.cursor) > int(first.cursor)
    print(f"seen {seen * 1000:.1f} ms after the other process answered")
    assert seen < 1.0, f"seen {seen:.3f} s after the other process answered"


async def test_a_resumed_stream_gets_exactly_what_it_missed_in_order(
    api: V2, conn: psycopg.Connection[Any]
) -> None:
    poster, worker = api.poster(), api.worker()
    task = await api.create(poster)
    call = watch_task(api, poster, task.task_id)
    cursor = (await read(call)).cursor
    call.cancel()  # the client goes away mid-stream

    await api.fund(poster, task.task_id)
    await api.accept(worker, task.task_id, rid=request_id())
    await api.tasks.CancelTask(
        T.CancelTaskRequest(task_id=task.task_id, reason="no-show", request_id=request_id()),
        metadata=poster.auth,
        timeout=10,
    )

    resumed = watch_task(api, poster, task.task_id, after=cursor)
    got = [await read(resumed) for _ in range(3)]
    assert [(m.kind, m.state) for m in got] == [
        (K.TASK_EVENT_KIND_FUNDED, T.TASK_STATE_OPEN),
        (K.TASK_EVENT_KIND_STATE_CHANGED, T.TASK_STATE_ACCEPTED),
        (K.TASK_EVENT_KIND_STATE_CHANGED, T.TASK_STATE_CANCELLED),
    ]
    cursors = [int(m.cursor) for m in got]
    assert cursors == sorted(cursors)
    assert cursors[0] > int(cursor)
    # nothing twice, nothing more: what follows is a heartbeat at the last cursor (or later)
    beat = await quiet(resumed)
    assert int(beat.cursor) >= cursors[-1]
    # the log agrees: these were the task's only events after the cursor
    logged = conn.execute(
        "SELECT seq FROM watch_events WHERE task_id = %s AND seq > %s ORDER BY seq",
        (task.task_id, int(cursor)),
    ).fetchall()
    assert [row[0] for row in logged] == cursors
    resumed.cancel()


async def test_proofs_and_reviews_reach_the_worker(api: V2) -> None:
    poster, worker = api.poster(), api.worker()
    task = await api.post(poster)
    await api.accept(worker, task.task_id, rid=request_id())
    call = watch_task(api, worker, task.task_id)
    await read(call)
    submitted = await api.submit(worker, task.task_id)
    await api.tasks.RejectProof(
        T.RejectProofRequest(task_id=task.task_id, reason="blurry", request_id=request_id()),
        metadata=poster.auth,
        timeout=10,
    )
    # the acceptance itself may come first ("from now" is from where the hub was)
    got: list[Any] = []
    while not any(m.kind == K.TASK_EVENT_KIND_PROOF_REVIEWED for m in got) or not any(
        m.previous_state == T.TASK_STATE_PROOF_SUBMITTED for m in got
    ):
        message = await next_event(call)
        if message.previous_state != T.TASK_STATE_OPEN:
            got.append(message)
    by_kind = {m.kind: m for m in got}
    assert set(by_kind) == {
        K.TASK_EVENT_KIND_PROOF_SUBMITTED,
        K.TASK_EVENT_KIND_STATE_CHANGED,
        K.TASK_EVENT_KIND_PROOF_REVIEWED,
    }
    assert len(got) == 4
    assert by_kind[K.TASK_EVENT_KIND_PROOF_REVIEWED].proof_id == submitted.proof.proof_id
    assert by_kind[K.TASK_EVENT_KIND_PROOF_REVIEWED].proof_state == T.PROOF_STATE_REJECTED
    changes = [m.state for m in got if m.kind == K.TASK_EVENT_KIND_STATE_CHANGED]
    assert changes == [T.TASK_STATE_PROOF_SUBMITTED, T.TASK_STATE_ACCEPTED]  # back to the worker
    call.cancel()


async def test_who_may_watch_and_how_many(api: V2, conn: psycopg.Connection[Any]) -> None:
    poster, stranger, admin = api.poster(), api.worker(), api.admin()
    task = await api.post(poster)
    await refused(
        watch_task(api, stranger, task.task_id), grpc.StatusCode.PERMISSION_DENIED, "HX202"
    )
    admin_call = watch_task(api, admin, task.task_id)
    assert (await read(admin_call)).kind == K.TASK_EVENT_KIND_HEARTBEAT
    admin_call.cancel()
    await refused(watch_task(api, poster, "not-a-uuid"), grpc.StatusCode.INVALID_ARGUMENT, "HX301")
    await refused(
        watch_task(api, poster, task.task_id, after="x1"), grpc.StatusCode.INVALID_ARGUMENT, "HX301"
    )

    # the cap: 3 streams per user here (WATCH_STREAMS_PER_USER)
    open_calls = [watch_task(api, poster, task.task_id) for _ in range(3)]
    for call in open_calls:
        await read(call)
    await refused(
        watch_task(api, poster, task.task_id), grpc.StatusCode.RESOURCE_EXHAUSTED, "HX602"
    )
    open_calls.pop().cancel()
    await asyncio.sleep(0.2)  # the server sees the cancellation
    again = watch_task(api, poster, task.task_id)
    await read(again)
    for call in (*open_calls, again):
        call.cancel()

    # a cursor from before the retention purge, or not from this log: resync
    conn.execute("INSERT INTO watch_horizon (only_row, purged_through) VALUES (true, 1000)"
                 " ON CONFLICT (only_row) DO UPDATE SET purged_through = 1000")  # fmt: skip
    error = await refused(
        watch_task(api, poster, task.task_id, after="5"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "HX601",
    )
    assert "cursor" in (error.details() or "")
    await refused(
        watch_task(api, poster, task.task_id, after="99999999"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "HX601",
    )


def here(lat: float = 34.05, lng: float = -118.25) -> common_pb2.LatLng:
    return common_pb2.LatLng(latitude=lat, longitude=lng)


async def test_watch_feed_shows_what_enters_the_callers_feed_and_what_leaves(api: V2) -> None:
    poster, worker, other = api.poster(), api.worker(), api.worker()
    call = api.feed.WatchFeed(
        feed_pb2.WatchFeedRequest(
            mode=feed_pb2.FEED_MODE_NEARBY, location=here(), radius_meters=5000
        ),
        metadata=worker.auth,
    )
    first = await read(call)
    await api.post(poster, lat=34.30, lng=-118.25)  # ~28 km away: outside the radius
    await api.post(poster, state="NV")  # another state: not eligible
    needs_more = V2.task()
    needs_more.requirements.required_trust_tier = 4  # the worker is tier 1: not eligible
    created = await api.create(poster, needs_more)
    await api.fund(poster, created.task_id)
    wanted = await api.post(poster, lat=34.06, lng=-118.25)  # ~1.1 km away

    entered = await next_event(call)
    assert entered.kind == FK.FEED_EVENT_KIND_ENTERED
    assert entered.task.task_id == wanted.task_id == entered.task_id
    assert entered.task.eligible
    assert entered.task.state == T.TASK_STATE_OPEN
    assert 1000 < entered.distance_meters < 1300
    await api.accept(other, wanted.task_id, rid=request_id())
    gone = await next_event(call)
    assert (gone.kind, gone.task_id, gone.state) == (
        FK.FEED_EVENT_KIND_LEFT,
        wanted.task_id,
        T.TASK_STATE_ACCEPTED,
    )
    await quiet(call)  # nothing about the three tasks it may not see
    call.cancel()

    # resumed from the first cursor, from the log: the task is taken now, so its entry is not
    # shown again (the feed law), its exit is; the others stay out as before
    resumed = api.feed.WatchFeed(
        feed_pb2.WatchFeedRequest(
            mode=feed_pb2.FEED_MODE_NEARBY, location=here(), radius_meters=5000, after=first.cursor
        ),
        metadata=worker.auth,
    )
    again = [await read(resumed), await read(resumed)]
    assert [(m.kind, m.task_id) for m in again] == [
        (FK.FEED_EVENT_KIND_LEFT, wanted.task_id),
        (FK.FEED_EVENT_KIND_HEARTBEAT, ""),
    ]
    resumed.cancel()


async def test_watch_feed_checks_its_query_as_get_feed_does(api: V2) -> None:
    worker = api.worker()
    call = api.feed.WatchFeed(
        feed_pb2.WatchFeedRequest(mode=feed_pb2.FEED_MODE_NEARBY, radius_meters=900_000),
        metadata=worker.auth,
    )
    error = await refused(call, grpc.StatusCode.INVALID_ARGUMENT, "HX301")
    fields = {v.field for v in error_details(error)["BadRequest"].field_violations}  # type: ignore[attr-defined]
    assert fields == {"location", "radius_meters"}


async def test_watch_notifications_shows_new_ones_and_reads_with_the_unread_count(
    api: V2, channel: aio.Channel, conn: psycopg.Connection[Any]
) -> None:
    poster, worker = api.poster(), api.worker()
    task = await api.post(poster)
    stub = notification_pb2_grpc.NotificationServiceStub(channel)
    call = stub.WatchNotifications(
        notification_pb2.WatchNotificationsRequest(), metadata=poster.auth
    )
    first = await read(call)
    assert first.kind == NK.WATCH_NOTIFICATIONS_EVENT_KIND_HEARTBEAT
    await api.accept(worker, task.task_id, rid=request_id())
    # (the funding's notification may come first: "from now" is from where the hub was)
    created = [await next_event(call)]
    while created[-1].notification.kind != "TASK_ACCEPTED":
        created.append(await next_event(call))
    assert {m.kind for m in created} == {NK.WATCH_NOTIFICATIONS_EVENT_KIND_CREATED}
    accepted = created[-1]
    assert accepted.notification.task_id == task.task_id
    unread = conn.execute(
        "SELECT count(*) FROM notifications WHERE user_id = %s AND read_at IS NULL", (poster.id,)
    ).fetchone()
    assert unread is not None
    assert accepted.unread_count == unread[0] >= 1
    conn.execute(
        "UPDATE notifications SET read_at = now() WHERE user_id = %s AND read_at IS NULL",
        (poster.id,),
    )
    read_event = await next_event(call)
    assert read_event.kind == NK.WATCH_NOTIFICATIONS_EVENT_KIND_READ
    assert read_event.read_count == unread[0]
    assert accepted.notification.notification_id in read_event.read_ids
    assert read_event.unread_count == 0
    call.cancel()
    # someone else's notifications never reach this stream
    other = stub.WatchNotifications(
        notification_pb2.WatchNotificationsRequest(after=first.cursor), metadata=worker.auth
    )
    assert (await read(other)).kind == NK.WATCH_NOTIFICATIONS_EVENT_KIND_HEARTBEAT
    other.cancel()


def _samples(name: str, **labels: str) -> float:
    text, _ = metrics.render()
    total = 0.0
    for line in text.decode().splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_shutdown_ends_streams_at_once_with_a_retry_hint(
    settings: Settings, resources: Resources, conn: psycopg.Connection[Any]
) -> None:
    server = HustleServer(settings.model_copy(update=WATCHING), resources)
    await server.start()
    async with aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        api = V2(channel, conn)
        poster = api.poster()
        task = await api.post(poster)
        call = watch_task(api, poster, task.task_id)
        await read(call)
        method = {"grpc_service": "hustle.v2.TaskService", "grpc_method": "WatchTask"}
        assert _samples("watch_streams_open", method="/hustle.v2.TaskService/WatchTask") >= 1
        started = time.monotonic()
        stopping = asyncio.create_task(server.stop(grace=10))
        error = await refused(call, grpc.StatusCode.UNAVAILABLE, "HX902")
        assert "RetryInfo" in error_details(error)
        await stopping
        took = time.monotonic() - started
    assert took < 3.0, f"the drain took {took:.1f} s"
    # streams are counted as calls, but never in the unary latency histogram
    assert _samples("grpc_server_handled_total", **method) >= 1
    assert _samples("grpc_server_handling_seconds_count", **method) == 0


async def test_a_message_in_the_thread_is_an_event_of_its_task(
    api: V2, channel: aio.Channel
) -> None:
    poster, worker = api.poster(), api.worker()
    task = await api.post(poster)
    await api.accept(worker, task.task_id)
    call = watch_task(api, worker, task.task_id)
    first = await read(call)  # the stream is live: what follows is new
    sent = await message_pb2_grpc.MessageServiceStub(channel).SendMessage(
        message_pb2.SendMessageRequest(
            task_id=task.task_id, text="On my way", request_id=request_id()
        ),
        metadata=poster.auth,
        timeout=10,
    )
    event = await next_event(call)
    call.cancel()
    assert event.kind == K.TASK_EVENT_KIND_MESSAGE_SENT
    assert event.message_id == sent.message.message_id
    assert int(event.cursor) > int(first.cursor)
