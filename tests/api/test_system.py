"""SystemService and reflection, through a real channel with the generated stub."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
from google.protobuf import descriptor_pb2
from grpc import aio
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from hustle.v1 import system_pb2, system_pb2_grpc
from server import migrate
from server.app import HustleServer


def newest_migration() -> str:
    return max(
        p.stem for p in migrate.MIGRATIONS_DIR.glob("*.sql") if not p.stem.endswith(".rollback")
    )


async def test_get_server_info(channel: aio.Channel, server: HustleServer) -> None:
    stub = system_pb2_grpc.SystemServiceStub(channel)
    info = await stub.GetServerInfo(system_pb2.GetServerInfoRequest(), timeout=5)
    assert info.version == "0.1.0"
    assert list(info.api_versions) == ["hustle.v1", "hustle.v2"]  # one process serves both
    assert info.build_commit == server.settings.build_commit
    assert info.schema_version == newest_migration()
    started = info.started_at.ToDatetime(tzinfo=UTC)
    assert abs((started - server.started_at).total_seconds()) < 0.001
    assert started <= datetime.now(UTC)


async def test_reflection_lists_the_services(channel: aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def ask() -> list[str]:
        call = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names: list[str] = []
        async for response in call:
            names.extend(s.name for s in response.list_services_response.service)
        return names

    names = await ask()
    assert "hustle.v1.SystemService" in names
    assert "grpc.health.v1.Health" in names


async def test_reflection_describes_a_method(channel: aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(
        iter(
            [
                reflection_pb2.ServerReflectionRequest(
                    file_containing_symbol="hustle.v1.SystemService"
                )
            ]
        ),
        timeout=5,
    )
    blobs = [b async for r in call for b in r.file_descriptor_response.file_descriptor_proto]
    files = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in blobs]
    system = next(f for f in files if f.name == "hustle/v1/system.proto")
    assert [m.name for m in system.service[0].method] == ["GetServerInfo"]


async def test_reflection_finds_the_file_of_a_method(channel: aio.Channel) -> None:
    """ghz asks for `pkg.Service.Method`; the upb descriptor pool alone does not know methods."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    symbols = ["hustle.v1.FeedService.GetFeed", "hustle.v1.FeedService.NoSuchMethod"]
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(file_containing_symbol=s) for s in symbols]),
        timeout=5,
    )
    found, missing = [r async for r in call]
    names = [
        descriptor_pb2.FileDescriptorProto.FromString(b).name
        for b in found.file_descriptor_response.file_descriptor_proto
    ]
    assert "hustle/v1/feed.proto" in names
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
