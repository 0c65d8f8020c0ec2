"""Proof of work: the worker submits photos, the poster approves (paying the worker) or
rejects; a proof nobody reviews within 48 hours is approved by proof.review_timeout."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from loguru import logger

from server.db import Database, Session
from server.domain import tasks, xp
from server.domain.notifications import notify
from server.errors import HxError

REVIEW_TIMEOUT = timedelta(hours=48)


async def submit(
    db: Database, worker_id: str, task_id: str, photo_upload_ids: list[str], note: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    async with db.transaction() as tx:
        task = await tasks.lock(tx, task_id)
        if str(task["worker_id"]) != worker_id:
            raise HxError("HX202", "Only the task's worker submits proof.")
        if task["state"] != "ACCEPTED":
            raise HxError(
                "HX003", f"Proof is submitted for an ACCEPTED task; this one is {task['state']}."
            )
        proof = await tx.one("insert_proof", task_id=task_id, worker_id=worker_id, note=note)
        assert proof is not None
        for position, upload_id in enumerate(photo_upload_ids, start=1):
            await tx.execute(
                "insert_proof_photo", proof_id=proof["id"], position=position, upload_id=upload_id
            )
        await tx.execute(
            "set_task_state", task_id=task_id, state="PROOF_SUBMITTED", cancel_reason=None
        )
        await notify(
            tx,
            task["poster_id"],
            "PROOF_SUBMITTED",
            f"Proof for “{task['title']}”",
            "Review the photos to pay the worker.",
            task_id=task_id,
        )
        card = await tasks.card(tx, task_id)
    return card, {
        **proof,
        "note": note,
        "state": "SUBMITTED",
        "rejection_reason": None,
        "photos": photo_upload_ids,
    }


async def approve(db: Database, user_id: str | None, task_id: str) -> tuple[dict[str, Any], int]:
    """Complete the task: proof ACCEPTED, escrow RELEASED, XP awarded. `user_id` None: the
    system (review timeout)."""
    async with db.transaction() as tx:
        task = await tasks.lock(tx, task_id)
        if user_id is not None:
            tasks.require_poster(task, user_id)
        if task["state"] != "PROOF_SUBMITTED":
            raise HxError("HX003", f"There is no proof to review: the task is {task['state']}.")
        awarded = await settle_release(tx, task)
        return await tasks.card(tx, task_id), awarded


async def settle_release(tx: Session, task: dict[str, Any]) -> int:
    """The submitted proof is accepted and the worker paid (approval, or a RELEASE resolution)."""
    if task["requires_proof"]:
        await tx.execute("review_proof", task_id=task["id"], state="ACCEPTED", reason=None)
    await tx.execute("set_task_state", task_id=task["id"], state="COMPLETED", cancel_reason=None)
    escrow = await tx.one("set_escrow_state", task_id=task["id"], state="RELEASED")
    assert escrow is not None
    await notify(
        tx,
        task["worker_id"],
        "PROOF_ACCEPTED",
        f"“{task['title']}” is done",
        "Your proof was accepted.",
        task_id=task["id"],
    )
    await notify(
        tx,
        task["worker_id"],
        "ESCROW_RELEASED",
        f"{tasks.money(escrow['released_cents'], escrow['currency'])} paid",
        f"For “{task['title']}”.",
        task_id=task["id"],
    )
    return await xp.reward(tx, task)


async def reject(db: Database, user_id: str, task_id: str, reason: str) -> dict[str, Any]:
    async with db.transaction() as tx:
        task = await tasks.lock(tx, task_id)
        tasks.require_poster(task, user_id)
        if task["state"] != "PROOF_SUBMITTED":
            raise HxError("HX003", f"There is no proof to review: the task is {task['state']}.")
        await tx.execute("review_proof", task_id=task_id, state="REJECTED", reason=reason)
        await tx.execute("set_task_state", task_id=task_id, state="ACCEPTED", cancel_reason=None)
        await notify(
            tx,
            task["worker_id"],
            "PROOF_REJECTED",
            f"Proof for “{task['title']}” was rejected",
            reason,
            task_id=task_id,
        )
        return await tasks.card(tx, task_id)


async def list_for(
    db: Database, user_id: str, is_admin: bool, task_id: str
) -> list[dict[str, Any]]:
    task = await db.one("task_card", task_id=task_id)
    if task is None:
        raise HxError("HX302", "No such task.")
    if user_id not in (str(task["poster_id"]), str(task["worker_id"])) and not is_admin:
        raise HxError("HX202", "This task is not yours.")
    return await db.all("list_proofs", task_id=task_id)


async def approve_overdue(db: Database, batch: int = 200) -> int:
    """proof.review_timeout: approve proofs nobody reviewed within REVIEW_TIMEOUT."""
    done = 0
    for row in await db.all("overdue_reviews", after=REVIEW_TIMEOUT, batch=batch):
        try:
            await approve(db, None, str(row["id"]))
            done += 1
        except HxError as exc:  # reviewed (or disputed) meanwhile
            logger.bind(task_id=str(row["id"]), reason=exc.code).info(
                "overdue proof no longer waiting"
            )
    return done
