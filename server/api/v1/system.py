"""hustle.v1.SystemService: translation only; the rules live in server.domain.system."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio

from hustle.v1 import system_pb2, system_pb2_grpc
from server.db import Database
from server.domain import system


class SystemService(system_pb2_grpc.SystemServiceServicer):
    def __init__(
        self,
        db: Database,
        *,
        version: str,
        api_versions: Sequence[str],
        build_commit: str,
        started_at: datetime,
    ) -> None:
        self._db = db
        self._version = version
        self._api_versions = tuple(api_versions)
        self._build_commit = build_commit
        self._started_at = started_at

    async def GetServerInfo(
        self,
        request: system_pb2.GetServerInfoRequest,
        context: aio.ServicerContext[Any, Any],
    ) -> system_pb2.GetServerInfoResponse:
        info = await system.server_info(
            self._db,
            version=self._version,
            api_versions=self._api_versions,
            build_commit=self._build_commit,
            started_at=self._started_at,
        )
        started_at = Timestamp()
        started_at.FromDatetime(info.started_at)
        return system_pb2.GetServerInfoResponse(
            version=info.version,
            api_versions=list(info.api_versions),
            build_commit=info.build_commit,
            schema_version=info.schema_version,
            started_at=started_at,
        )
