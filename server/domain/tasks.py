"""Tasks: posting, funding, accepting, cancelling, reading; and expiry of open tasks.

Every change is one transaction that also writes the in-app notifications it causes; feed
caches are told after it commits (a task entering or leaving OPEN). The database's triggers
check every transition again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from loguru import logger

from server.cache import FeedCache
from server.caller import Caller
from server.db import Database, Session
from server.domain.notifications import notify
from server.errors import HxError


def money(cents: int, currency: str = "USD") -> str:
    return f"${cents / 100:,.2f}" if currency == "USD" else f"{cents / 100:,.2f} {currency}"


@dataclass(frozen=True, slots=True)
class TaskDraft:
    title: str
    description: str
    category: str
    price_cents: int
    currency: str
    address: str
    location_state: str
    latitude: float
    longitude: float
    urgent: bool
    deadline: datetime
    required_trade: str | None
    required_trust_tier: int
    insurance_required: bool
    background_check_required: bool


@dataclass(frozen=True, slots=True)
class TaskChanges:
    title: str | None = None
    description: str | None = None
    address: str | None = None
    location_state: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    urgent: bool | None = None
    deadline: datetime | None = None


async def lock(tx: Session, task_id: str) -> dict[str, Any]:
    task = await tx.one("lock_task", task_id=task_id)
    if task is None:
        raise HxError("HX302", "No such task.")
    return task


def require_poster(task: dict[str, Any], user_id: str) -> None:
    if str(task["poster_id"]) != user_id:
        raise HxError("HX202", "Only the task's poster may do this.")


async def card(tx: Session, task_id: str) -> dict[str, Any]:
    row = await tx.one("task_card", task_id=task_id)
    assert row is not None
    return row


async def create(db: Database, poster_id: str, draft: TaskDraft) -> dict[str, Any]:
    async with db.transaction() as tx:
        task_id = await tx.scalar("create_task", poster_id=poster_id, **asdict(draft))
        await tx.execute("create_escrow", task_id=task_id)
        return await card(tx, str(task_id))


async def update(
    db: Database, cache: FeedCache, user_id: str, task_id: str, changes: TaskChanges
) -> dict[str, Any]:
    async with db.transaction() as tx:
        task = await lock(tx, task_id)
        require_poster(task, user_id)
        if task["state"] != "OPEN":
            raise HxError("HX003", "A task can be edited only while it is OPEN.")
        await tx.execute("update_task", task_id=task_id, **asdict(changes))
        updated = await card(tx, task_id)
        tx.on_commit(lambda: cache.task_moved(task["location_state"], updated["location_state"]))
        return updated


async def fund(
    db: Database, cache: FeedCache, user_id: str, task_id: str, payment_reference: str
) -> dict[str, Any]:
    async with db.transaction() as tx:
        task = await lock(tx, task_id)
        require_poster(task, user_id)
        funded = await tx.one("fund_escrow", task_id=task_id, payment_reference=payment_reference)
        if funded is None:
            raise HxError("HX003", "This task's escrow is already funded.")
        await notify(
            tx,
            user_id,
            "ESCROW_FUNDED",
            f"{money(funded['amount_cents'], funded['currency'])} held",
            f"“{task['title']}” is now in workers' feeds.",
            task_id=task_id,
        )
        tx.on_commit(lambda: cache.task_moved(task["location_state"]))
        return await card(tx, task_id)


async def accept(db: Database, cache: FeedCache, worker_id: str, task_id: str) -> dict[str, Any]:
    """Take the task, if the worker is eligible and nobody was faster (one statement)."""
    async with db.transaction() as tx:
        taken = await tx.one("accept_task", task_id=task_id, worker_id=worker_id)
        if taken is None:
            raise await _why_not_accepted(tx, task_id, worker_id)
        await notify(
            tx,
            taken["poster_id"],
            "TASK_ACCEPTED",
            f"“{taken['title']}” was accepted",
            "A worker took your task.",
            task_id=task_id,
        )
        tx.on_commit(lambda: cache.task_moved(taken["location_state"]))
        return await card(tx, task_id)


async def _why_not_accepted(tx: Session, task_id: str, worker_id: str) -> HxError:
    why = await tx.one("why_not_accepted", task_id=task_id, worker_id=worker_id)
    if why is None:
        return HxError("HX302", "No such task.")
    if why["state"] != "OPEN" or why["worker_id"] is not None:
        return HxError("HX203", "Someone else took this task first.")
    if why["own"]:
        return HxError("HX008", "You cannot take your own task.")
    if not why["funded"]:
        return HxError("HX204", "This task is not funded yet.")
    return HxError("HX201", f"You are not eligible: {why['reason'] or 'requirements not met'}.")


async def cancel(
    db: Database, cache: FeedCache, who: Caller, task_id: str, reason: str
) -> dict[str, Any]:
    async with db.transaction() as tx:
        task = await lock(tx, task_id)
        if not who.is_admin:
            require_poster(task, who.user_id)
        if task["state"] not in ("OPEN", "ACCEPTED"):
            raise HxError(
                "HX001" if task["state"] in ("COMPLETED", "CANCELLED", "EXPIRED") else "HX003",
                f"A {task['state']} task cannot be cancelled.",
            )
        await tx.execute(
            "set_task_state",
            task_id=task_id,
            state="CANCELLED",
            cancel_reason=reason or "Cancelled.",
        )
        escrow = await tx.one("escrow_state", task_id=task_id)
        assert escrow is not None
        if escrow["state"] == "FUNDED":
            await tx.execute("set_escrow_state", task_id=task_id, state="REFUNDED")
            await notify(
                tx,
                task["poster_id"],
                "ESCROW_REFUNDED",
                f"{money(escrow['amount_cents'], escrow['currency'])} refunded",
                f"The payment for “{task['title']}” was refunded.",
                task_id=task_id,
            )
        if task["worker_id"] is not None:
            await notify(
                tx,
                task["worker_id"],
                "TASK_CANCELLED",
                f"“{task['title']}” was cancelled",
                reason or "The poster cancelled the task.",
                task_id=task_id,
            )
        if task["state"] == "OPEN":
            tx.on_commit(lambda: cache.task_moved(task["location_state"]))
        return await card(tx, task_id)


async def get(db: Database, who: Caller, task_id: str) -> dict[str, Any]:
    """A task with `eligible` for the caller. OPEN tasks are public; others are their
    participants' (and admins')."""
    row = await db.one("task_card_for", task_id=task_id, user_id=who.user_id)
    if row is None:
        raise HxError("HX302", "No such task.")
    participant = who.user_id in (str(row["poster_id"]), str(row["worker_id"]))
    if row["state"] != "OPEN" and not participant and not who.is_admin:
        raise HxError("HX202", "This task is not yours.")
    return row


async def list_mine(
    db: Database, query: str, user_id: str, after: list[Any] | None, limit: int
) -> list[dict[str, Any]]:
    after_created, after_id = (after[0], after[1]) if after else (None, None)
    return await db.all(
        query, user_id=user_id, after_created=after_created, after_id=after_id, limit=limit
    )


async def expire_due(db: Database, cache: FeedCache, batch: int = 500) -> int:
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
                await notify(
                    tx,
                    task["poster_id"],
                    "ESCROW_REFUNDED",
                    f"{money(refund['amount_cents'], refund['currency'])} refunded",
                    f"The payment for “{task['title']}” was refunded.",
                    task_id=task["id"],
                )
        states = {t["location_state"] for t in expired}
        tx.on_commit(lambda: cache.task_moved(*states))
    logger.bind(expired=len(expired), refunded=len(refunds)).info("tasks expired")
    return len(expired)
