"""hustle.v1.FeedService: input checks and the page's wire form (cached, and sent, as such)."""

from __future__ import annotations

from typing import Any

import grpc
from grpc import aio

from hustle.v1 import feed_pb2
from server import caller, validation
from server.api.v1 import convert
from server.cache import FeedCache
from server.config import Settings
from server.db import Database
from server.domain import feed
from server.domain.records import FeedMode, FeedTask
from server.errors import invalid

Context = aio.ServicerContext[Any, Any]


def render(items: list[FeedTask], next_token: str) -> bytes:
    return feed_pb2.GetFeedResponse(
        items=[convert.feed_item(item) for item in items], next_page_token=next_token
    ).SerializeToString()


def _serialize(response: bytes | feed_pb2.GetFeedResponse) -> bytes:
    return response if isinstance(response, bytes) else response.SerializeToString()


def add_to_server(service: FeedService, server: aio.Server) -> None:
    """As the generated `add_FeedServiceServicer_to_server`, except that GetFeed may answer with
    a page already in its wire form (the cache stores pages so): sent as is, not re-encoded."""
    handlers = {
        "GetFeed": grpc.unary_unary_rpc_method_handler(
            service.GetFeed,
            request_deserializer=feed_pb2.GetFeedRequest.FromString,
            response_serializer=_serialize,
        )
    }
    name = feed_pb2.DESCRIPTOR.services_by_name["FeedService"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
    server.add_registered_method_handlers(name, handlers)


class FeedService:
    def __init__(self, db: Database, cache: FeedCache, settings: Settings) -> None:
        self._db = db
        self._cache = cache
        self._secret = settings.secret_key.get_secret_value()

    async def GetFeed(self, request: feed_pb2.GetFeedRequest, context: Context) -> bytes:
        mode = convert.FEED_MODES.to_domain(request.mode)
        if mode is None:
            raise invalid("mode", "must be FEED_MODE_NORMAL, FEED_MODE_URGENT or FEED_MODE_NEARBY")
        size = validation.page_size(
            request.page_size, default=feed.DEFAULT_PAGE, maximum=feed.MAX_PAGE
        )
        query = feed.FeedQuery(mode=mode, page_size=size, page_token=request.page_token)
        if mode is FeedMode.NEARBY:
            if not request.HasField("location"):
                raise invalid("location", "is required for FEED_MODE_NEARBY")
            latitude, longitude = validation.point(request.location)
            radius = request.radius_meters or feed.DEFAULT_RADIUS_M
            if not 0 < radius <= feed.MAX_RADIUS_M:
                raise invalid("radius_meters", f"must be between 1 and {feed.MAX_RADIUS_M}")
            query = feed.FeedQuery(mode, size, request.page_token, latitude, longitude, radius)
        return await feed.page(
            self._db, self._cache, self._secret, caller.current().user_id, query, render
        )
