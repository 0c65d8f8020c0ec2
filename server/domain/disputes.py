"""Disputes: opened by the poster or the worker on submitted proof, resolved by an admin.
Both parties are told in the app and by email (through the outbox)."""

from __future__ import annotations

from typing import Any

from server import outbox
from server.caller import Caller
from server.db import Database, Session
from server.domain import proofs, tasks
from server.domain.notifications import notify
from server.errors import HxError


async def _email_parties(
    tx: Session, task: dict[str, Any], template: str, params: dict[str, Any]
) -> None:
    for user_id in (task["poster_id"], task["worker_id"]):
        party = await tx.one("party", user_id=user_id)
        assert party is not None
        await outbox.enqueue(
            tx,
            "email.send",
            {
                "template": template,
                "to": party["email"],
                "params": {"name": party["full_name"], "task_title": task["title"], **params},
            },
        )


async def open_dispute(
    db: Database, who: Caller, task_id: str, reason: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    async with db.transaction() as tx:
        task = await tasks.lock(tx, task_id)
        if who.user_id not in (str(task["poster_id"]), str(task["worker_id"])):
            raise HxError("HX202", "Only the task's poster or worker may dispute it.")
        if task["state"] != "PROOF_SUBMITTED":
            raise HxError(
                "HX003", f"Only submitted proof can be disputed; the task is {task['state']}."
            )
        dispute = await tx.one(
            "insert_dispute", task_id=task_id, opened_by=who.user_id, reason=reason
        )
        assert dispute is not None
        await tx.execute("set_task_state", task_id=task_id, state="DISPUTED", cancel_reason=None)
        await tx.execute("set_escrow_state", task_id=task_id, state="LOCKED_DISPUTE")
        opener = "the poster" if who.user_id == str(task["poster_id"]) else "the worker"
        other = task["worker_id"] if opener == "the poster" else task["poster_id"]
        await notify(
            tx, other, "DISPUTE_OPENED", f"“{task['title']}” is disputed", reason, task_id=task_id
        )
        await _email_parties(
            tx, task, "dispute_opened", {"opened_by": opener.capitalize(), "reason": reason}
        )
        return dispute, await tasks.card(tx, task_id)


async def resolve(
    db: Database,
    admin_id: str,
    dispute_id: str,
    resolution: str,
    split_cents: int | None,
    note: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    async with db.transaction() as tx:
        dispute = await tx.one("lock_dispute", dispute_id=dispute_id)
        if dispute is None:
            raise HxError("HX302", "No such dispute.")
        if dispute["state"] != "OPEN":
            raise HxError("HX003", "This dispute is already resolved.")
        task = await tasks.lock(tx, str(dispute["task_id"]))
        resolved = await tx.one(
            "resolve_dispute",
            dispute_id=dispute_id,
            resolution=resolution,
            split=split_cents,
            admin_id=admin_id,
            note=note or None,
        )
        assert resolved is not None
        task_id = str(task["id"])
        if resolution == "RELEASE":
            await proofs.settle_release(tx, task)
            released, refunded = task["price_cents"], 0
        elif resolution == "REFUND":
            await tx.execute(
                "review_proof",
                task_id=task_id,
                state="REJECTED",
                reason="Refunded by the dispute's resolution.",
            )
            await tx.execute(
                "set_task_state",
                task_id=task_id,
                state="CANCELLED",
                cancel_reason="Refunded by dispute.",
            )
            await tx.execute("set_escrow_state", task_id=task_id, state="REFUNDED")
            released, refunded = 0, task["price_cents"]
        else:  # SPLIT: completed, no XP (INV-1)
            await tx.execute("review_proof", task_id=task_id, state="ACCEPTED", reason=None)
            await tx.execute(
                "set_task_state", task_id=task_id, state="COMPLETED", cancel_reason=None
            )
            escrow = await tx.one("set_escrow_state", task_id=task_id, state="REFUND_PARTIAL")
            assert escrow is not None
            released, refunded = escrow["released_cents"], escrow["refunded_cents"]
        for user_id in (task["poster_id"], task["worker_id"]):
            await notify(
                tx,
                user_id,
                "DISPUTE_RESOLVED",
                f"Dispute on “{task['title']}” resolved",
                resolution.capitalize(),
                task_id=task_id,
            )
        await _email_parties(
            tx,
            task,
            "dispute_resolved",
            {
                "resolution": resolution,
                "note": note,
                "released": tasks.money(released, task["currency"]),
                "refunded": tasks.money(refunded, task["currency"]),
            },
        )
        return resolved, await tasks.card(tx, task_id)


async def list_open(db: Database, after: list[Any] | None, limit: int) -> list[dict[str, Any]]:
    after_created, after_id = (after[0], after[1]) if after else (None, None)
    return await db.all(
        "list_open_disputes", after_created=after_created, after_id=after_id, limit=limit
    )
