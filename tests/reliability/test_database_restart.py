"""A PostgreSQL restart under a running server: no call fails once the database is back.

Issue 19, item 2: after a restart every idle pooled connection was dead, and the pool handed
each one out in turn (a lightly used process failed its next calls with HX902), and /health
kept saying 503 "database" until its next scheduled check.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
from grpc import aio

from hustle.v1 import system_pb2, system_pb2_grpc
from server.app import HustleServer, Resources
from server.config import Settings
from tests.helpers import PrivatePostgres, eventually

POOL = 4


@pytest.fixture
async def server_on_private_postgres(
    settings: Settings, private_database_url: str
) -> AsyncIterator[HustleServer]:
    own = settings.model_copy(
        update={
            "database_url": private_database_url,
            "db_pool_min_size": POOL,
            "db_pool_max_size": POOL,
            "health_check_interval_seconds": 4.0,
        }
    )
    resources = await Resources.open(own)
    await resources.db.pool.wait(timeout=30)  # every connection open (and idle)
    server = HustleServer(own, resources)
    await server.start()
    yield server
    await server.stop(grace=0)
    await resources.close()


async def _info(stub: system_pb2_grpc.SystemServiceStub) -> grpc.StatusCode:
    try:
        await stub.GetServerInfo(system_pb2.GetServerInfoRequest(), timeout=10)
    except aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_no_call_fails_once_the_database_is_back(
    server_on_private_postgres: HustleServer, private_postgres: PrivatePostgres
) -> None:
    server = server_on_private_postgres
    async with aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = system_pb2_grpc.SystemServiceStub(channel)
        assert await _info(stub) == grpc.StatusCode.OK
        assert server.resources.db.pool.get_stats()["pool_available"] == POOL

        await asyncio.to_thread(private_postgres.restart)  # every pooled connection is now dead
        # One at a time (a lightly used process), then a burst: none may fail.
        codes = [await _info(stub) for _ in range(POOL + 2)]
        codes += await asyncio.gather(*(_info(stub) for _ in range(2 * POOL)))
    assert codes == [grpc.StatusCode.OK] * len(codes)


async def test_health_says_so_as_soon_as_the_database_is_back(
    server_on_private_postgres: HustleServer, private_postgres: PrivatePostgres
) -> None:
    server = server_on_private_postgres
    async with aiohttp.ClientSession() as http:

        async def health() -> tuple[int, dict[str, object]]:
            async with http.get(f"http://127.0.0.1:{server.http_port}/health") as r:
                return r.status, await r.json()

        assert (await health())[0] == 200
        await asyncio.to_thread(private_postgres.stop)
        _, body = await eventually(health, lambda h: h[0] == 503, timeout=15)
        assert list(body["failing"]) == ["database"]  # type: ignore[call-overload]
        await asyncio.sleep(6)  # long enough for the pool's reconnection attempts to back off
        await asyncio.to_thread(private_postgres.start)
        # HEALTH_CHECK_INTERVAL is 4 s here: a failing dependency is checked far more often,
        # and the pool tries to reconnect at least once a second.
        await eventually(health, lambda h: h[0] == 200, timeout=2.5, what="/health 200 again")
