"""SIGTERM drains: in-flight calls finish, new calls are refused, the process exits 0."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import aiohttp
import grpc
import psycopg
import pytest
from grpc import aio

from hustle.v1 import system_pb2, system_pb2_grpc
from tests.helpers import eventually, free_port
from tests.processes import Process, wait_until_serving


@pytest.fixture
def server_process(database_url: str, redis_url: str) -> Iterator[tuple[Process, int, int]]:
    grpc_port, http_port = free_port(), free_port()
    process = Process(
        ["serve"],
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": str(grpc_port),
            "HTTP_PORT": str(http_port),
            "SERVER_PROCESSES": "1",
            "SHUTDOWN_GRACE_SECONDS": "30",
        },
    )
    try:
        wait_until_serving(grpc_port, process)
        yield process, grpc_port, http_port
    finally:
        process.stop()


async def test_sigterm_lets_the_in_flight_call_finish_and_refuses_new_ones(
    server_process: tuple[Process, int, int], database_url: str
) -> None:
    process, grpc_port, http_port = server_process
    # Hold a lock that GetServerInfo's query needs, so that the call stays in flight.
    blocker = await psycopg.AsyncConnection.connect(database_url)
    await blocker.execute("LOCK TABLE _yoyo_migration IN ACCESS EXCLUSIVE MODE")
    try:
        async with aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = system_pb2_grpc.SystemServiceStub(channel)
            in_flight = asyncio.ensure_future(
                stub.GetServerInfo(system_pb2.GetServerInfoRequest(), timeout=60)
            )

            async with await psycopg.AsyncConnection.connect(
                database_url, autocommit=True
            ) as observer:

                async def waiting_queries() -> int:
                    cur = await observer.execute(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE query LIKE '/* schema_version */%%' AND wait_event_type = 'Lock'"
                    )
                    row = await cur.fetchone()
                    return int(row[0]) if row else 0

                await eventually(
                    waiting_queries, lambda n: n == 1, what="the call to wait on the lock"
                )

            process.popen.send_signal(signal.SIGTERM)

            async with aiohttp.ClientSession() as http:

                async def health() -> int:
                    async with http.get(f"http://127.0.0.1:{http_port}/health") as r:
                        return r.status

                await eventually(health, lambda s: s == 503, what="/health to report draining")

            async with aio.insecure_channel(f"127.0.0.1:{grpc_port}") as fresh:
                with pytest.raises(aio.AioRpcError) as refused:
                    await system_pb2_grpc.SystemServiceStub(fresh).GetServerInfo(
                        system_pb2.GetServerInfoRequest(), timeout=5
                    )
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert not in_flight.done()

            await blocker.commit()  # the in-flight call can finish now
            info = await in_flight
            assert info.schema_version
    finally:
        await blocker.close()

    assert await asyncio.to_thread(process.wait, 30) == 0, process.output
    assert "server process stopped" in process.output
