"""Health follows the live dependencies: Redis stopped → NOT_SERVING and /health names it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.app import HustleServer, Resources
from server.config import Settings
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


async def test_health_follows_redis(
    watched_server: HustleServer, private_redis: PrivateRedis
) -> None:
    async with (
        aio.insecure_channel(f"127.0.0.1:{watched_server.grpc_port}") as channel,
        aiohttp.ClientSession() as http,
    ):
        stub = health_pb2_grpc.HealthStub(channel)

        async def grpc_status() -> int:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            return int(reply.status)

        async def http_health() -> tuple[int, dict[str, object]]:
            async with http.get(f"http://127.0.0.1:{watched_server.http_port}/health") as r:
                return r.status, await r.json()

        await eventually(grpc_status, lambda s: s == SERVING, what="SERVING at start")
        assert (await http_health())[0] == 200

        private_redis.stop()
        await eventually(grpc_status, lambda s: s == NOT_SERVING, what="NOT_SERVING without Redis")
        service = await stub.Check(
            health_pb2.HealthCheckRequest(service="hustle.v1.SystemService"), timeout=5
        )
        assert service.status == NOT_SERVING
        status, body = await http_health()
        assert status == 503
        assert list(body["failing"]) == ["redis"]

        private_redis.start()
        await eventually(grpc_status, lambda s: s == SERVING, what="SERVING once Redis is back")
        assert await http_health() == (200, {"status": "ok"})
