"""Rows → messages, shared by the v1 servicers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from hustle.v1 import auth_pb2, user_pb2
from server.domain.auth import Grant

MODES = {"POSTER": user_pb2.USER_MODE_POSTER, "WORKER": user_pb2.USER_MODE_WORKER}
MODE_NAMES = {value: name for name, value in MODES.items()}


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def session(grant: Grant) -> auth_pb2.Session:
    return auth_pb2.Session(
        session_id=grant.session_id,
        access_token=grant.token,
        expires_at=timestamp(grant.expires_at),
    )


def me(row: dict[str, Any]) -> user_pb2.Me:
    return user_pb2.Me(
        user_id=str(row["id"]),
        email=row["email"],
        email_verified=row["email_verified_at"] is not None,
        phone_number=(row["phone"] or "") if row["phone_verified_at"] else "",
        phone_verified=row["phone_verified_at"] is not None,
        full_name=row["full_name"],
        default_mode=MODES[row["default_mode"]],
        trust_tier=row["trust_tier"],
        xp_total=row["xp_total"],
        level=row["level"],
        location_state=(row["location_state"] or "").strip(),
        is_admin=row["is_admin"],
        created_at=timestamp(row["created_at"]),
        avatar_upload_id=str(row["avatar_upload_id"] or ""),
    )


def public_user(row: dict[str, Any]) -> user_pb2.PublicUser:
    return user_pb2.PublicUser(
        user_id=str(row["id"]),
        full_name=row["full_name"],
        avatar_upload_id=str(row["avatar_upload_id"] or ""),
        trust_tier=row["trust_tier"],
        xp_total=row["xp_total"],
        level=row["level"],
    )
