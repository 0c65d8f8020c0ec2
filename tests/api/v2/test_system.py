"""Both versions in one process: GetServerInfo in each (v2 with each version's dates),
reflection and health for both packages, every v2 RPC served, and v2's access rules enforced as
its own options state them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.message_factory import GetMessageClass
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from hustle.v1 import system_pb2 as v1_system
from hustle.v1 import system_pb2_grpc as v1_system_grpc
from hustle.v2 import system_pb2, system_pb2_grpc
from server.api.v2 import registry
from server.app import SERVICES, HustleServer, Resources
from server.config import Settings
from server.policy import Access, policy_of
from tests.api.v2.conftest import ROOMY
from tests.api.v2.market import V2
from tests.helpers import error_details

S = grpc.StatusCode
V2_METHODS = [
    (service, method) for service in registry.SERVICE_DESCRIPTORS for method in service.methods
]


async def test_server_info_in_both_versions(
    api: V2, v2_channel: aio.Channel, v2_server: HustleServer
) -> None:
    info = await api.system.GetServerInfo(system_pb2.GetServerInfoRequest(), timeout=5)
    assert [v.package for v in info.api_versions] == ["hustle.v1", "hustle.v2"]
    assert not any(
        v.HasField("deprecated_at") or v.HasField("sunset_at") for v in info.api_versions
    )
    assert (
        abs((info.started_at.ToDatetime(tzinfo=UTC) - v2_server.started_at).total_seconds()) < 0.001
    )
    assert info.schema_version
    assert info.build_commit == v2_server.settings.build_commit
    old = await v1_system_grpc.SystemServiceStub(v2_channel).GetServerInfo(
        v1_system.GetServerInfoRequest()
    )
    assert list(old.api_versions) == ["hustle.v1", "hustle.v2"]
    assert (old.version, old.schema_version) == (info.version, info.schema_version)


@pytest.fixture
async def dated(settings: Settings, resources: Resources) -> AsyncIterator[aio.Channel]:
    """A server whose v1 is deprecated, with a sunset date."""
    update = {**ROOMY, "v1_deprecated_at": datetime(2027, 1, 1, tzinfo=UTC),
              "v1_sunset_at": datetime(2027, 12, 31, 23, 59, 59, tzinfo=UTC)}  # fmt: skip
    server = HustleServer(settings.model_copy(update=update), resources)
    await server.start()
    try:
        async with aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            yield channel
    finally:
        await server.stop(grace=0)


async def test_server_info_tells_each_versions_dates(dated: aio.Channel) -> None:
    call = system_pb2_grpc.SystemServiceStub(dated).GetServerInfo(
        system_pb2.GetServerInfoRequest(), timeout=5
    )
    v1, v2 = (await call).api_versions
    assert v1.deprecated_at.ToDatetime(tzinfo=UTC) == datetime(2027, 1, 1, tzinfo=UTC)
    assert v1.sunset_at.ToDatetime(tzinfo=UTC) == datetime(2027, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert (v2.package, v2.HasField("deprecated_at"), v2.HasField("sunset_at")) == (
        "hustle.v2",
        False,
        False,
    )
    assert "deprecation" not in dict(await call.initial_metadata() or ())  # v2 is not deprecated


async def test_reflection_and_health_serve_both_versions(v2_channel: aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(v2_channel)
    asks = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="hustle.v2.TaskService.UpdateTask"
        ),
    ]
    listing, described = [r async for r in stub.ServerReflectionInfo(iter(asks), timeout=5)]
    names = {s.name for s in listing.list_services_response.service}
    assert set(SERVICES) <= names  # both versions' (v2 has services v1 lacks)
    assert {f"hustle.v2.{s.name}" for s in registry.SERVICE_DESCRIPTORS} <= names
    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in described.file_descriptor_response.file_descriptor_proto]  # fmt: skip
    task = next(f for f in files if f.name == "hustle/v2/task.proto")
    assert "UpdateTask" in [m.name for m in task.service[0].method]
    health = health_pb2_grpc.HealthStub(v2_channel)
    for service in ("hustle.v1.TaskService", "hustle.v2.TaskService"):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def call(
    channel: aio.Channel, service: Any, method: Any, metadata: Any = ()
) -> aio.AioRpcError | None:
    """An empty request to a v2 method through the channel; the error it got, if any."""
    request, response = GetMessageClass(method.input_type), GetMessageClass(method.output_type)
    path = f"/{service.full_name}/{method.name}"
    if method.server_streaming:
        # a watch stream: refused at once (access, validation), or open and answering; an open
        # stream may stay quiet until its first heartbeat, so a second of silence counts as open
        stream = channel.unary_stream(path, request_serializer=request.SerializeToString,
                                      response_deserializer=response.FromString)(
            request(), metadata=metadata, timeout=10)  # fmt: skip
        try:
            await asyncio.wait_for(stream.read(), timeout=2)
        except TimeoutError:
            pass
        except aio.AioRpcError as error:
            return error
        finally:
            stream.cancel()
        return None
    rpc = channel.unary_unary(path, request_serializer=request.SerializeToString,
                              response_deserializer=response.FromString)  # fmt: skip
    try:
        await rpc(request(), metadata=metadata, timeout=10)
    except aio.AioRpcError as error:
        return error
    return None


async def test_every_v2_rpc_is_served_with_the_access_its_contract_states(
    api: V2, v2_channel: aio.Channel
) -> None:
    # v1's 40; NotificationService 6, MessageService 7, RatingService 3, AdminService 8,
    # DisputeService.GetMyDispute, and the three watch streams
    assert len(V2_METHODS) == 68
    user = api.poster()
    for service, method in V2_METHODS:
        access = policy_of(method).access
        anonymous = await call(v2_channel, service, method)
        if access is Access.PUBLIC:
            assert anonymous is None or anonymous.code() != S.UNIMPLEMENTED, method.full_name
            continue
        assert anonymous is not None, method.full_name
        assert (anonymous.code(), error_details(anonymous)["ErrorInfo"].reason) == (
            S.UNAUTHENTICATED, "HX401"), method.full_name  # fmt: skip
        if access is Access.ADMIN:
            refused = await call(v2_channel, service, method, user.auth)
            assert refused is not None, method.full_name
            assert error_details(refused)["ErrorInfo"].reason == "HX202", method.full_name


async def test_an_empty_request_to_any_v2_rpc_gets_a_typed_answer(
    api: V2, v2_channel: aio.Channel
) -> None:
    """Signed in (as an admin where the RPC needs one), each RPC with nothing set answers OK or a
    typed error: never INTERNAL, UNKNOWN or UNIMPLEMENTED."""
    untyped = {S.INTERNAL, S.UNKNOWN, S.UNIMPLEMENTED}
    for service, method in V2_METHODS:
        who = api.admin() if policy_of(method).access is Access.ADMIN else api.poster()
        error = await call(v2_channel, service, method, who.auth)  # a session of its own each
        if error is not None:
            assert error.code() not in untyped, (method.full_name, error)
            assert error_details(error)["ErrorInfo"].reason, method.full_name
