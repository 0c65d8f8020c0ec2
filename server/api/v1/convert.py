"""Rows → messages, shared by the v1 servicers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from hustle.v1 import auth_pb2, common_pb2, dispute_pb2, task_pb2, user_pb2
from server.domain.auth import Grant

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MODES = {"POSTER": user_pb2.USER_MODE_POSTER, "WORKER": user_pb2.USER_MODE_WORKER}
MODE_NAMES = {value: name for name, value in MODES.items()}


def timestamp(value: datetime | None) -> Timestamp | None:
    """An aware datetime as a Timestamp (what `Timestamp.FromDatetime` does, at half the cost:
    a feed page converts some 150 of them)."""
    if value is None:
        return None
    since = value - EPOCH  # exact (a float timestamp can round 0.9999995 s up to the next second)
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000)


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


TASK_STATES = {
    name: getattr(task_pb2, f"TASK_STATE_{name}")
    for name in (
        "OPEN",
        "ACCEPTED",
        "PROOF_SUBMITTED",
        "DISPUTED",
        "COMPLETED",
        "CANCELLED",
        "EXPIRED",
    )
}
ESCROW_STATES = {
    name: getattr(task_pb2, f"ESCROW_STATE_{name}")
    for name in ("PENDING", "FUNDED", "LOCKED_DISPUTE", "RELEASED", "REFUNDED", "REFUND_PARTIAL")
}
RESOLUTIONS = {
    "RELEASE": dispute_pb2.DISPUTE_RESOLUTION_RELEASE,
    "REFUND": dispute_pb2.DISPUTE_RESOLUTION_REFUND,
    "SPLIT": dispute_pb2.DISPUTE_RESOLUTION_SPLIT,
}
RESOLUTION_NAMES = {value: name for name, value in RESOLUTIONS.items()}


def task(row: dict[str, Any]) -> task_pb2.Task:
    return task_pb2.Task(
        task_id=str(row["id"]),
        poster_id=str(row["poster_id"]),
        worker_id=str(row["worker_id"] or ""),
        title=row["title"],
        description=row["description"],
        category=row["category"],
        price=common_pb2.Money(amount_cents=row["price_cents"], currency=row["currency"]),
        address=row["address"],
        location_state=row["location_state"],
        location=common_pb2.LatLng(latitude=row["latitude"], longitude=row["longitude"]),
        urgent=row["urgent"],
        deadline=timestamp(row["deadline"]),
        requirements=task_pb2.TaskRequirements(
            required_trade=row["required_trade"] or "",
            required_trust_tier=row["required_trust_tier"],
            insurance_required=row["insurance_required"],
            background_check_required=row["background_check_required"],
        ),
        state=TASK_STATES[row["state"]],
        escrow_state=ESCROW_STATES[row["escrow_state"]],
        created_at=timestamp(row["created_at"]),
        funded_at=timestamp(row["funded_at"]),
        accepted_at=timestamp(row["accepted_at"]),
        proof_submitted_at=timestamp(row["proof_submitted_at"]),
        closed_at=timestamp(row["closed_at"]),
        eligible=bool(row.get("eligible", False)),
    )


def proof(row: dict[str, Any]) -> task_pb2.Proof:
    return task_pb2.Proof(
        proof_id=str(row["id"]),
        note=row["note"],
        photo_upload_ids=[str(p) for p in row["photos"]],
        state=row["state"],
        rejection_reason=row["rejection_reason"] or "",
        created_at=timestamp(row["created_at"]),
    )


def dispute(row: dict[str, Any], currency: str = "USD") -> dispute_pb2.Dispute:
    split = row["split_release_cents"]
    return dispute_pb2.Dispute(
        dispute_id=str(row["id"]),
        task_id=str(row["task_id"]),
        opened_by=str(row["opened_by"]),
        reason=row["reason"],
        state=row["state"],
        resolution=RESOLUTIONS.get(
            row["resolution"] or "", dispute_pb2.DISPUTE_RESOLUTION_UNSPECIFIED
        ),
        split_release=common_pb2.Money(amount_cents=split, currency=currency) if split else None,
        resolution_note=row["resolution_note"] or "",
        created_at=timestamp(row["created_at"]),
        resolved_at=timestamp(row["resolved_at"]),
    )
