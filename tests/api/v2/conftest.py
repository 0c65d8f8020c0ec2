"""A server for the hustle.v2 tests: production settings but roomy rate limits (the tests make
many calls a minute), and the v2 stubs on a real channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from grpc import aio

from server.app import HustleServer, Resources
from server.config import Settings
from tests.api.v2.market import V2

ROOMY = {
    "rate_limit_write_per_minute": 1000,
    "rate_limit_read_per_minute": 1000,
    "rate_limit_auth_per_minute": 1000,
    "rate_limit_upload_per_minute": 1000,
}


@pytest.fixture
async def v2_server(settings: Settings, resources: Resources) -> AsyncIterator[HustleServer]:
    server = HustleServer(settings.model_copy(update=ROOMY), resources)
    await server.start()
    yield server
    await server.stop(grace=0)


@pytest.fixture
async def v2_channel(v2_server: HustleServer) -> AsyncIterator[aio.Channel]:
    async with aio.insecure_channel(f"127.0.0.1:{v2_server.grpc_port}") as channel:
        yield channel


@pytest.fixture
def api(v2_channel: aio.Channel, conn: psycopg.Connection[Any]) -> V2:
    return V2(v2_channel, conn)
