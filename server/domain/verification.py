"""Verification documents: users submit, admins review; approved credentials expire.

(The database checks each document is the user's READY VERIFICATION_DOC upload, refuses a
reviewer who is not an admin or reviews their own, and queues the user's capability recompute
on every state change.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from loguru import logger

from server.db import Database, Rows, Session
from server.domain import notifications
from server.domain.notifications import notify
from server.domain.records import (
    NotificationKind,
    Verification,
    VerificationKind,
    VerificationState,
)
from server.errors import HxError

KIND_LABELS = {
    VerificationKind.TRADE_LICENSE: "{trade} licence",
    VerificationKind.INSURANCE: "insurance",
    VerificationKind.BACKGROUND_CHECK: "background check",
    VerificationKind.ID: "ID",
}


@dataclass(frozen=True, slots=True)
class _Subject:
    """A record with its user's name and address (whom a state change is told to)."""

    id: str
    user_id: str
    kind: VerificationKind
    trade: str | None
    state: VerificationState
    expires_at: datetime | None
    reviewed_by: str | None
    email: str
    full_name: str


_EXPIRE = Rows("expire_due_verifications", _Subject)
_LOCK = Rows("lock_verification", _Subject)
_CARD = Rows("verification_card", Verification)
_MINE = Rows("my_verifications", Verification)
_PENDING = Rows("pending_verifications", Verification)


def kind_label(kind: VerificationKind, trade: str | None) -> str:
    return KIND_LABELS[kind].format(trade=(trade or "trade").replace("_", " "))


async def _card(tx: Session, record_id: str) -> Verification:
    card = await tx.one(_CARD, id=record_id)
    assert card is not None
    return card


async def expire_due(db: Database, batch: int = 500) -> int:
    """Expire approved credentials past their expiry; tell each user in the app and by email.
    Returns how many expired."""
    async with db.transaction() as tx:
        expired = await tx.all(_EXPIRE, batch=batch)
        for record in expired:
            label = kind_label(record.kind, record.trade)
            expires_on = record.expires_at.date().isoformat() if record.expires_at else ""
            await _tell(
                tx,
                record,
                VerificationState.EXPIRED,
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
    kind: VerificationKind,
    trade: str | None,
    expires_at: datetime | None,
    documents: list[str],
) -> Verification:
    """A verification for review."""
    async with db.transaction() as tx:
        record_id = await tx.scalar(
            "insert_verification",
            str,
            user_id=user_id,
            kind=kind,
            trade=trade,
            expires_at=expires_at,
        )
        assert record_id is not None
        for position, upload_id in enumerate(documents, start=1):
            await tx.execute(
                "insert_verification_document",
                verification_id=record_id,
                position=position,
                upload_id=upload_id,
            )
        return await _card(tx, record_id)


async def mine(
    db: Database, user_id: str, after: list[str] | None = None, limit: int | None = None
) -> list[Verification]:
    """The user's verifications, newest first (after the keyset position `after`, at most
    `limit`; all by default)."""
    submitted, record = after if after else (None, None)
    return await db.all(
        _MINE, user_id=user_id, after_submitted=submitted, after_id=record, limit=limit
    )


async def pending(
    db: Database,
    after: list[str] | None,
    limit: int,
    kinds: Sequence[VerificationKind] = (),
) -> list[Verification]:
    """The review queue, oldest first, after the keyset position `after`; only the kinds in
    `kinds` when it names any."""
    submitted, record = after if after else (None, None)
    return await db.all(
        _PENDING,
        kinds=[k.value for k in kinds] or None,
        after_submitted=submitted,
        after_id=record,
        limit=limit,
    )


async def review(
    db: Database, admin_id: str, record_id: str, approve: bool, reason: str
) -> Verification:
    """Approve or reject; the user is told in the app and by email. The same review again by
    the same admin is done already (a retry)."""
    state = VerificationState.APPROVED if approve else VerificationState.REJECTED
    async with db.transaction() as tx:
        record = await tx.one(_LOCK, id=record_id)
        if record is None:
            raise HxError("HX302", "No such verification.")
        if record.state is not VerificationState.PENDING:
            if (record.state, record.reviewed_by) == (state, admin_id):
                return await _card(tx, record_id)
            raise HxError("HX003", f"This verification was already {record.state}.")
        await tx.execute(
            "review_verification",
            id=record_id,
            state=state,
            admin_id=admin_id,
            reason=None if approve else reason,
        )
        label = kind_label(record.kind, record.trade)
        expires_on = record.expires_at.date().isoformat() if record.expires_at else ""
        title = f"Your {label} was {'approved' if approve else 'not approved'}"
        await _tell(
            tx, record, state, label, expires_on, title, "" if approve else reason, reason=reason
        )
        return await _card(tx, record_id)


async def _tell(
    tx: Session,
    record: _Subject,
    state: VerificationState,
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
        record.user_id,
        NotificationKind(f"VERIFICATION_{state}"),
        title,
        body,
        data={"verification_id": record.id},
    )
    await notifications.enqueue_for(
        tx,
        record.user_id,
        NotificationKind(f"VERIFICATION_{state}"),
        notifications.NotificationChannel.EMAIL,
        "email.send",
        {
            "template": "verification_status",
            "to": record.email,
            "params": {
                "name": record.full_name,
                "state": state.value,
                "kind_label": label,
                "expires_on": expires_on,
                "reason": reason,
            },
        },
    )
