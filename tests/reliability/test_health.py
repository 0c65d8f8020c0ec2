"""Health follows the live dependencies: Redis down is *degraded* (still serving, said once in
the logs), the database down is NOT_SERVING (tests/reliability/test_database_restart.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import psycopg
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from loguru import logger

from hustle.v1 import feed_pb2, feed_pb2_grpc, user_pb2, user_pb2_grpc
from server.app import HustleServer, Resources
from server.config import Settings
from tests.api.market import Market
from tests.api.test_observability import sample, scrape
from tests.helpers import PrivateRedis, eventually

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
async def watched_server(
    settings: Settings, private_redis: PrivateRedis
) -> AsyncIterator[HustleServer]:
    own = settings.model_copy(update={"redis_url": private_redis.url})
    resources = await Resources.open(own)
    server = HustleServer(own, resources)
    await server.start()
    yield server
    await server.stop(grace=0)
    await resources.close()


async def test_redis_down_is_degraded_and_said_once(
    watched_server: HustleServer, private_redis: PrivateRedis, database_url: str
) -> None:
    """Issue 19, item 6: with Redis down, health said NOT_SERVING although every read was served
    (a load balancer would have turned a tolerated outage into a full one), and the session and
    feed caches logged a WARNING on every call."""
    server = watched_server
    async with (
        aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
        aiohttp.ClientSession() as http,
    ):
        health = health_pb2_grpc.HealthStub(channel)

        async def grpc_status(service: str = "") -> int:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            return int(reply.status)

        async def http_health() -> tuple[int, dict[str, Any]]:
            async with http.get(f"http://127.0.0.1:{server.http_port}/health") as r:
                return r.status, await r.json()

        with psycopg.connect(database_url, autocommit=True) as conn:
            worker = Market(channel, conn).worker()
        users = user_pb2_grpc.UserServiceStub(channel)
        feed = feed_pb2_grpc.FeedServiceStub(channel)
        await eventually(grpc_status, lambda s: s == SERVING, what="SERVING at start")
        assert await http_health() == (200, {"status": "ok"})

        records: list[Any] = []
        sink = logger.add(lambda m: records.append(m.record), level="INFO")
        try:
            private_redis.stop()
            await eventually(http_health, lambda h: h[1]["status"] == "degraded", timeout=10)
            for _ in range(20):  # served from the database, counted by a local budget
                me = await users.GetMe(user_pb2.GetMeRequest(), metadata=worker.auth, timeout=10)
                assert me.me.user_id == worker.id
                await feed.GetFeed(
                    feed_pb2.GetFeedRequest(mode=feed_pb2.FEED_MODE_NORMAL),
                    metadata=worker.auth,
                    timeout=10,
                )
            assert await grpc_status() == SERVING
            assert await grpc_status("hustle.v1.UserService") == SERVING
            status, body = await http_health()
            assert (status, body["status"], list(body["degraded"])) == (200, "degraded", ["redis"])
            assert sample(await scrape(server), "dependency_up", dependency="redis") == 0

            private_redis.start()
            await eventually(http_health, lambda h: h == (200, {"status": "ok"}), timeout=10)
            await users.GetMe(user_pb2.GetMeRequest(), metadata=worker.auth, timeout=10)
            await feed.GetFeed(
                feed_pb2.GetFeedRequest(mode=feed_pb2.FEED_MODE_NORMAL),
                metadata=worker.auth,
                timeout=10,
            )
        finally:
            logger.remove(sink)

    warnings = [r["message"] for r in records if r["level"].name == "WARNING"]
    for component in ("session cache", "feed cache", "rate limiter"):
        down = [w for w in warnings if w.startswith(f"{component} unavailable")]
        assert len(down) == 1, (component, warnings)
        back = [r for r in records if r["message"] == f"{component} available again"]
        assert len(back) == 1, component
    assert len([w for w in warnings if w.startswith("dependency down")]) == 1
    assert len(warnings) <= 6, warnings  # nothing logged per call
