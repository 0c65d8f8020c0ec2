"""What a client receives when a handler fails: typed statuses, rich details, nothing leaked."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import empty_pb2
from grpc import aio
from loguru import logger

from server.app import HustleServer, Resources
from server.config import Settings
from tests import probe
from tests.helpers import error_details


@pytest.fixture
async def probe_channel(settings: Settings, resources: Resources) -> AsyncIterator[aio.Channel]:
    server = HustleServer(settings, resources, extra_handlers=[probe.handlers(resources.db)])
    await server.start()
    async with aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield channel
    await server.stop(grace=0)


async def fail(channel: aio.Channel, method: str, **kwargs: object) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as caught:
        await probe.call(channel, method)(empty_pb2.Empty(), timeout=5, **kwargs)
    return caught.value


async def test_hx_error_reaches_the_client_typed(probe_channel: aio.Channel) -> None:
    error = await fail(probe_channel, "RaiseHx")
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "No such task."
    info = error_details(error)["ErrorInfo"]
    assert info.reason == "HX302"
    assert info.domain == "hustle"


async def test_invalid_argument_names_the_field(probe_channel: aio.Channel) -> None:
    error = await fail(probe_channel, "RaiseInvalid")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error_details(error)
    assert details["ErrorInfo"].reason == "HX301"
    violations = details["BadRequest"].field_violations
    assert [(v.field, v.description) for v in violations] == [
        ("price.amount_cents", "must be at least 500")
    ]


async def test_rate_limit_carries_retry_info(probe_channel: aio.Channel) -> None:
    error = await fail(probe_channel, "RaiseRateLimited")
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    delay = error_details(error)["RetryInfo"].retry_delay
    assert (delay.seconds, delay.nanos) == (2, 500_000_000)


async def test_database_rule_reaches_the_client_as_its_hx_code(probe_channel: aio.Channel) -> None:
    error = await fail(probe_channel, "DbTrigger")
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(error)["ErrorInfo"].reason == "HX003"
    assert error.details() == "illegal task transition OPEN -> COMPLETED"


async def test_unexpected_exception_is_internal_without_detail_and_logged(
    probe_channel: aio.Channel,
) -> None:
    records: list[dict[str, object]] = []
    sink = logger.add(lambda m: records.append(m.record), level="ERROR")
    try:
        error = await fail(probe_channel, "Boom", metadata=(("x-request-id", "req-boom-1"),))
    finally:
        logger.remove(sink)
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "Internal error."
    assert "secret" not in (error.debug_error_string() or "")
    assert error_details(error)["ErrorInfo"].reason == "HX901"
    trailing = dict(error.trailing_metadata() or ())
    assert all(
        b"secret" not in (v if isinstance(v, bytes) else v.encode()) for v in trailing.values()
    )
    logged = [r for r in records if r["extra"].get("request_id") == "req-boom-1"]
    assert len(logged) == 1
    assert logged[0]["exception"] is not None
    assert "secret internals" in str(logged[0]["exception"].value)
    assert logged[0]["extra"]["user_id"] == "user-42"


async def test_unknown_database_error_is_internal(probe_channel: aio.Channel) -> None:
    error = await fail(probe_channel, "DbUnknown")
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "no_such_table" not in error.details()


async def test_malformed_value_caught_by_the_database_is_invalid_argument(
    probe_channel: aio.Channel,
) -> None:
    error = await fail(probe_channel, "DbBadValue")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(error)["ErrorInfo"].reason == "HX301"
    assert "twelve" not in error.details()
