"""hustle.v2.SystemService: translation only; the rules live in server.domain.system."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from grpc import aio

from hustle.v2 import system_pb2, system_pb2_grpc
from server.api.v2 import convert
from server.db import Database
from server.domain import system
from server.versions import Notice


class SystemService(system_pb2_grpc.SystemServiceServicer):
    def __init__(
        self,
        db: Database,
        *,
        version: str,
        api_versions: Sequence[str],
        notices: Mapping[str, Notice],
        build_commit: str,
        started_at: datetime,
    ) -> None:
        self._db = db
        self._version = version
        self._api_versions = tuple(api_versions)
        self._notices = dict(notices)
        self._build_commit = build_commit
        self._started_at = started_at

    def _api_version(self, package: str) -> system_pb2.ApiVersion:
        notice = self._notices.get(package)
        if notice is None:
            return system_pb2.ApiVersion(package=package)
        return system_pb2.ApiVersion(
            package=package,
            deprecated_at=convert.timestamp(notice.deprecated_at),
            sunset_at=convert.timestamp(notice.sunset_at),
        )

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
        return system_pb2.GetServerInfoResponse(
            version=info.version,
            api_versions=[self._api_version(p) for p in info.api_versions],
            build_commit=info.build_commit,
            schema_version=info.schema_version,
            started_at=convert.timestamp(info.started_at),
        )
