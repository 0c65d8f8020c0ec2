"""Hostile bytes: requests that are not valid protobuf, oversized, or random, through a real
channel to the real server (every interceptor)."""

from __future__ import annotations

import asyncio
import collections
import json
import random
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from loguru import logger

from hustle.v1 import system_pb2, system_pb2_grpc
from server import security
from server.app import HustleServer, Resources
from server.config import Settings
from tests.api.test_observability import sample, scrape
from tests.helpers import error_details
from tests.invariants.world import World

# GetTaskRequest{task_id: <invalid UTF-8>}: field 1, length 9, bytes ff fe c3 28 61 62 63 ...
INVALID_UTF8 = bytes.fromhex("0a09fffec3286162630a")


def raw(channel: aio.Channel, method: str) -> Any:
    """A callable sending bytes as they are (no serializer) to `method`."""
    return channel.unary_unary(method, request_serializer=None, response_deserializer=None)


async def test_undecodable_bytes_are_invalid_argument_counted_and_logged_once(
    channel: aio.Channel, server: HustleServer, capsys: pytest.CaptureFixture[str]
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

    # the access lines (JSON logs write them straight to stdout, server/logs.py access_log)
    logged = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    access = [
        e for e in logged if e["msg"] == "rpc" and e.get("request_id", "").startswith("garbage-")
    ]
    assert [e["request_id"] for e in access] == [f"garbage-{i}" for i in range(5)]
    assert {e["code"] for e in access} == {"INVALID_ARGUMENT"}
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


# --- every RPC the server offers, found by reflection, fed malformed, oversized and random bytes


@pytest.fixture
async def unlimited(settings: Settings, resources: Resources) -> AsyncIterator[HustleServer]:
    """The real server with its rate limits lifted, for this test only (~1,000 calls)."""
    lifted = {
        f"rate_limit_{group}_per_minute": 100_000_000
        for group in ("auth", "read", "write", "admin", "upload", "message")
    }
    server = HustleServer(settings.model_copy(update=lifted), resources)
    await server.start()
    yield server
    await server.stop(grace=0)


def reflected_methods(port: int) -> list[MethodDescriptor]:
    """Every method of every service the server lists by reflection (as grpcurl sees them)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        pool = descriptor_pool.DescriptorPool(database)
        return [
            method
            for name in database.get_services()
            for method in pool.FindServiceByName(name).methods
        ]


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def malformed(method: MethodDescriptor, rng: random.Random) -> list[bytes]:
    """Bytes that are not the method's request message, or are one barely."""
    cases = [
        b"\xff",  # a field number 0 / wire type 7
        b"\x08",  # a varint cut short
        b"\x0a\xff\xff\xff\xff\x0f",  # a length far past the end
        b"\x0b\x0c\x0d",  # group markers
        INVALID_UTF8,
        bytes(rng.randrange(256) for _ in range(64)),
        bytes(rng.randrange(256) for _ in range(512)),
    ]
    for field in method.input_type.fields:  # invalid UTF-8 in each string field
        if field.type == FieldDescriptor.TYPE_STRING:
            cases.append(varint(field.number << 3 | 2) + b"\x04\xff\xfe\xc3\x28")
        if field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_STRING):
            cases.append(varint(field.number << 3 | 2) + varint(200_000) + b"x" * 200_000)
    return cases


def random_value(field: FieldDescriptor, rng: random.Random, depth: int) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return rng.choice(
            ["", "\x00", "' OR 1=1 --", "💥" * 50, "a" * 10_000, "%(name)s", str(uuid.uuid4()),
             "../../etc/passwd", "-1", "NaN", " "]
        )  # fmt: skip
    if kind == FieldDescriptor.TYPE_BYTES:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
    if kind == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return rng.choice([0.0, -1.0, 1e308, -1e308, float("nan"), float("inf"), 91.0, -181.0])
    if kind == FieldDescriptor.TYPE_ENUM:
        return rng.choice([0, 1, 2, 99, -5, 2**31 - 1])
    if kind == FieldDescriptor.TYPE_MESSAGE:
        return random_message(field.message_type, rng, depth + 1)
    bits = 32 if kind in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32,
                          FieldDescriptor.TYPE_SFIXED32) else 64  # fmt: skip
    unsigned = kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64,
                        FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_FIXED64)  # fmt: skip
    low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return rng.choice([low, high, 0, -1 if not unsigned else 1, 500, 10**9])


def random_message(descriptor: Any, rng: random.Random, depth: int = 0) -> Message:
    message = GetMessageClass(descriptor)()
    if depth > 3:
        return message
    for field in descriptor.fields:
        if rng.random() < 0.3:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            continue
        try:
            if field.is_repeated:
                values = [random_value(field, rng, depth) for _ in range(rng.randrange(4))]
                target = getattr(message, field.name)
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    for value in values:
                        target.add().CopyFrom(value)
                else:
                    target.extend(values)
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                getattr(message, field.name).CopyFrom(random_value(field, rng, depth))
            else:
                setattr(message, field.name, random_value(field, rng, depth))
        except (ValueError, TypeError):
            continue  # a value protobuf itself refuses (an open enum is fine, a closed one not)
    return message


async def send(channel: aio.Channel, method: MethodDescriptor, payload: bytes, token: str) -> str:
    """Send raw bytes to a method of any kind; how it ended (a status code name)."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    metadata = (("authorization", f"Bearer {token}"),)
    try:
        if method.client_streaming and method.server_streaming:
            call = channel.stream_stream(path, request_serializer=None, response_deserializer=None)
            async for _ in call(iter([payload]), metadata=metadata, timeout=5):
                break
        elif method.server_streaming:
            stream = channel.unary_stream(path, request_serializer=None, response_deserializer=None)
            async for _ in stream(payload, metadata=metadata, timeout=5):
                break  # health's Watch never ends: its first answer will do
        elif method.client_streaming:
            call = channel.stream_unary(path, request_serializer=None, response_deserializer=None)
            await call(iter([payload]), metadata=metadata, timeout=5)
        else:
            await raw(channel, path)(payload, metadata=metadata, timeout=5)
    except aio.AioRpcError as error:
        return error.code().name
    return "OK"


async def test_every_rpc_survives_malformed_oversized_and_random_requests(
    unlimited: HustleServer, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        admin = admin_token(conn)
    methods = await asyncio.to_thread(reflected_methods, unlimited.grpc_port)
    services = {m.containing_service.full_name for m in methods}
    assert {"hustle.v1.TaskService", "grpc.health.v1.Health"} <= services
    rng = random.Random(19)  # the same requests every run
    outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
    records: list[Any] = []
    sink = logger.add(lambda m: records.append(m.record), level="ERROR")
    try:
        async with aio.insecure_channel(
            f"127.0.0.1:{unlimited.grpc_port}",
            options=[("grpc.max_send_message_length", 8 * 1024 * 1024)],
        ) as channel:
            for method in methods:
                payloads = malformed(method, rng)
                payloads += [random_message(method.input_type, rng).SerializeToString()
                             for _ in range(6)]  # fmt: skip
                for payload in payloads:
                    outcomes[(method.full_name, await send(channel, method, payload, admin))] += 1
            # larger than the server takes at all (4 MiB): refused by grpc itself, typed
            oversized = b"\x0a" + varint(5 * 1024 * 1024) + b"x" * (5 * 1024 * 1024)
            first = next(m for m in methods if m.full_name == "hustle.v1.TaskService.GetTask")
            assert await send(channel, first, oversized, admin) == "RESOURCE_EXHAUSTED"

            bad = {key: n for key, n in outcomes.items() if key[1] in ("INTERNAL", "UNKNOWN",
                                                                      "UNAVAILABLE", "DEADLINE_EXCEEDED",
                                                                      "CANCELLED", "DATA_LOSS")}  # fmt: skip
            assert bad == {}, bad
            assert [r["message"] for r in records] == []  # no traceback, no unhandled error
            # and the server is fine afterwards
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            info = await system_pb2_grpc.SystemServiceStub(channel).GetServerInfo(
                system_pb2.GetServerInfoRequest(), timeout=5
            )
            assert info.schema_version
    finally:
        logger.remove(sink)
    assert sum(outcomes.values()) > 500
    assert {code for _, code in outcomes} >= {"INVALID_ARGUMENT", "OK"}


def admin_token(conn: psycopg.Connection[Any]) -> str:
    """A session of a new admin: every handler, admin ones too, is reached."""
    token = secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO sessions (user_id, token_hash, expires_at)"
        " VALUES (%s, %s, now() + interval '1 day')",
        (World(conn).admin(), security.token_hash(token)),
    )
    return token
