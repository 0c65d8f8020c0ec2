"""Profiles: the caller's own account and other users' public ones."""

from __future__ import annotations

from typing import Any

from server import outbox
from server.db import Database
from server.errors import HxError


async def get(db: Database, user_id: str) -> dict[str, Any]:
    user = await db.one("get_user", user_id=user_id)
    if user is None:
        raise HxError("HX302", "No such user.")
    return user


async def update_profile(
    db: Database,
    user_id: str,
    *,
    full_name: str | None,
    default_mode: str | None,
    location_state: str | None,
) -> dict[str, Any]:
    async with db.transaction() as tx:
        user = await tx.one(
            "update_profile",
            user_id=user_id,
            full_name=full_name,
            default_mode=default_mode,
            location_state=location_state,
        )
        if user is None:
            raise HxError("HX302", "No such user.")
        if location_state is not None:
            # the capability profile is derived from the user row too
            await outbox.enqueue(tx, "capability.recompute", {"user_id": user_id})
    return user


async def set_avatar(db: Database, user_id: str, upload_id: str) -> dict[str, Any]:
    """The database checks it is the user's own READY AVATAR upload (HX202, HX304, HX301)."""
    async with db.transaction() as tx:
        await tx.execute("set_avatar", user_id=user_id, upload_id=upload_id)
        user = await tx.one("get_user", user_id=user_id)
    assert user is not None
    return user
