"""Hostile bytes: requests that are not valid protobuf, oversized, or random, through a real
channel to the real server (every interceptor)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from grpc import aio
from loguru import logger

from server.app import HustleServer
from tests.api.test_observability import sample, scrape
from tests.helpers import error_details

# GetTaskRequest{task_id: <invalid UTF-8>}: field 1, length 9, bytes ff fe c3 28 61 62 63 ...
INVALID_UTF8 = bytes.fromhex("0a09fffec3286162630a")


def raw(channel: aio.Channel, method: str) -> Any:
    """A callable sending bytes as they are (no serializer) to `method`."""
    return channel.unary_unary(method, request_serializer=None, response_deserializer=None)


async def test_undecodable_bytes_are_invalid_argument_counted_and_logged_once(
    channel: aio.Channel, server: HustleServer
) -> None:
    """Issue 19, item 4: such bytes answered UNKNOWN with the parser's class and text, skipped
    every interceptor and logged an ERROR traceback each."""
    method = "/hustle.v1.TaskService/GetTask"
    before = await scrape(server)
    records: list[Any] = []
    sink = logger.add(lambda m: records.append(m.record), level="DEBUG")
    try:
        for i in range(5):
            call = raw(channel, method)(
                INVALID_UTF8, metadata=(("x-request-id", f"garbage-{i}"),), timeout=5
            )
            with pytest.raises(aio.AioRpcError) as refused:
                await call
            error = refused.value
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
            assert error_details(error)["ErrorInfo"].reason == "HX301"  # type: ignore[attr-defined]
            assert "DecodeError" not in (error.details() or "")
            assert dict(await call.initial_metadata())["x-request-id"] == f"garbage-{i}"
    finally:
        logger.remove(sink)
    after = await scrape(server)

    access = [r for r in records if r["message"] == "rpc"]
    assert [r["extra"]["request_id"] for r in access] == [f"garbage-{i}" for i in range(5)]
    assert {r["extra"]["code"] for r in access} == {"INVALID_ARGUMENT"}
    assert [r for r in records if r["level"].name in ("ERROR", "CRITICAL")] == []
    warned = [r for r in records if r["message"].startswith("undecodable requests refused")]
    assert len(warned) == 1  # once per burst, not once per call
    labels = {"grpc_service": "hustle.v1.TaskService", "grpc_method": "GetTask"}
    name = "grpc_server_undecodable_requests_total"
    assert sample(after, name, **labels) == sample(before, name, **labels) + 5
    handled = "grpc_server_handled_total"
    assert (
        sample(after, handled, grpc_code="INVALID_ARGUMENT", **labels)
        == sample(before, handled, grpc_code="INVALID_ARGUMENT", **labels) + 5
    )
