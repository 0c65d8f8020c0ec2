"""hustle.v1.FeedService: input checks and the page's wire form (cached as such)."""

from __future__ import annotations

from typing import Any

from grpc import aio

from hustle.v1 import feed_pb2, feed_pb2_grpc
from server import caller, validation
from server.api.v1 import convert
from server.api.v1.tasks import point
from server.cache import FeedCache
from server.config import Settings
from server.db import Database
from server.domain import feed
from server.errors import invalid

Context = aio.ServicerContext[Any, Any]
MODES = {
    feed_pb2.FEED_MODE_NORMAL: "NORMAL",
    feed_pb2.FEED_MODE_URGENT: "URGENT",
    feed_pb2.FEED_MODE_NEARBY: "NEARBY",
}


def render(rows: list[dict[str, Any]], next_token: str) -> bytes:
    items = []
    for row in rows:
        task = convert.task(row)
        task.eligible = True  # the query chose it by the eligibility predicate
        items.append(feed_pb2.FeedItem(task=task, distance_meters=row["distance"]))
    return feed_pb2.GetFeedResponse(items=items, next_page_token=next_token).SerializeToString()


class FeedService(feed_pb2_grpc.FeedServiceServicer):
    def __init__(self, db: Database, cache: FeedCache, settings: Settings) -> None:
        self._db = db
        self._cache = cache
        self._secret = settings.secret_key.get_secret_value()

    async def GetFeed(
        self, request: feed_pb2.GetFeedRequest, context: Context
    ) -> feed_pb2.GetFeedResponse:
        mode = MODES.get(request.mode)
        if mode is None:
            raise invalid("mode", "must be FEED_MODE_NORMAL, FEED_MODE_URGENT or FEED_MODE_NEARBY")
        size = validation.page_size(
            request.page_size, default=feed.DEFAULT_PAGE, maximum=feed.MAX_PAGE
        )
        query = feed.FeedQuery(mode=mode, page_size=size, page_token=request.page_token)
        if mode == "NEARBY":
            if not request.HasField("location"):
                raise invalid("location", "is required for FEED_MODE_NEARBY")
            latitude, longitude = point(request.location)
            radius = request.radius_meters or feed.DEFAULT_RADIUS_M
            if not 0 < radius <= feed.MAX_RADIUS_M:
                raise invalid("radius_meters", f"must be between 1 and {feed.MAX_RADIUS_M}")
            query = feed.FeedQuery(mode, size, request.page_token, latitude, longitude, radius)
        body = await feed.page(
            self._db, self._cache, self._secret, caller.current().user_id, query, render
        )
        return feed_pb2.GetFeedResponse.FromString(body)
