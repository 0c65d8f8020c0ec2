"""What the server says about itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from server.db import Database, Rows, Session


@dataclass(frozen=True, slots=True)
class ServerInfo:
    version: str
    api_versions: tuple[str, ...]
    build_commit: str
    schema_version: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule of sql/audit.sql and how many rows break it."""

    rule: str
    violations: int


_AUDIT = Rows("audit", Finding)


async def audit(session: Session) -> list[Finding]:
    """Every invariant checked over whole tables (`python -m server audit`, and the seed)."""
    return await session.all(_AUDIT)


async def server_info(
    db: Database,
    *,
    version: str,
    api_versions: Sequence[str],
    build_commit: str,
    started_at: datetime,
) -> ServerInfo:
    schema_version = await db.scalar("schema_version", str)
    return ServerInfo(
        version=version,
        api_versions=tuple(api_versions),
        build_commit=build_commit,
        schema_version=schema_version or "",
        started_at=started_at,
    )
