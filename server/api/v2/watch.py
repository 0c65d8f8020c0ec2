"""hustle.v2's watch streams: TaskService.WatchTask, FeedService.WatchFeed and
NotificationService.WatchNotifications. Input checks and translation only: the hub
(server/watch.py) follows the log, server/domain/watch.py holds the rules.

Each class here is the streaming part of its service, mixed into (or registered as) that service:
`TaskWatch` by server/api/v2/tasks.py, `FeedWatch` by server/api/v2/feed.py, and
`NotificationWatch` is NotificationService itself until the notifications API joins it.

A handler never swallows `asyncio.CancelledError` (a client that goes away cancels it; grpc.aio
leaks a stream's native memory when a handler returns normally from that: grpc/grpc#43360).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from grpc import aio

from hustle.v2 import feed_pb2, notification_pb2, notification_pb2_grpc, task_pb2
from server import caller, metrics, validation
from server.api.feed_pages import length_delimited
from server.api.v2 import convert
from server.db import Database
from server.domain import watch
from server.domain.feed import FeedQuery
from server.domain.records import FeedMode, ProofState, Task, TaskState
from server.domain.watch import FeedInterest, WatchEvent
from server.errors import HxError
from server.validation import Checks
from server.watch import Beat, Delivery, WatchHub

Context = aio.ServicerContext[Any, Any]
WATCH_TASK = "/hustle.v2.TaskService/WatchTask"
WATCH_FEED = "/hustle.v2.FeedService/WatchFeed"
WATCH_NOTIFICATIONS = "/hustle.v2.NotificationService/WatchNotifications"
_TASK_TAG = (feed_pb2.WatchFeedResponse.DESCRIPTOR.fields_by_name["task"].number << 3) | 2
_CARDS_KEPT = 2048

TK = task_pb2.TaskEventKind
FK = feed_pb2.FeedEventKind
NK = notification_pb2.WatchNotificationsEventKind


def _after(text: str) -> int | None:
    return watch.parse_cursor(text, "after")


async def _resumable(db: Database, method: str, after: int | None) -> None:
    """A cursor older than the retention is HX601 (and counted as a resync)."""
    if after is None:
        return
    try:
        await watch.check_cursor(db, after)
    except HxError:
        metrics.WATCH_RESYNCS.labels(method, "cursor_expired").inc()
        raise


def _page(events: list[WatchEvent], cursor: int) -> tuple[list[Delivery], int, bool]:
    """A replayed page: its deliveries, the cursor it read through, whether more may follow."""
    last = events[-1].seq if events else cursor
    return [Delivery(e) for e in events], last, len(events) >= watch.CATCH_UP_PAGE


def task_message(event: WatchEvent) -> task_pb2.WatchTaskResponse:
    """A WatchTask event as its message."""
    data = event.data
    message = task_pb2.WatchTaskResponse(
        cursor=watch.format_cursor(event.seq),
        task_id=event.task_id or "",
        occurred_at=convert.timestamp(event.created_at),
    )
    if event.kind == "TASK_CHANGED":
        state, previous = str(data["state"]), str(data["previous_state"])
        message.kind = (
            TK.TASK_EVENT_KIND_STATE_CHANGED if state != previous else (TK.TASK_EVENT_KIND_FUNDED)
        )
        message.state = convert.TASK_STATES.to_proto(TaskState(state))
        message.previous_state = convert.TASK_STATES.to_proto(TaskState(previous))
        message.version = int(data["version"])
    elif event.kind in ("PROOF_SUBMITTED", "PROOF_REVIEWED"):
        message.kind = (
            TK.TASK_EVENT_KIND_PROOF_SUBMITTED
            if event.kind == "PROOF_SUBMITTED"
            else TK.TASK_EVENT_KIND_PROOF_REVIEWED
        )
        message.proof_id = str(data["id"])
        message.proof_state = convert.PROOF_STATES.to_proto(ProofState(str(data["state"])))
    elif event.kind in ("DISPUTE_OPENED", "DISPUTE_RESOLVED"):
        message.kind = (
            TK.TASK_EVENT_KIND_DISPUTE_OPENED
            if event.kind == "DISPUTE_OPENED"
            else TK.TASK_EVENT_KIND_DISPUTE_RESOLVED
        )
        message.dispute_id = str(data["id"])
    elif event.kind == "MESSAGE_SENT":
        message.kind = TK.TASK_EVENT_KIND_MESSAGE_SENT
        message.message_id = str(data.get("id") or "")
    return message


class TaskWatch:
    """TaskService.WatchTask."""

    def __init__(self, db: Database, hub: WatchHub) -> None:
        self._db = db
        self._hub = hub

    async def WatchTask(
        self, request: task_pb2.WatchTaskRequest, context: Context
    ) -> AsyncIterator[task_pb2.WatchTaskResponse]:
        with Checks() as check:
            task_id = check(validation.uuid_id, request.task_id, "task_id")
            after = check(_after, request.after)
        who = caller.current()
        await watch.task_parties(self._db, who, task_id)
        await _resumable(self._db, WATCH_TASK, after)
        db = self._db

        async def replay(cursor: int) -> tuple[list[Delivery], int, bool]:
            return _page(await watch.task_events(db, task_id, cursor), cursor)

        sent = metrics.WATCH_EVENTS_SENT.labels(WATCH_TASK)
        beats = metrics.WATCH_HEARTBEATS.labels(WATCH_TASK)
        async with self._hub.subscription(WATCH_TASK, who.user_id, task_id=task_id) as sub:
            async for item in self._hub.follow(sub, after, replay):
                if isinstance(item, Beat):
                    beats.inc()
                    yield task_pb2.WatchTaskResponse(
                        cursor=watch.format_cursor(item.cursor),
                        kind=TK.TASK_EVENT_KIND_HEARTBEAT,
                        task_id=task_id,
                    )
                    continue
                message = task_message(item.event)
                if message.kind == TK.TASK_EVENT_KIND_UNSPECIFIED:
                    continue  # a kind this version does not know
                sent.inc()
                yield message


class FeedWatch:
    """FeedService.WatchFeed. Its messages go out as bytes: an ENTERED task's card is encoded
    once per (task, version) in this process and joined to each stream's own fields."""

    def __init__(self, db: Database, hub: WatchHub) -> None:
        self._db = db
        self._hub = hub
        self._cards: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    def _card(self, card: Task) -> bytes:
        key = (card.id, card.version)
        found = self._cards.get(key)
        if found is None:
            found = self._cards[key] = convert.task(card).SerializeToString()
            if len(self._cards) > _CARDS_KEPT:
                self._cards.popitem(last=False)
        return found

    def feed_query(self, request: feed_pb2.GetFeedRequest) -> FeedQuery:
        """GetFeed's checks of mode, location and radius (FeedService provides them)."""
        raise NotImplementedError

    async def WatchFeed(
        self, request: feed_pb2.WatchFeedRequest, context: Context
    ) -> AsyncIterator[bytes | feed_pb2.WatchFeedResponse]:
        shape = feed_pb2.GetFeedRequest(
            mode=request.mode,
            location=request.location if request.HasField("location") else None,
            radius_meters=request.radius_meters,
        )
        with Checks() as check:
            query = check(self.feed_query, shape)  # GetFeed's own checks of the same fields
            after = check(_after, request.after)
        who = caller.current()
        await _resumable(self._db, WATCH_FEED, after)
        nearby = query.mode is FeedMode.NEARBY
        interest = FeedInterest(
            user_id=who.user_id,
            location_state=await watch.profile_state(self._db, who.user_id),
            urgent_only=query.mode is FeedMode.URGENT,
            latitude=query.latitude if nearby else None,
            longitude=query.longitude if nearby else None,
            radius_meters=float(query.radius_meters),
        )
        db = self._db

        async def replay(cursor: int) -> tuple[list[Delivery], int, bool]:
            events = await watch.feed_events(db, who.user_id, cursor)
            last = events[-1].seq if events else cursor
            now = time.time()
            kept = [e for e in events if interest.may_concern(e, now)]
            cards = await watch.cards(
                db, [e.task_id for e in kept if e.task_id and watch.entered(e)]
            )
            deliveries = []
            for event in kept:
                card = cards.get(event.task_id or "")
                if watch.entered(event) and card is None:
                    continue
                deliveries.append(Delivery(event, card if watch.entered(event) else None))
            return deliveries, last, len(events) >= watch.CATCH_UP_PAGE

        sent = metrics.WATCH_EVENTS_SENT.labels(WATCH_FEED)
        beats = metrics.WATCH_HEARTBEATS.labels(WATCH_FEED)
        async with self._hub.subscription(WATCH_FEED, who.user_id, feed=interest) as sub:
            async for item in self._hub.follow(sub, after, replay):
                if isinstance(item, Beat):
                    beats.inc()
                    yield feed_pb2.WatchFeedResponse(
                        cursor=watch.format_cursor(item.cursor), kind=FK.FEED_EVENT_KIND_HEARTBEAT
                    )
                    continue
                event = item.event
                message = feed_pb2.WatchFeedResponse(
                    cursor=watch.format_cursor(event.seq),
                    task_id=event.task_id or "",
                    state=convert.TASK_STATES.to_proto(TaskState(str(event.data["state"]))),
                    occurred_at=convert.timestamp(event.created_at),
                )
                sent.inc()
                if item.card is None:
                    message.kind = FK.FEED_EVENT_KIND_LEFT
                    yield message
                    continue
                message.kind = FK.FEED_EVENT_KIND_ENTERED
                if nearby:
                    message.distance_meters = interest.distance(event) or 0.0
                yield message.SerializeToString() + length_delimited(
                    _TASK_TAG, self._card(item.card)
                )


def notification_message(
    event: WatchEvent, unread: int
) -> notification_pb2.WatchNotificationsResponse:
    data = event.data
    message = notification_pb2.WatchNotificationsResponse(
        cursor=watch.format_cursor(event.seq),
        unread_count=unread,
        occurred_at=convert.timestamp(event.created_at),
    )
    if event.kind == "NOTIFICATION_CREATED":
        message.kind = NK.WATCH_NOTIFICATIONS_EVENT_KIND_CREATED
        created = convert.timestamp(_moment(data.get("created_at"))) or convert.timestamp(
            event.created_at
        )
        message.notification.CopyFrom(
            notification_pb2.WatchedNotification(
                notification_id=str(data["id"]),
                kind=str(data["kind"]),
                title=str(data["title"]),
                body=str(data.get("body") or ""),
                task_id=str(data.get("task_id") or ""),
                created_at=created,
            )
        )
    elif event.kind == "NOTIFICATIONS_READ":
        message.kind = NK.WATCH_NOTIFICATIONS_EVENT_KIND_READ
        message.read_count = int(data["count"])
        message.read_ids.extend(str(i) for i in data.get("ids") or ())
    return message


def _moment(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


class NotificationWatch(notification_pb2_grpc.NotificationServiceServicer):
    """NotificationService.WatchNotifications (the notifications API's servicer takes this
    method over when the two meet)."""

    def __init__(self, db: Database, hub: WatchHub) -> None:
        self._db = db
        self._hub = hub

    async def WatchNotifications(
        self, request: notification_pb2.WatchNotificationsRequest, context: Context
    ) -> AsyncIterator[notification_pb2.WatchNotificationsResponse]:
        with Checks() as check:
            after = check(_after, request.after)
        who = caller.current()
        await _resumable(self._db, WATCH_NOTIFICATIONS, after)
        db = self._db

        async def replay(cursor: int) -> tuple[list[Delivery], int, bool]:
            return _page(await watch.user_events(db, who.user_id, cursor), cursor)

        sent = metrics.WATCH_EVENTS_SENT.labels(WATCH_NOTIFICATIONS)
        beats = metrics.WATCH_HEARTBEATS.labels(WATCH_NOTIFICATIONS)
        async with self._hub.subscription(
            WATCH_NOTIFICATIONS, who.user_id, notifications=True
        ) as sub:
            async for item in self._hub.follow(sub, after, replay):
                unread = await watch.unread_count(db, who.user_id)
                if isinstance(item, Beat):
                    beats.inc()
                    yield notification_pb2.WatchNotificationsResponse(
                        cursor=watch.format_cursor(item.cursor),
                        kind=NK.WATCH_NOTIFICATIONS_EVENT_KIND_HEARTBEAT,
                        unread_count=unread,
                    )
                    continue
                sent.inc()
                yield notification_message(item.event, unread)
