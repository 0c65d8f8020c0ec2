"""Once v1 has a deprecation and a sunset date, every v1 response says so in its metadata
(RFC 9745 `deprecation`, RFC 8594 `sunset`, and a `link`), errors included, through a real
channel; other services and a server without the dates send nothing of the kind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hustle.v1 import system_pb2, system_pb2_grpc, user_pb2, user_pb2_grpc
from server.app import HustleServer, Resources
from server.config import Settings

LINK = "https://docs.hustle.app/versioning"
EXPECTED = {
    "deprecation": "@1798761600",  # 2027-01-01T00:00:00Z
    "sunset": "Fri, 31 Dec 2027 23:59:59 GMT",
    "link": f'<{LINK}>; rel="deprecation"; type="text/html", <{LINK}>; rel="sunset"; type="text/html"',
}


@pytest.fixture
async def sunset_channel(settings: Settings, resources: Resources) -> AsyncIterator[aio.Channel]:
    """A server whose v1 is deprecated, with a sunset date."""
    dated = settings.model_copy(
        update={
            "v1_deprecated_at": datetime(2027, 1, 1, tzinfo=UTC),
            "v1_sunset_at": datetime(2027, 12, 31, 23, 59, 59, tzinfo=UTC),
            "v1_deprecation_link": LINK,
        }
    )
    server = HustleServer(dated, resources)
    await server.start()
    try:
        async with aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            yield channel
    finally:
        await server.stop(grace=0)


def notices(metadata: aio.Metadata | None) -> dict[str, str]:
    found = dict(metadata or ())
    return {k: str(found[k]) for k in ("deprecation", "sunset", "link") if k in found}


async def test_a_v1_response_carries_the_dates(sunset_channel: aio.Channel) -> None:
    call = system_pb2_grpc.SystemServiceStub(sunset_channel).GetServerInfo(
        system_pb2.GetServerInfoRequest(), metadata=(("x-request-id", "sunset-1"),), timeout=5
    )
    info = await call
    assert info.api_versions  # answered as usual
    metadata = await call.initial_metadata()
    assert notices(metadata) == EXPECTED
    assert dict(metadata)["x-request-id"] == "sunset-1"  # the request id is still there


async def test_a_v1_error_carries_the_dates_too(sunset_channel: aio.Channel) -> None:
    call = user_pb2_grpc.UserServiceStub(sunset_channel).GetMe(user_pb2.GetMeRequest(), timeout=5)
    with pytest.raises(aio.AioRpcError) as caught:
        await call
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert notices(caught.value.initial_metadata()) == EXPECTED


async def test_other_services_carry_nothing(sunset_channel: aio.Channel) -> None:
    call = health_pb2_grpc.HealthStub(sunset_channel).Check(
        health_pb2.HealthCheckRequest(), timeout=5
    )
    await call
    assert notices(await call.initial_metadata()) == {}


async def test_without_dates_v1_carries_nothing(channel: aio.Channel) -> None:
    call = system_pb2_grpc.SystemServiceStub(channel).GetServerInfo(
        system_pb2.GetServerInfoRequest(), timeout=5
    )
    await call
    metadata = await call.initial_metadata()
    assert notices(metadata) == {}
    assert "x-request-id" in dict(metadata)
