"""hustle.v2.FeedService through a real channel: the three feeds (distances in NEARBY only, 0
included), v2's own cached pages and cards beside v1's, paging, and bad input listed at once."""

from __future__ import annotations

from typing import Any

import grpc
import redis

from hustle.v1 import feed_pb2 as v1_feed
from hustle.v2 import common_pb2, feed_pb2
from server.app import HustleServer
from tests.api.market import Person
from tests.api.v2.market import V2, fails, invalid

F = feed_pb2
HERE = common_pb2.LatLng(latitude=34.05, longitude=-118.25)


async def feed(api: V2, who: Person, **request: Any) -> F.GetFeedResponse:
    return await api.feed.GetFeed(F.GetFeedRequest(**request), metadata=who.auth, timeout=10)


async def test_the_three_feeds(api: V2, v2_server: HustleServer) -> None:
    poster, worker = api.poster(), api.worker()
    here = await api.post(poster, urgent=True)
    near = await api.post(poster, lat=34.06, lng=-118.25)
    await api.create(poster)  # not funded: in no feed

    normal = await feed(api, worker, mode=F.FEED_MODE_NORMAL)
    assert [i.task.task_id for i in normal.items] == [near.task_id, here.task_id]  # newest first
    assert all(i.task.eligible and not i.HasField("distance_meters") for i in normal.items)
    urgent = await feed(api, worker, mode=F.FEED_MODE_URGENT)
    assert [i.task.task_id for i in urgent.items] == [here.task_id]

    nearby = await feed(api, worker, mode=F.FEED_MODE_NEARBY, location=HERE, radius_meters=5000)
    assert [i.task.task_id for i in nearby.items] == [here.task_id, near.task_id]  # nearest first
    assert nearby.items[0].HasField("distance_meters")
    assert nearby.items[0].distance_meters == 0.0  # present, and a real distance
    assert 1000 < nearby.items[1].distance_meters < 1200

    # v1 and v2 pages of the same feed are cached apart, each in its own shape
    v1 = await api.people.feed.GetFeed(
        v1_feed.GetFeedRequest(mode=v1_feed.FEED_MODE_NORMAL), metadata=worker.auth
    )
    assert [i.task.task_id for i in v1.items] == [near.task_id, here.task_id]
    assert v2_server.feed_service_v2 is not None
    cards = v2_server.feed_service_v2.pages.cards  # one card cache for v2's feeds
    assert len(cards) == 2
    assert await feed(api, worker, mode=F.FEED_MODE_NORMAL) == normal  # from the page cache

    # a task taken leaves the feed at once
    await api.accept(api.worker(), here.task_id)
    after = await feed(api, worker, mode=F.FEED_MODE_NEARBY, location=HERE, radius_meters=5000)
    assert [i.task.task_id for i in after.items] == [near.task_id]


async def test_pages_and_their_tokens(api: V2) -> None:
    poster, worker = api.poster(), api.worker()
    posted = [await api.post(poster) for _ in range(3)]
    first = await feed(api, worker, mode=F.FEED_MODE_NORMAL, page_size=2)
    rest = await feed(
        api, worker, mode=F.FEED_MODE_NORMAL, page_size=2, page_token=first.next_page_token
    )
    assert rest.next_page_token == ""
    shown = [i.task.task_id for i in (*first.items, *rest.items)]
    assert shown == [t.task_id for t in reversed(posted)]
    # above the maximum: the maximum (v1 refuses it)
    assert len((await feed(api, worker, mode=F.FEED_MODE_NORMAL, page_size=5000)).items) == 3
    # a token is valid only for its own query
    assert list(await invalid(feed(api, worker, mode=F.FEED_MODE_URGENT, page_size=2,
                                   page_token=first.next_page_token))) == ["page_token"]  # fmt: skip


async def test_bad_feed_requests_list_every_field(api: V2) -> None:
    worker = api.worker()
    assert sorted(await invalid(feed(api, worker, page_size=-1))) == ["mode", "page_size"]
    far = common_pb2.LatLng(latitude=120, longitude=200)
    found = await invalid(
        feed(api, worker, mode=F.FEED_MODE_NEARBY, location=far, radius_meters=90_000)
    )
    assert sorted(found) == ["location.latitude", "radius_meters"]  # a point: its first problem
    assert list(await invalid(feed(api, worker, mode=F.FEED_MODE_NEARBY))) == ["location"]
    no_session = api.feed.GetFeed(F.GetFeedRequest(mode=F.FEED_MODE_NORMAL), timeout=10)
    await fails(no_session, grpc.StatusCode.UNAUTHENTICATED, "HX401")


async def test_a_cached_v2_page_costs_one_redis_round_trip(api: V2, redis_url: str) -> None:
    """Admission looks the page up in its own round trip (its prefetch), for v2 as for v1."""
    poster, worker = api.poster(), api.worker()
    await api.post(poster)
    for mode in (F.FEED_MODE_NORMAL, F.FEED_MODE_NEARBY):
        first = await feed(api, worker, mode=mode, location=HERE)  # computed, stored
        client = redis.Redis.from_url(redis_url)
        try:
            client.config_resetstat()
            again = await feed(api, worker, mode=mode, location=HERE)
            calls = {name: stat["calls"] for name, stat in client.info("commandstats").items()}
        finally:
            client.close()
        assert again == first
        # one script call (session, counters and page; the commands it runs count apart), no
        # lookup of the servicer's own and nothing stored again
        assert calls["cmdstat_evalsha"] == 1, calls
        assert "cmdstat_set" not in calls, calls
