"""The feed's encoded cards (server/api/feed_pages.py): kept per process by task id and version,
so an edited task is shown edited at once; a card read after its page is checked against the
page's version."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from grpc import aio

from hustle.v1 import feed_pb2 as F
from hustle.v1 import task_pb2
from server import metrics
from server.app import HustleServer, Resources
from server.config import Settings
from server.domain import feed
from server.domain.records import FeedMode
from tests.api.market import Market
from tests.helpers import PrivateRedis


@pytest.fixture
def redis_url(private_redis: PrivateRedis) -> str:
    """A Redis of this module's tests alone: one counts the commands Redis runs (INFO
    commandstats is server-wide, and the suite runs in parallel workers)."""
    return private_redis.url


@pytest.fixture
async def app(
    settings: Settings, resources: Resources, conn: psycopg.Connection[Any]
) -> AsyncIterator[tuple[Market, HustleServer]]:
    roomy = settings.model_copy(update={"rate_limit_read_per_minute": 10_000,
                                        "rate_limit_write_per_minute": 10_000})  # fmt: skip
    server = HustleServer(roomy, resources)
    await server.start()
    async with aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield Market(channel, conn), server
    await server.stop(grace=0)


async def page(market: Market, who: Any) -> F.GetFeedResponse:
    return await market.feed.GetFeed(F.GetFeedRequest(mode=F.FEED_MODE_NORMAL), metadata=who.auth,
                                     timeout=10)  # fmt: skip


async def test_an_edited_task_is_shown_edited(app: tuple[Market, HustleServer]) -> None:
    market, _ = app
    poster, worker, other = market.poster(), market.worker(), market.worker()
    task = await market.post(poster)
    hits, misses = metrics.FEED_CARDS.labels("hit"), metrics.FEED_CARDS.labels("miss")
    before = (hits._value.get(), misses._value.get())
    assert [i.task.title for i in (await page(market, worker)).items] == ["Fix the sink"]
    # another reader's page: the card comes from this process's cards, not the database
    assert [i.task.title for i in (await page(market, other)).items] == ["Fix the sink"]
    assert (hits._value.get() - before[0], misses._value.get() - before[1]) == (1, 1)
    await market.tasks.UpdateTask(task_pb2.UpdateTaskRequest(task_id=task.task_id, title="Fix the tap"),
                                  metadata=poster.auth)  # fmt: skip
    shown = (await page(market, worker)).items
    assert [i.task.title for i in shown] == ["Fix the tap"]
    version = market.world.value("SELECT version FROM tasks WHERE id = %s", task.task_id)
    assert version == 3  # created 1, funded 2, edited 3


async def test_a_card_that_changed_since_its_page_is_not_used(
    app: tuple[Market, HustleServer],
) -> None:
    market, server = app
    poster, worker = market.poster(), market.worker()
    task = await market.post(poster)
    pages = server.feed_service.pages
    query = feed.FeedQuery(FeedMode.NORMAL, 50, "")
    entries = await feed.entries(server.resources.db, worker.id, query, None)
    assert [e.id for e in entries] == [task.task_id]
    await market.tasks.UpdateTask(task_pb2.UpdateTaskRequest(task_id=task.task_id, title="Moved on"),
                                  metadata=poster.auth)  # fmt: skip
    # the page's entry names the old version: its card is not the one the database has now
    assert await pages.cards_for(server.resources.db, entries) is None
    assert len(pages.cards) == 0
    fresh = await feed.entries(server.resources.db, worker.id, query, None)
    cards = await pages.cards_for(server.resources.db, fresh)
    assert cards is not None
    assert task_pb2.Task.FromString(cards[0]).title == "Moved on"
    assert len(pages.cards) == 1


async def test_a_cached_page_is_one_redis_round_trip(
    app: tuple[Market, HustleServer], redis_url: str
) -> None:
    """Admission reads the session, counts the call and looks the page up in one script."""
    import redis

    market, _ = app
    poster, worker = market.poster(), market.worker()
    await market.post(poster)
    await page(market, worker)  # fills the cache (and the session's)
    cached = await page(market, worker)
    client = redis.Redis.from_url(redis_url)
    try:
        client.config_resetstat()
        again = await page(market, worker)
        stats = client.info("commandstats")
    finally:
        client.close()
    assert again == cached
    calls = {name: entry["calls"] for name, entry in stats.items()}
    # one script from the client (the commands it ran inside are counted too: reads and the
    # rate limit's counter), and no page stored
    assert calls["cmdstat_evalsha"] == 1, calls
    assert "cmdstat_set" not in calls, calls
