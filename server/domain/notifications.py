"""In-app notifications: rows a user lists and marks read (written in the caller's transaction)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg.types.json import Jsonb

from server.db import Session

KINDS = frozenset(
    {
        "TASK_ACCEPTED",
        "TASK_CANCELLED",
        "TASK_EXPIRED",
        "PROOF_SUBMITTED",
        "PROOF_ACCEPTED",
        "PROOF_REJECTED",
        "DISPUTE_OPENED",
        "DISPUTE_RESOLVED",
        "ESCROW_FUNDED",
        "ESCROW_RELEASED",
        "ESCROW_REFUNDED",
        "XP_EARNED",
        "LEVEL_UP",
        "TRUST_TIER_CHANGED",
        "VERIFICATION_APPROVED",
        "VERIFICATION_REJECTED",
        "VERIFICATION_EXPIRED",
    }
)


async def notify(
    tx: Session,
    user_id: object,
    kind: str,
    title: str,
    body: str = "",
    *,
    task_id: object = None,
    data: Mapping[str, Any] | None = None,
) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    await tx.execute(
        "notify",
        user_id=user_id,
        kind=kind,
        title=title,
        body=body,
        task_id=task_id,
        data=Jsonb(dict(data or {})),
    )
