"""Verification rules that run outside a call: expiry of approved credentials."""

from __future__ import annotations

from loguru import logger

from server import outbox
from server.db import Database
from server.domain.notifications import notify

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
            await notify(
                tx,
                record["user_id"],
                "VERIFICATION_EXPIRED",
                f"Your {label} has expired",
                f"It expired on {expires_on}.",
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
                        "state": "EXPIRED",
                        "kind_label": label,
                        "expires_on": expires_on,
                        "reason": "",
                    },
                },
            )
    if expired:
        logger.bind(expired=len(expired)).info("verifications expired")
    return len(expired)
