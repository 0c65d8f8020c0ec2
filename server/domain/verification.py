"""Verification rules that run outside a call: expiry of approved credentials."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from loguru import logger

from server import outbox
from server.db import Database, Session
from server.domain.notifications import notify
from server.errors import HxError

KIND_LABELS = {
    "TRADE_LICENSE": "{trade} licence",
    "INSURANCE": "insurance",
    "BACKGROUND_CHECK": "background check",
    "ID": "ID",
}


def kind_label(kind: str, trade: str | None) -> str:
    return KIND_LABELS[kind].format(trade=(trade or "trade").replace("_", " "))


async def expire_due(db: Database, batch: int = 500) -> int:
    """Expire approved credentials past their expiry; tell each user in the app and by email.
    (The database queues each user's capability recompute.) Returns how many expired."""
    async with db.transaction() as tx:
        expired = await tx.all("expire_due_verifications", batch=batch)
        for record in expired:
            label = kind_label(record["kind"], record["trade"])
            expires_on = record["expires_at"].date().isoformat()
            await _tell(
                tx,
                record,
                "EXPIRED",
                label,
                expires_on,
                f"Your {label} has expired",
                f"It expired on {expires_on}.",
                reason="",
            )
    if expired:
        logger.bind(expired=len(expired)).info("verifications expired")
    return len(expired)


async def submit(
    db: Database,
    user_id: str,
    kind: str,
    trade: str | None,
    expires_at: datetime | None,
    documents: list[str],
) -> dict[str, Any]:
    """A verification for review (the database checks each document is the user's READY
    VERIFICATION_DOC upload, and queues the user's capability recompute)."""
    async with db.transaction() as tx:
        record_id = await tx.scalar(
            "insert_verification", user_id=user_id, kind=kind, trade=trade, expires_at=expires_at
        )
        for position, upload_id in enumerate(documents, start=1):
            await tx.execute(
                "insert_verification_document",
                verification_id=record_id,
                position=position,
                upload_id=upload_id,
            )
        card = await tx.one("verification_card", id=record_id)
    assert card is not None
    return card


async def mine(db: Database, user_id: str) -> list[dict[str, Any]]:
    return await db.all("my_verifications", user_id=user_id)


async def pending(db: Database, after: list[Any] | None, limit: int) -> list[dict[str, Any]]:
    after_submitted, after_id = (after[0], after[1]) if after else (None, None)
    return await db.all(
        "pending_verifications", after_submitted=after_submitted, after_id=after_id, limit=limit
    )


async def review(
    db: Database, admin_id: str, record_id: str, approve: bool, reason: str
) -> dict[str, Any]:
    """Approve or reject; the user is told in the app and by email. (The database refuses a
    reviewer who is not an admin or reviews their own, and queues the capability recompute.)"""
    async with db.transaction() as tx:
        record = await tx.one("lock_verification", id=record_id)
        if record is None:
            raise HxError("HX302", "No such verification.")
        if record["state"] != "PENDING":
            raise HxError("HX003", f"This verification was already {record['state']}.")
        state = "APPROVED" if approve else "REJECTED"
        await tx.execute(
            "review_verification",
            id=record_id,
            state=state,
            admin_id=admin_id,
            reason=None if approve else reason,
        )
        label = kind_label(record["kind"], record["trade"])
        expires_on = record["expires_at"].date().isoformat() if record["expires_at"] else ""
        title = f"Your {label} was {'approved' if approve else 'not approved'}"
        await _tell(
            tx, record, state, label, expires_on, title, "" if approve else reason, reason=reason
        )
        card = await tx.one("verification_card", id=record_id)
    assert card is not None
    return card


async def _tell(
    tx: Session,
    record: Mapping[str, Any],
    state: str,
    label: str,
    expires_on: str,
    title: str,
    body: str,
    *,
    reason: str,
) -> None:
    """A verification's new state, to its user: in the app (`title`, `body`) and by email."""
    await notify(
        tx,
        record["user_id"],
        f"VERIFICATION_{state}",
        title,
        body,
        data={"verification_id": str(record["id"])},
    )
    await outbox.enqueue(
        tx,
        "email.send",
        {
            "template": "verification_status",
            "to": record["email"],
            "params": {
                "name": record["full_name"],
                "state": state,
                "kind_label": label,
                "expires_on": expires_on,
                "reason": reason,
            },
        },
    )
