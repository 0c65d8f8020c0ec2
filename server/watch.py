"""The watch hub: one per server process, fanning the event log out to that process's streams.

    listener  one autocommit connection of its own (never the request pool's): LISTEN
              hustle_watch; each NOTIFY (sent by the log's triggers, in the change's
              transaction, so after its commit) wakes the reader. Lost (a database restart):
              reconnect with back off, LISTEN again, and wake the reader, which catches up from
              its cursor, so nothing committed meanwhile is missed.
    reader    (a one-connection pool of its own: calls never wait behind it, nor it behind
              them) on each wake-up (and every POLL_SECONDS regardless): number what committed
              (watch_sequence) and read the log after its cursor once, for every stream, in
              cursor order; hand each event to the streams it concerns: by task, by user,
              and for feeds by a cheap in-process test (state, radius, urgency) followed by
              one eligibility statement for all the streams that remain.
    streams   each a Subscription with a bounded queue: the reader never waits for a stream;
              one that falls behind by QUEUE_SIZE events is ended (HX603: resume from your
              last cursor), and the others go on.

A stream's own events after its client's cursor are replayed from the log first (`follow`), while
the hub already queues what arrives; cursors de-duplicate the two. The same cursor order holds
everywhere (see server/domain/watch.py), so a resumed stream sees each event exactly once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import psycopg
from loguru import logger

from server import metrics
from server.config import Settings
from server.db import Database
from server.domain import watch
from server.domain.records import Task
from server.domain.watch import FeedInterest, WatchEvent
from server.errors import HxError
from server.outage import Backoff, Outage, cause_of

CHANNEL = "hustle_watch"
LOOP_LISTEN, LOOP_READ = "watch_listen", "watch_read"
READ_BATCH = 1000
# the reader reads this often even when no NOTIFY came (a safety net, and sequencing of rows
# whose NOTIFY was lost with a connection)
POLL_SECONDS = 1.0
STOP_SECONDS = 5.0  # how long stop() waits for its loops
# the listening connection is checked this often when no NOTIFY arrives
PING_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """An event for one stream, with the task's card when it entered a feed."""

    event: WatchEvent
    card: Task | None = None


@dataclass(frozen=True, slots=True)
class Beat:
    """Nothing new: the stream is up to date through `cursor` (a heartbeat, or the first
    message of a stream watched from now)."""

    cursor: int


class Subscription:
    """One stream's queue. The hub offers events (never waiting); the stream takes them."""

    __slots__ = (
        "_items",
        "_ready",
        "capacity",
        "ended",
        "feed",
        "method",
        "notifications",
        "sent_through",
        "start",
        "task_id",
        "user_id",
    )

    def __init__(
        self,
        method: str,
        user_id: str,
        start: int,
        capacity: int,
        *,
        task_id: str | None = None,
        notifications: bool = False,
        feed: FeedInterest | None = None,
    ) -> None:
        self.method = method
        self.user_id = user_id
        self.task_id = task_id
        self.notifications = notifications
        self.feed = feed
        self.start = start  # the hub hands this stream every event after this cursor
        self.capacity = capacity
        self.sent_through = start  # the newest cursor the client has been given
        self.ended: str | None = None  # "overflow" | "closing"
        self._items: collections.deque[Delivery] = collections.deque()
        self._ready = asyncio.Event()

    def offer(self, delivery: Delivery) -> bool:
        """Queue an event; False (and the stream ends) when the queue is full."""
        if self.ended is not None:
            return True
        if len(self._items) >= self.capacity:
            self.end("overflow")
            return False
        self._items.append(delivery)
        self._ready.set()
        return True

    def end(self, reason: str) -> None:
        if self.ended is None:
            self.ended = reason
        self._ready.set()

    @property
    def idle(self) -> bool:
        return not self._items

    async def next(self, seconds: float) -> Delivery | None:
        """The next event not yet given to the client, or None after `seconds` of nothing.
        Raises HxError when the stream must end."""
        while True:
            if self.ended == "overflow":
                raise HxError("HX603")
            if self.ended is not None:
                raise HxError(
                    "HX902", "The server is shutting down; watch again.", retry_after_seconds=1.0
                )
            while self._items:
                delivery = self._items.popleft()
                if delivery.event.seq > self.sent_through:
                    return delivery
            self._ready.clear()
            try:
                async with asyncio.timeout(seconds):  # not wait_for: see _read
                    await self._ready.wait()
            except TimeoutError:
                return None


Replay = Callable[[int], Awaitable[tuple[list[Delivery], int, bool]]]


class WatchHub:
    def __init__(self, settings: Settings) -> None:
        own = settings.model_copy(update={"db_pool_min_size": 1, "db_pool_max_size": 1})
        self._db = Database.from_settings(own, name="hustle-watch")
        self._conninfo = settings.database_conninfo
        self._connect_timeout = max(1, round(settings.db_connect_timeout_seconds))
        self.heartbeat_seconds = settings.watch_heartbeat_seconds
        self.queue_size = settings.watch_queue_size
        self.per_user = settings.watch_streams_per_user
        # `cursor`: events up to it have been offered (or are being offered) to the streams
        # registered so far; `settled`: events up to it have been offered completely.
        self.cursor: int | None = None
        self.settled = 0
        self.listening = False
        self.closing = False
        self._known = asyncio.Event()
        self._wake = asyncio.Event()
        self._by_task: dict[str, set[Subscription]] = {}
        self._by_user: dict[str, set[Subscription]] = {}
        self._feeds: set[Subscription] = set()
        self._streams: dict[str, int] = collections.Counter()
        self._loops: list[asyncio.Task[None]] = []
        self._db_down = Outage("watch hub's database", "streams wait and catch up")

    # --- life ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start listening and reading (without waiting for the database: a stream opened
        before the first read waits for it, briefly)."""
        await self._db.open()
        self._wake.set()
        self._loops = [
            asyncio.create_task(self._listen(), name="watch-listen"),
            asyncio.create_task(self._read(), name="watch-read"),
        ]

    def end_streams(self) -> None:
        """SIGTERM: every stream ends now (UNAVAILABLE with a retry delay: clients reconnect
        elsewhere), and no new one starts."""
        self.closing = True
        for subs in (*self._by_task.values(), *self._by_user.values(), self._feeds):
            for sub in list(subs):
                sub.end("closing")

    async def stop(self) -> None:
        self.end_streams()
        for loop in self._loops:
            loop.cancel()
        if self._loops:
            _, stuck = await asyncio.wait(self._loops, timeout=STOP_SECONDS)
            if stuck:  # never wait for ever on a loop (psycopg inside one may not answer)
                logger.warning(
                    f"watch hub: {len(stuck)} loop(s) did not stop within {STOP_SECONDS:g} s"
                )
        self._loops = []
        await self._db.close()

    def wake(self) -> None:
        self._wake.set()

    # --- streams ---------------------------------------------------------------------------
    @asynccontextmanager
    async def subscription(
        self,
        method: str,
        user_id: str,
        *,
        task_id: str | None = None,
        notifications: bool = False,
        feed: FeedInterest | None = None,
    ) -> AsyncIterator[Subscription]:
        """A stream's queue for as long as the block runs; RESOURCE_EXHAUSTED (HX602) beyond the
        user's cap, UNAVAILABLE while shutting down or before the log could be read."""
        if self.closing:
            raise HxError("HX902", "The server is shutting down; watch again.")
        if self._streams[user_id] >= self.per_user:
            raise HxError("HX602", f"At most {self.per_user} streams may be open at once per user.")
        if self.cursor is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):  # not wait_for: see _read
                    await self._known.wait()
            if self.cursor is None:
                raise HxError("HX902")
        sub = Subscription(
            method,
            user_id,
            self.cursor,
            self.queue_size,
            task_id=task_id,
            notifications=notifications,
            feed=feed,
        )
        self._add(sub)
        try:
            yield sub
        finally:
            self._remove(sub)

    def _add(self, sub: Subscription) -> None:
        self._streams[sub.user_id] += 1
        if sub.task_id is not None:
            self._by_task.setdefault(sub.task_id, set()).add(sub)
        if sub.notifications:
            self._by_user.setdefault(sub.user_id, set()).add(sub)
        if sub.feed is not None:
            self._feeds.add(sub)
        metrics.WATCH_STREAMS.labels(sub.method).inc()

    def _remove(self, sub: Subscription) -> None:
        self._streams[sub.user_id] -= 1
        if not self._streams[sub.user_id]:
            del self._streams[sub.user_id]
        for index, key in ((self._by_task, sub.task_id), (self._by_user, sub.user_id)):
            if key is not None and sub in index.get(key, ()):
                index[key].discard(sub)
                if not index[key]:
                    del index[key]
        self._feeds.discard(sub)
        metrics.WATCH_STREAMS.labels(sub.method).dec()

    async def follow(
        self, sub: Subscription, after: int | None, replay: Replay
    ) -> AsyncIterator[Delivery | Beat]:
        """What a stream sends: after a client's cursor, the log's replay of what it missed
        (page by page), then the hub's events as they come, and a Beat when nothing came for
        `heartbeat_seconds`. Every event once, in cursor order. Watched from now (`after` None),
        the first message is a Beat with the cursor to resume from."""
        if after is None:
            yield Beat(sub.start)
        else:
            cursor = after
            while True:
                deliveries, cursor, more = await replay(cursor)
                for delivery in deliveries:
                    if sub.ended is not None:
                        break
                    sub.sent_through = max(sub.sent_through, delivery.event.seq)
                    yield delivery
                if not more or sub.ended is not None:
                    break
            # the replay read the log through `cursor`: queued events up to it were sent, or
            # were not this stream's
            sub.sent_through = max(sub.sent_through, cursor)
        while True:
            live = await sub.next(self.heartbeat_seconds)
            if live is None:
                yield Beat(max(sub.sent_through, self.settled) if sub.idle else sub.sent_through)
                continue
            sub.sent_through = live.event.seq
            yield live

    # --- the listening connection ----------------------------------------------------------
    async def _listen(self) -> None:
        backoff = Backoff(first=0.2, ceiling=1.0)
        down = Outage("watch hub's listening connection", "reconnecting")
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo,
                    autocommit=True,
                    application_name="hustle-watch-listen",
                    connect_timeout=self._connect_timeout,
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    down.recovered()
                    backoff.reset()
                    metrics.LOOP_UP.labels(LOOP_LISTEN).set(1)
                    self._wake.set()  # catch up with what committed while nobody listened
                    while True:
                        async for _ in conn.notifies(timeout=PING_SECONDS):
                            self._wake.set()
                        await conn.execute("SELECT 1")  # a dead connection fails here
            except Exception as exc:
                self.listening = False
                down.failed(exc)
                metrics.LOOP_UP.labels(LOOP_LISTEN).set(0)
                metrics.LOOP_FAILURES.labels(LOOP_LISTEN, cause_of(exc)).inc()
                await asyncio.sleep(backoff.next())

    # --- the reader ------------------------------------------------------------------------
    async def _read(self) -> None:
        backoff = Backoff(first=0.2, ceiling=2.0)
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that
            # arrives as its wait ends (a wake-up racing stop()), and this loop then polled on
            # after its server stopped (a test process hung in teardown on it)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._catch_up()
            except Exception as exc:
                self._db_down.failed(exc)
                metrics.LOOP_UP.labels(LOOP_READ).set(0)
                metrics.LOOP_FAILURES.labels(LOOP_READ, cause_of(exc)).inc()
                await asyncio.sleep(backoff.next())
                self._wake.set()
            else:
                self._db_down.recovered()
                metrics.LOOP_UP.labels(LOOP_READ).set(1)
                backoff.reset()

    async def _catch_up(self) -> None:
        latest = await watch.sequence(self._db)
        if self.cursor is None or latest < self.cursor:
            # the first read (streams start from here), or a log emptied under us (a restore)
            if self.cursor is not None:
                logger.bind(cursor=self.cursor, latest=latest).warning(
                    "the watch log is behind the hub's cursor; following it from its end"
                )
            self.cursor = self.settled = latest
            self._known.set()
            return
        while self.cursor < latest:
            events = await watch.read_after(self._db, self.cursor, READ_BATCH)
            if not events:
                break
            for event in events:
                await self._dispatch(event)

    async def _dispatch(self, event: WatchEvent) -> None:
        started = time.perf_counter()
        if event.task_id is not None:
            for sub in list(self._by_task.get(event.task_id, ())):
                self._offer(sub, Delivery(event))
        if event.user_id is not None and event.kind in watch.NOTIFICATION_KINDS:
            for sub in list(self._by_user.get(event.user_id, ())):
                self._offer(sub, Delivery(event))
        concerned: list[Subscription] = []
        entering = False
        if event.kind == watch.FEED_KIND and self._feeds:
            entering = watch.entered(event)
            if entering or watch.left(event):
                now = time.time()
                concerned = [
                    s for s in self._feeds if s.feed is not None and s.feed.may_concern(event, now)
                ]
        # streams registered from here on start after this event; those above get it
        self.cursor = event.seq
        if concerned and entering and event.task_id is not None:
            users = sorted({s.user_id for s in concerned})
            allowed = await watch.eligible_users(self._db, event.task_id, users)
            concerned = [s for s in concerned if s.user_id in allowed]
            card = (await watch.cards(self._db, [event.task_id])).get(event.task_id)
            if card is None:
                concerned = []
            for sub in concerned:
                self._offer(sub, Delivery(event, card))
        else:
            for sub in concerned:
                self._offer(sub, Delivery(event))
        self.settled = event.seq
        metrics.WATCH_DISPATCH_SECONDS.observe(time.perf_counter() - started)

    def _offer(self, sub: Subscription, delivery: Delivery) -> None:
        if not sub.offer(delivery):
            metrics.WATCH_RESYNCS.labels(sub.method, "overflow").inc()
            logger.bind(method=sub.method, user_id=sub.user_id, queued=sub.capacity).warning(
                "a watch stream fell behind and is ended (its client resumes from its cursor)"
            )
