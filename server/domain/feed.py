"""The feeds: every task in a page passes the eligibility predicate, decided by the query
itself (sql/feed.sql). A page is a list of entries (id, version, position, distance); the
cards they name are read by id. Encoding and caching pages belong to the API
(server/api/feed_pages.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.db import Database, Rows, Session
from server.domain.records import FeedEntry, FeedMode, Task

TTL_SECONDS = {FeedMode.NORMAL: 60, FeedMode.URGENT: 15, FeedMode.NEARBY: 60}
DEFAULT_RADIUS_M, MAX_RADIUS_M = 16_000, 80_000
DEFAULT_PAGE, MAX_PAGE = 50, 100


@dataclass(frozen=True, slots=True)
class FeedProfile:
    """The caller's capability profile as the page cache keys it."""

    version: int
    location_state: str | None
    valid_until: datetime | None  # when its verdicts next change by time alone


@dataclass(frozen=True, slots=True)
class FeedQuery:
    mode: FeedMode
    page_size: int
    page_token: str
    latitude: float = 0.0
    longitude: float = 0.0
    radius_meters: int = DEFAULT_RADIUS_M

    def identity(self) -> tuple[object, ...]:
        """What makes two queries the same list (the page token is only valid for it)."""
        if self.mode is FeedMode.NEARBY:
            return (
                self.mode.value,
                round(self.latitude, 5),
                round(self.longitude, 5),
                self.radius_meters,
                self.page_size,
            )
        return (self.mode.value, self.page_size)


_PROFILE = Rows("feed_profile", FeedProfile)
_NORMAL = Rows("feed_normal", FeedEntry)
_URGENT = Rows("feed_urgent", FeedEntry)
_NEARBY = Rows("feed_nearby", FeedEntry)
_CARDS = Rows("feed_cards", Task)


async def profile(db: Database, user_id: str) -> FeedProfile | None:
    """None: the user has no capability profile yet (nothing is eligible)."""
    return await db.one(_PROFILE, user_id=user_id)


def position(mode: FeedMode, entry: FeedEntry) -> list[Any]:
    """An entry's keyset position in its feed (what a page token carries)."""
    keyset: list[Any] = [entry.created_at.isoformat(), entry.id]
    return [entry.distance, *keyset] if mode is FeedMode.NEARBY else keyset


@asynccontextmanager
async def snapshot(db: Database) -> AsyncIterator[Session]:
    """Statements that see one snapshot (a page and its cards read together)."""
    async with db.snapshot() as tx:
        yield tx


async def entries(
    db: Database | Session, user_id: str, query: FeedQuery, after: list[Any] | None
) -> list[FeedEntry]:
    """The page's entries after the keyset position `after`, one more than a page when there
    is a next one."""
    limit = query.page_size + 1
    if query.mode is FeedMode.NEARBY:
        return await _nearby(db, user_id, query, after, limit)
    created, task = after if after else (None, None)
    statement = _URGENT if query.mode is FeedMode.URGENT else _NORMAL
    return await db.all(
        statement, user_id=user_id, after_created=created, after_id=task, limit=limit
    )


async def cards(db: Database | Session, ids: Sequence[str]) -> list[Task]:
    """The current cards of these tasks (any order; a vanished task is left out)."""
    return await db.all(_CARDS, ids=list(ids))


async def _nearby(
    db: Database | Session, user_id: str, query: FeedQuery, after: list[Any] | None, limit: int
) -> list[FeedEntry]:
    """`limit` rows nearest first, then newest. The scan gives rows in distance order only (see
    nearby_open_tasks), so fetch one more than needed: if it is as far as the last wanted row,
    tasks at that distance may have been cut at random; fetch more until they are not."""
    distance, created, task = after if after else (None, None, None)
    fetch = limit + 1
    while True:
        rows = await db.all(
            _NEARBY,
            user_id=user_id,
            point=f"SRID=4326;POINT({query.longitude} {query.latitude})",
            radius=query.radius_meters,
            after_distance=distance,
            after_created=created,
            after_id=task,
            limit=fetch,
        )
        if len(rows) < fetch or rows[-1].distance > rows[limit - 1].distance:
            return rows[:limit]  # sorted by the query: distance, created_at DESC, id DESC
        fetch *= 2
