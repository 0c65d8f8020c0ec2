"""In-app notifications: rows a user lists and marks read (written in the caller's transaction)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg.types.json import Jsonb

from server.db import Database, Rows, Session
from server.domain.records import Notification, NotificationKind

_LIST = Rows("list_notifications", Notification)


async def notify(
    tx: Session,
    user_id: str,
    kind: NotificationKind,
    title: str,
    body: str = "",
    *,
    task_id: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> None:
    await tx.execute(
        "notify",
        user_id=user_id,
        kind=kind,
        title=title,
        body=body,
        task_id=task_id,
        data=Jsonb(dict(data or {})),
    )


async def list_for(
    db: Database, user_id: str, *, unread_only: bool, after: list[str] | None, limit: int
) -> list[Notification]:
    """The user's notifications, newest first, after the keyset position `after`."""
    created, notification = after if after else (None, None)
    return await db.all(
        _LIST,
        user_id=user_id,
        unread_only=unread_only,
        after_created=created,
        after_id=notification,
        limit=limit,
    )
