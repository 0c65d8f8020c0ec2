"""Profiles: the caller's own account and other users' public ones."""

from __future__ import annotations

from server import outbox
from server.db import Database, Rows
from server.domain.records import User, UserMode
from server.errors import HxError

USER = Rows("get_user", User)
_UPDATE = Rows("update_profile", User)


async def get(db: Database, user_id: str) -> User:
    user = await db.one(USER, user_id=user_id)
    if user is None:
        raise HxError("HX302", "No such user.")
    return user


async def update_profile(
    db: Database,
    user_id: str,
    *,
    full_name: str | None,
    default_mode: UserMode | None,
    location_state: str | None,
) -> User:
    """Change the fields given (None: unchanged)."""
    async with db.transaction() as tx:
        user = await tx.one(
            _UPDATE,
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


async def set_avatar(db: Database, user_id: str, upload_id: str) -> User:
    """The database checks it is the user's own READY AVATAR upload (HX202, HX304, HX301)."""
    async with db.transaction() as tx:
        await tx.execute("set_avatar", user_id=user_id, upload_id=upload_id)
        user = await tx.one(USER, user_id=user_id)
    assert user is not None
    return user
