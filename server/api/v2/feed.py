"""hustle.v2.FeedService: input checks, and the page's v2 wire form (server/api/feed_pages.py
caches and assembles it; a cached page is sent as the stored bytes).

v2's `FeedItem.distance_meters` is `optional`: present in NEARBY pages only, where 0 is a real
distance, and absent elsewhere.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import grpc
from grpc import aio

from hustle.v2 import feed_pb2
from server import caller, validation
from server.api.feed_pages import FeedPages, length_delimited
from server.api.v2 import convert
from server.api.v2.watch import FeedWatch
from server.cache import FeedCache
from server.config import Settings
from server.db import Database
from server.domain import feed
from server.domain.records import FeedMode, Task
from server.errors import HxError, invalid
from server.validation import Checks
from server.watch import WatchHub

Context = aio.ServicerContext[Any, Any]


def _tag(message: Any, field: str, wire_type: int) -> int:
    """A field's one-byte key, from the generated descriptor (so the bytes follow the proto)."""
    number = message.DESCRIPTOR.fields_by_name[field].number
    assert number < 16, "one-byte keys only"
    return int(number << 3 | wire_type)


_ITEMS = _tag(feed_pb2.GetFeedResponse, "items", 2)
_NEXT = _tag(feed_pb2.GetFeedResponse, "next_page_token", 2)
_TASK = _tag(feed_pb2.FeedItem, "task", 2)
_DISTANCE = _tag(feed_pb2.FeedItem, "distance_meters", 1)


class V2Pages:
    """v2's GetFeedResponse, byte for byte what the generated message would serialize: with
    each item's distance in NEARBY pages (written even when 0), without it in the others."""

    namespace = "v2"

    def card(self, task: Task) -> bytes:
        return convert.task(task).SerializeToString()

    def page(self, items: Sequence[tuple[bytes, float]], next_token: str, mode: FeedMode) -> bytes:
        if mode is FeedMode.NEARBY:
            body = b"".join(
                length_delimited(
                    _ITEMS,
                    length_delimited(_TASK, card) + bytes((_DISTANCE,)) + struct.pack("<d", far),
                )
                for card, far in items
            )
        else:
            body = b"".join(length_delimited(_ITEMS, length_delimited(_TASK, c)) for c, _ in items)
        return body + (length_delimited(_NEXT, next_token.encode()) if next_token else b"")


def _serialize(response: bytes | feed_pb2.GetFeedResponse | feed_pb2.WatchFeedResponse) -> bytes:
    return response if isinstance(response, bytes) else response.SerializeToString()


def add_to_server(service: FeedService, server: aio.Server) -> None:
    """As the generated `add_FeedServiceServicer_to_server`, except that GetFeed answers with a
    page already in its wire form, sent as is (and WatchFeed's ENTERED messages are bytes too:
    server/api/v2/watch.py)."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "GetFeed": grpc.unary_unary_rpc_method_handler(
            service.GetFeed,
            request_deserializer=feed_pb2.GetFeedRequest.FromString,
            response_serializer=_serialize,
        ),
        "WatchFeed": grpc.unary_stream_rpc_method_handler(
            service.WatchFeed,
            request_deserializer=feed_pb2.WatchFeedRequest.FromString,
            response_serializer=_serialize,
        ),
    }
    name = feed_pb2.DESCRIPTOR.services_by_name["FeedService"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
    server.add_registered_method_handlers(name, handlers)


def _radius(value: int, field: str) -> int:
    radius = value or feed.DEFAULT_RADIUS_M
    if not 0 < radius <= feed.MAX_RADIUS_M:
        raise invalid(field, f"must be between 1 and {feed.MAX_RADIUS_M} (0: 16000)")
    return radius


def _centre(request: feed_pb2.GetFeedRequest) -> tuple[float, float]:
    if not request.HasField("location"):
        raise invalid("location", "is required for FEED_MODE_NEARBY")
    return validation.point(request.location)


def query_of(request: feed_pb2.GetFeedRequest) -> feed.FeedQuery:
    """The domain's query for a GetFeed request (one HX301 listing every invalid field)."""
    with Checks() as check:
        mode = convert.FEED_MODES.to_domain(request.mode)
        if mode is None:
            check.fail("mode", "must be FEED_MODE_NORMAL, FEED_MODE_URGENT or FEED_MODE_NEARBY")
        size = check(
            validation.page_size,
            request.page_size,
            default=feed.DEFAULT_PAGE,
            maximum=feed.MAX_PAGE,
            clamp=True,
        )
        if mode is FeedMode.NEARBY:
            centre = check(_centre, request)
            radius = check(_radius, request.radius_meters, "radius_meters")
    assert mode is not None
    if mode is not FeedMode.NEARBY:
        return feed.FeedQuery(mode=mode, page_size=size, page_token=request.page_token)
    latitude, longitude = centre
    return feed.FeedQuery(mode, size, request.page_token, latitude, longitude, radius)


class FeedService(FeedWatch):
    """FeedService; its WatchFeed stream is FeedWatch's (server/api/v2/watch.py)."""

    def __init__(self, db: Database, cache: FeedCache, settings: Settings, hub: WatchHub) -> None:
        FeedWatch.__init__(self, db, hub)
        self.pages = FeedPages(
            db,
            cache,
            settings.secret_key.get_secret_value(),
            V2Pages(),
            card_capacity=settings.feed_card_cache_entries,
        )

    def feed_query(self, request: feed_pb2.GetFeedRequest) -> feed.FeedQuery:
        return query_of(request)

    async def GetFeed(self, request: feed_pb2.GetFeedRequest, context: Context) -> bytes:
        query = query_of(request)
        return await self.pages.page(caller.current().user_id, query)

    def cache_slot(self, request: feed_pb2.GetFeedRequest) -> str | None:
        """The request's page slot, for admission to look up in its round trip (None when the
        request is invalid: GetFeed will say why)."""
        try:
            query = query_of(request)
        except HxError:
            return None
        return self.pages.slot(query)
