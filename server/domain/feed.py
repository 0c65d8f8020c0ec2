"""The feeds: every task in a page passes the eligibility predicate, decided by the query
itself (sql/feed.sql); pages are cached per user and query (server/cache.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server import metrics, pagination
from server.cache import FeedCache
from server.db import Database, Rows
from server.domain.records import FeedMode, FeedTask

TTL_SECONDS = {FeedMode.NORMAL: 60, FeedMode.URGENT: 15, FeedMode.NEARBY: 60}
DEFAULT_RADIUS_M, MAX_RADIUS_M = 16_000, 80_000
DEFAULT_PAGE, MAX_PAGE = 50, 100

Render = Callable[[list[FeedTask], str], bytes]


@dataclass(frozen=True, slots=True)
class FeedProfile:
    """The caller's capability profile as the cache keys it."""

    version: int
    location_state: str | None
    valid_until: datetime | None  # when its verdicts next change by time alone


_PROFILE = Rows("feed_profile", FeedProfile)
_NORMAL = Rows("feed_normal", FeedTask)
_URGENT = Rows("feed_urgent", FeedTask)
_NEARBY = Rows("feed_nearby", FeedTask)


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


async def page(
    db: Database, cache: FeedCache, secret: str, user_id: str, query: FeedQuery, render: Render
) -> bytes:
    """One page of a feed, serialized by `render`, from the cache when it can be."""
    kind = "feed:" + FeedCache.query_key(*query.identity())
    after = pagination.decode(secret, kind, query.page_token)
    slot = FeedCache.query_key(*query.identity(), query.page_token)
    found = await cache.lookup(user_id, slot)
    if found.page is not None:
        metrics.FEED_CACHE.labels(query.mode.value, "hit").inc()
        return found.page
    metrics.FEED_CACHE.labels(query.mode.value, "miss").inc()
    if found.key is None:
        profile = await db.one(_PROFILE, user_id=user_id)
        if profile is None:  # no capability profile yet: nothing is eligible
            return render([], "")
        valid_until = profile.valid_until.timestamp() if profile.valid_until else None
        await cache.remember_user(
            user_id, profile.version, profile.location_state or "", valid_until
        )
        found = await cache.lookup(user_id, slot)

    started = time.perf_counter()
    rows = await _query(db, user_id, query, after)
    metrics.FEED_QUERY_SECONDS.labels(query.mode.value).observe(time.perf_counter() - started)
    items, token = pagination.split(
        secret, kind, rows, query.page_size, lambda row: _position(query.mode, row)
    )
    body = render(items, token)
    if found.key is not None:
        await cache.store(found.key, body, TTL_SECONDS[query.mode], found.valid_until)
    return body


def _position(mode: FeedMode, row: FeedTask) -> list[Any]:
    keyset: list[Any] = pagination.keyset(row)
    return [row.distance, *keyset] if mode is FeedMode.NEARBY else keyset


async def _query(
    db: Database, user_id: str, query: FeedQuery, after: list[Any] | None
) -> list[FeedTask]:
    limit = query.page_size + 1
    if query.mode is FeedMode.NEARBY:
        return await _nearby(db, user_id, query, after, limit)
    created, task = after if after else (None, None)
    statement = _URGENT if query.mode is FeedMode.URGENT else _NORMAL
    return await db.all(
        statement, user_id=user_id, after_created=created, after_id=task, limit=limit
    )


async def _nearby(
    db: Database, user_id: str, query: FeedQuery, after: list[Any] | None, limit: int
) -> list[FeedTask]:
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
