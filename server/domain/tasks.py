"""Task rules that run outside a call: expiry of open tasks past their deadline."""

from __future__ import annotations

from loguru import logger

from server.db import Database
from server.domain.notifications import notify


def money(cents: int, currency: str = "USD") -> str:
    return f"${cents / 100:,.2f}" if currency == "USD" else f"{cents / 100:,.2f} {currency}"


async def expire_due(db: Database, batch: int = 500) -> int:
    """Expire OPEN tasks past their deadline, refund their funded escrows, tell the posters.
    Returns how many tasks expired (call again while it returns `batch`)."""
    async with db.transaction() as tx:
        expired = await tx.all("expire_due_tasks", batch=batch)
        if not expired:
            return 0
        refunds = {
            r["task_id"]: r
            for r in await tx.all("refund_funded_escrows", task_ids=[t["id"] for t in expired])
        }
        for task in expired:
            await notify(
                tx,
                task["poster_id"],
                "TASK_EXPIRED",
                f"“{task['title']}” expired",
                "Nobody took it before its deadline.",
                task_id=task["id"],
            )
            refund = refunds.get(task["id"])
            if refund is not None:
                amount = money(refund["amount_cents"], refund["currency"])
                await notify(
                    tx,
                    task["poster_id"],
                    "ESCROW_REFUNDED",
                    f"{amount} refunded",
                    f"The payment for “{task['title']}” was refunded.",
                    task_id=task["id"],
                )
    logger.bind(expired=len(expired), refunded=len(refunds)).info("tasks expired")
    return len(expired)
