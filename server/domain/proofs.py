"""Proof of work: the worker submits photos, the poster approves (paying the worker) or
rejects; a proof nobody reviews within 48 hours is approved by proof.review_timeout.

Retries get the answer of the first call: a proof submitted again with the same photos, an
approval of a task this approval completed, a rejection already made with the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger

from server.db import Database, Rows, Session
from server.domain import ratings, tasks, xp
from server.domain.notifications import notify
from server.domain.records import (
    EscrowState,
    NotificationKind,
    Proof,
    ProofState,
    Task,
    TaskState,
)
from server.errors import HxError

REVIEW_TIMEOUT = timedelta(hours=48)
N = NotificationKind


@dataclass(frozen=True, slots=True)
class _Id:
    id: str


@dataclass(frozen=True, slots=True)
class _Inserted:
    id: str
    created_at: datetime


_INSERT = Rows("insert_proof", _Inserted)
_LIST = Rows("list_proofs", Proof)
_LATEST = Rows("latest_proof", Proof)
_OVERDUE = Rows("overdue_reviews", _Id)


async def latest(tx: Session, task_id: str) -> Proof | None:
    return await tx.one(_LATEST, task_id=task_id)


async def submit(
    db: Database, worker_id: str, task_id: str, photo_upload_ids: list[str], note: str
) -> tuple[Task, Proof]:
    async with db.transaction() as tx:
        task = await tasks.lock(tx, task_id)
        if task.worker_id != worker_id:
            raise HxError("HX202", "Only the task's worker submits proof.")
        if task.state is TaskState.PROOF_SUBMITTED:
            waiting = await latest(tx, task_id)
            if (
                waiting is not None
                and waiting.state is ProofState.SUBMITTED
                and (waiting.photos, waiting.note) == (photo_upload_ids, note)
            ):
                return await tasks.card(tx, task_id), waiting  # this very proof: a retry
        if task.state is not TaskState.ACCEPTED:
            raise HxError(
                "HX003", f"Proof is submitted for an ACCEPTED task; this one is {task.state}."
            )
        inserted = await tx.one(_INSERT, task_id=task_id, worker_id=worker_id, note=note)
        assert inserted is not None
        for position, upload_id in enumerate(photo_upload_ids, start=1):
            await tx.execute(
                "insert_proof_photo", proof_id=inserted.id, position=position, upload_id=upload_id
            )
        await tx.execute(
            "set_task_state", task_id=task_id, state=TaskState.PROOF_SUBMITTED, cancel_reason=None
        )
        await notify(
            tx,
            task.poster_id,
            N.PROOF_SUBMITTED,
            f"Proof for “{task.title}”",
            "Review the photos to pay the worker.",
            task_id=task_id,
        )
        return await tasks.card(tx, task_id), Proof(
            id=inserted.id,
            note=note,
            state=ProofState.SUBMITTED,
            rejection_reason=None,
            created_at=inserted.created_at,
            photos=list(photo_upload_ids),
        )


async def approve(db: Database, user_id: str | None, task_id: str) -> tuple[Task, int]:
    """Complete the task: proof ACCEPTED, escrow RELEASED, XP awarded; returns the task and the
    XP earned. `user_id` None: the system (review timeout)."""
    async with db.transaction() as tx:
        task = await tasks.lock(tx, task_id)
        if user_id is not None:
            tasks.require_poster(task, user_id)
        if user_id is not None and task.state is TaskState.COMPLETED:
            awarded = await tx.scalar("xp_awarded_for", int, task_id=task_id)
            held = await tasks.escrow(tx, task_id)
            if held.state is EscrowState.RELEASED and awarded is not None:
                return await tasks.card(tx, task_id), awarded  # approved already: a retry
        if task.state is not TaskState.PROOF_SUBMITTED:
            raise HxError("HX003", f"There is no proof to review: the task is {task.state}.")
        awarded = await settle_release(tx, task)
        return await tasks.card(tx, task_id), awarded


async def settle_release(tx: Session, task: tasks.LockedTask) -> int:
    """The submitted proof is accepted and the worker paid (approval, or a RELEASE resolution)."""
    assert task.worker_id is not None
    if task.requires_proof:
        await tx.execute("review_proof", task_id=task.id, state=ProofState.ACCEPTED, reason=None)
    await tx.execute(
        "set_task_state", task_id=task.id, state=TaskState.COMPLETED, cancel_reason=None
    )
    paid = await tasks.set_escrow(tx, task.id, EscrowState.RELEASED)
    await ratings.request(tx, task.id, task.title, task.poster_id, task.worker_id)
    await notify(
        tx,
        task.worker_id,
        N.PROOF_ACCEPTED,
        f"“{task.title}” is done",
        "Your proof was accepted.",
        task_id=task.id,
    )
    await notify(
        tx,
        task.worker_id,
        N.ESCROW_RELEASED,
        f"{tasks.money(paid.released_cents, paid.currency)} paid",
        f"For “{task.title}”.",
        task_id=task.id,
    )
    return await xp.reward(tx, task.id, task.worker_id, task.title)


async def reject(db: Database, user_id: str, task_id: str, reason: str) -> Task:
    async with db.transaction() as tx:
        task = await tasks.lock(tx, task_id)
        tasks.require_poster(task, user_id)
        if task.state is TaskState.ACCEPTED:
            last = await latest(tx, task_id)
            if last is not None and (last.state, last.rejection_reason) == (
                ProofState.REJECTED,
                reason,
            ):
                return await tasks.card(tx, task_id)  # rejected so already: a retry
        if task.state is not TaskState.PROOF_SUBMITTED:
            raise HxError("HX003", f"There is no proof to review: the task is {task.state}.")
        assert task.worker_id is not None
        await tx.execute("review_proof", task_id=task_id, state=ProofState.REJECTED, reason=reason)
        await tx.execute(
            "set_task_state", task_id=task_id, state=TaskState.ACCEPTED, cancel_reason=None
        )
        await notify(
            tx,
            task.worker_id,
            N.PROOF_REJECTED,
            f"Proof for “{task.title}” was rejected",
            reason,
            task_id=task_id,
        )
        return await tasks.card(tx, task_id)


async def list_for(
    db: Database,
    user_id: str,
    is_admin: bool,
    task_id: str,
    after: list[str] | None = None,
    limit: int | None = None,
) -> list[Proof]:
    """A task's proofs, newest first (after the keyset position `after`, at most `limit`; all by
    default), for its poster, its worker and admins."""
    task = await db.one(tasks.CARD, task_id=task_id)
    if task is None:
        raise HxError("HX302", "No such task.")
    if user_id not in (task.poster_id, task.worker_id) and not is_admin:
        raise HxError("HX202", "This task is not yours.")
    created, proof = after if after else (None, None)
    return await db.all(_LIST, task_id=task_id, after_created=created, after_id=proof, limit=limit)


async def approve_overdue(db: Database, batch: int = 200) -> int:
    """proof.review_timeout: approve proofs nobody reviewed within REVIEW_TIMEOUT."""
    done = 0
    for row in await db.all(_OVERDUE, after=REVIEW_TIMEOUT, batch=batch):
        try:
            await approve(db, None, row.id)
            done += 1
        except HxError as exc:  # reviewed (or disputed) meanwhile
            logger.bind(task_id=row.id, reason=exc.code).info("overdue proof no longer waiting")
    return done
