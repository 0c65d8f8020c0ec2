"""PostgreSQL restarted under open watch streams (issue 16): each stream survives (or ends with
UNAVAILABLE), the hub listens again and catches up, and a resume from the last cursor loses
nothing that committed meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import psycopg
import pytest
from grpc import aio

from hustle.v2 import task_pb2, task_pb2_grpc
from server.app import HustleServer, Resources
from server.config import Settings
from tests.api.market import Market
from tests.api.v2.conftest import ROOMY
from tests.helpers import PrivatePostgres, eventually
from tests.invariants.world import World

pytestmark = pytest.mark.serial  # restarts a PostgreSQL cluster
K = task_pb2.TaskEventKind


@pytest.fixture
async def watch_server(
    settings: Settings, private_database_url: str
) -> AsyncIterator[HustleServer]:
    own = settings.model_copy(
        update={**ROOMY, "database_url": private_database_url, "watch_heartbeat_seconds": 0.5}
    )
    resources = await Resources.open(own)
    server = HustleServer(own, resources)
    await server.start()
    yield server
    await server.stop(grace=0)
    await resources.close()


async def _events(call: Any, into: list[Any]) -> grpc.StatusCode:
    """Read a stream until it ends; the code it ended with."""
    try:
        async for message in call:
            into.append(message)
    except aio.AioRpcError as error:
        return error.code()
    except asyncio.CancelledError:  # the test cancelled the call (this task was not cancelled)
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.OK


async def test_streams_survive_a_restart_and_a_resume_loses_nothing(
    watch_server: HustleServer, private_postgres: PrivatePostgres, private_database_url: str
) -> None:
    with psycopg.connect(private_database_url, autocommit=True) as conn:
        world = World(conn)
        poster = world.user()
        tasks = [world.task(poster) for _ in range(3)]  # funded, OPEN
    async with aio.insecure_channel(f"127.0.0.1:{watch_server.grpc_port}") as channel:
        with psycopg.connect(private_database_url, autocommit=True) as conn:
            person = Market(channel, conn).session(poster)
        stub = task_pb2_grpc.TaskServiceStub(channel)
        calls = [
            stub.WatchTask(task_pb2.WatchTaskRequest(task_id=str(t)), metadata=person.auth)
            for t in tasks
        ]
        got: list[list[Any]] = [[] for _ in calls]
        readers = [asyncio.create_task(_events(c, g)) for c, g in zip(calls, got, strict=True)]
        await eventually(lambda: all(got), bool, timeout=10, what="every stream's first beat")

        await asyncio.to_thread(private_postgres.restart)
        # changes made once the database is back, while the streams are open
        with psycopg.connect(private_database_url, autocommit=True) as conn:
            world = World(conn)
            for task in tasks:
                world.cancel(task)

        def settled() -> list[bool]:
            return [
                any(m.kind == K.TASK_EVENT_KIND_STATE_CHANGED for m in g) or r.done()
                for g, r in zip(got, readers, strict=True)
            ]

        await eventually(settled, all, timeout=15, what="each stream saw its cancel or ended")
        for call in calls:
            call.cancel()
        codes = await asyncio.gather(*readers)
        assert set(codes) <= {grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE}, codes

        # a resume from each stream's last cursor yields exactly what the log holds after it
        with psycopg.connect(private_database_url, autocommit=True) as conn:
            for task, messages in zip(tasks, got, strict=True):
                last = messages[-1].cursor if messages else ""
                seen = [m for m in messages if m.kind != K.TASK_EVENT_KIND_HEARTBEAT]
                first_cursor = messages[0].cursor
                logged = [
                    row[0]
                    for row in conn.execute(
                        "SELECT seq FROM watch_events WHERE task_id = %s AND seq > %s ORDER BY seq",
                        (task, int(first_cursor)),
                    )
                ]
                resumed = stub.WatchTask(
                    task_pb2.WatchTaskRequest(task_id=str(task), after=last), metadata=person.auth
                )
                replayed = []
                while True:
                    message = await asyncio.wait_for(resumed.read(), 5)
                    if message.kind == K.TASK_EVENT_KIND_HEARTBEAT:
                        break
                    replayed.append(message)
                resumed.cancel()
                assert [int(m.cursor) for m in (*seen, *replayed)] == logged, task
                assert logged, "the cancel is in the log"
