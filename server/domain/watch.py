"""Watch streams' rules: the event log (migration 0037, sql/watch.sql), who may watch what, which
cursors can be resumed from, and the replay of what a resumed stream missed.

An event's cursor is its `seq`, numbered after commit by the database's one sequencer, so cursor
order is the order in which events become visible: a reader of `seq > cursor` never finds a
smaller one appear later (the migration explains why `id`, insert order, could not be used).
Clients see the cursor as a decimal string; `parse_cursor` turns it back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.caller import Caller
from server.db import Database, Rows
from server.domain import feed
from server.domain.records import Task
from server.errors import HxError, invalid

# The events of each kind of stream (their `kind` in watch_events).
TASK_KINDS = (
    "TASK_CHANGED",
    "PROOF_SUBMITTED",
    "PROOF_REVIEWED",
    "DISPUTE_OPENED",
    "DISPUTE_RESOLVED",
    "MESSAGE_SENT",  # once task messaging attaches watch_emit to its table
)
NOTIFICATION_KINDS = ("NOTIFICATION_CREATED", "NOTIFICATIONS_READ")
FEED_KIND = "TASK_CHANGED"
URGENT_WINDOW_SECONDS = 30 * 60  # the URGENT feed's "posted in the last 30 minutes"
EARTH_RADIUS_M = 6_371_008.8
CATCH_UP_PAGE = 500
SEQUENCE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One row of the log, as every stream reads it."""

    seq: int
    kind: str
    task_id: str | None
    user_id: str | None
    data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Bounds:
    """The cursors a stream may resume from: `purged_through` ≤ cursor ≤ `latest`."""

    purged_through: int
    latest: int


@dataclass(frozen=True, slots=True)
class Parties:
    poster_id: str
    worker_id: str | None


@dataclass(frozen=True, slots=True)
class FeedInterest:
    """What a WatchFeed stream asks for, and the cheap test of a task change against it (the
    caller's state, the radius, urgency), made in process before eligibility is asked of SQL."""

    user_id: str
    location_state: str | None
    urgent_only: bool
    latitude: float | None = None  # NEARBY only
    longitude: float | None = None
    radius_meters: float = 0.0

    def distance(self, event: WatchEvent) -> float | None:
        """Meters from the stream's point to the task (None when the stream has no point)."""
        if self.latitude is None or self.longitude is None:
            return None
        return haversine(
            self.latitude,
            self.longitude,
            float(event.data["latitude"]),
            float(event.data["longitude"]),
        )

    def may_concern(self, event: WatchEvent, now: float) -> bool:
        data = event.data
        if self.location_state is None or data.get("location_state") != self.location_state:
            return False
        if self.urgent_only and entered(event):
            if not data.get("urgent"):
                return False
            created = datetime.fromisoformat(str(data["created_at"])).timestamp()
            if now - created > URGENT_WINDOW_SECONDS:
                return False
        if self.latitude is not None and self.longitude is not None:
            # a bounding box first (one degree of latitude is ~111 km), then the great circle
            degrees = self.radius_meters / 111_000 + 0.01
            if abs(float(data["latitude"]) - self.latitude) > degrees:
                return False
            distance = self.distance(event)
            if distance is None or distance > self.radius_meters:
                return False
        return True


def haversine(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle meters between two points (PostGIS's geography distance is on the
    spheroid: the two differ by well under 0.5 %, and a stream's radius is only a prefilter of
    what it is sent)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _open_and_funded(state: object, funded: object) -> bool:
    return state == "OPEN" and bool(funded)


def entered(event: WatchEvent) -> bool:
    """A task change that put the task into the open, funded set (feeds show it from now)."""
    data = event.data
    return _open_and_funded(data.get("state"), data.get("funded")) and not _open_and_funded(
        data.get("previous_state"), data.get("was_funded")
    )


def left(event: WatchEvent) -> bool:
    """A task change that took the task out of the open, funded set (accepted, cancelled,
    expired)."""
    data = event.data
    return _open_and_funded(data.get("previous_state"), data.get("was_funded")) and not (
        _open_and_funded(data.get("state"), data.get("funded"))
    )


_EVENTS = Rows("watch_read", WatchEvent)
_TASK_EVENTS = Rows("watch_task_events", WatchEvent)
_USER_EVENTS = Rows("watch_user_events", WatchEvent)
_FEED_EVENTS = Rows("watch_feed_events", WatchEvent)
_BOUNDS = Rows("watch_bounds", Bounds)
_PARTIES = Rows("watch_task_parties", Parties)


def format_cursor(seq: int) -> str:
    return str(seq)


def parse_cursor(text: str, field: str = "after") -> int | None:
    """The cursor a client sent back (None: none, watch from now)."""
    if not text:
        return None
    if not text.isdigit() or len(text) > 19:
        raise invalid(field, "must be a cursor this server sent (or empty)")
    return int(text)


async def check_cursor(db: Database, cursor: int) -> None:
    """A cursor from before the retention purge, or not from this log: resync (HX601)."""
    bounds = await db.one(_BOUNDS)
    assert bounds is not None
    if cursor < bounds.purged_through or cursor > bounds.latest:
        raise HxError(
            "HX601",
            "This cursor is older than the events kept (or not one of ours): reload the state"
            " and watch again without one.",
        )


async def sequence(db: Database) -> int:
    """Number the events committed since the last call; the newest cursor there is."""
    latest = await db.scalar("watch_sequence", int, batch=SEQUENCE_BATCH)
    return latest or 0


async def read_after(db: Database, after: int, limit: int) -> list[WatchEvent]:
    return await db.all(_EVENTS, after=after, limit=limit)


async def task_parties(db: Database, who: Caller, task_id: str) -> Parties:
    """Who may watch a task: its poster, its worker and admins (HX202 for anyone else)."""
    parties = await db.one(_PARTIES, task_id=task_id)
    if parties is None:
        raise HxError("HX302", "No such task.")
    if who.user_id not in (parties.poster_id, parties.worker_id) and not who.is_admin:
        raise HxError("HX202", "Only the task's poster, its worker and admins may watch it.")
    return parties


async def profile_state(db: Database, user_id: str) -> str | None:
    return await db.scalar("watch_profile_state", str, user_id=user_id)


async def task_events(db: Database, task_id: str, after: int) -> list[WatchEvent]:
    return await db.all(
        _TASK_EVENTS, task_id=task_id, after=after, kinds=list(TASK_KINDS), limit=CATCH_UP_PAGE
    )


async def user_events(db: Database, user_id: str, after: int) -> list[WatchEvent]:
    return await db.all(
        _USER_EVENTS,
        user_id=user_id,
        after=after,
        kinds=list(NOTIFICATION_KINDS),
        limit=CATCH_UP_PAGE,
    )


async def feed_events(db: Database, user_id: str, after: int) -> list[WatchEvent]:
    """Task changes after `after` that may concern the user's feed, entries already checked
    against the feed's predicate (the stream's FeedInterest is still to be applied)."""
    return await db.all(_FEED_EVENTS, user_id=user_id, after=after, limit=CATCH_UP_PAGE)


async def eligible_users(db: Database, task_id: str, user_ids: Sequence[str]) -> set[str]:
    """Which of the users may take the task now (is_eligible: the feed's own predicate), in one
    statement for all of them."""
    if not user_ids:
        return set()
    rows = await db.all(_ELIGIBLE, task_id=task_id, user_ids=list(user_ids))
    return {row.user_id for row in rows}


async def cards(db: Database, task_ids: Sequence[str]) -> dict[str, Task]:
    """The current cards of tasks that entered feeds (each `eligible` for the streams that were
    found eligible)."""
    return {card.id: card for card in await feed.cards(db, task_ids)}


async def unread_count(db: Database, user_id: str) -> int:
    return await db.scalar("watch_unread_count", int, user_id=user_id) or 0


async def purge(db: Database, retention_hours: int) -> int:
    """Delete the events older than the retention; how many went."""
    return await db.scalar("watch_purge", int, hours=retention_hours) or 0


@dataclass(frozen=True, slots=True)
class _Eligible:
    user_id: str


_ELIGIBLE = Rows("watch_eligible_users", _Eligible)
