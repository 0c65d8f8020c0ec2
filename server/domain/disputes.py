"""Disputes: opened by the poster or the worker on submitted proof, resolved by an admin.
Both parties are told in the app and by email (through the outbox).

A retried open (the same caller's open dispute on the task) or resolve (the same admin's same
resolution) answers as the first call did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.caller import Caller
from server.db import Database, Rows, Session
from server.domain import notifications, proofs, ratings, tasks
from server.domain.notifications import notify
from server.domain.records import (
    Dispute,
    DisputeState,
    EscrowState,
    NotificationKind,
    Proof,
    ProofState,
    Resolution,
    Task,
    TaskState,
)
from server.errors import HxError

N = NotificationKind


@dataclass(frozen=True, slots=True)
class Party:
    id: str
    full_name: str
    email: str


_INSERT = Rows("insert_dispute", Dispute)
_LOCK = Rows("lock_dispute", Dispute)
_OPEN_ON = Rows("open_dispute_of", Dispute)
_RESOLVE = Rows("resolve_dispute", Dispute)
_LIST_OPEN = Rows("list_open_disputes", Dispute)
_PARTY = Rows("party", Party)


async def email_parties(
    tx: Session,
    task: tasks.LockedTask,
    kind: NotificationKind,
    template: str,
    params: dict[str, Any],
) -> None:
    """Email the task's poster and worker (through the outbox; also used by server.domain.admin
    when a suspension disputes a worker's submitted proof)."""
    for user_id in (task.poster_id, task.worker_id):
        party = await tx.one(_PARTY, user_id=user_id)
        assert party is not None
        await notifications.enqueue_for(
            tx,
            party.id,
            kind,
            notifications.NotificationChannel.EMAIL,
            "email.send",
            {
                "template": template,
                "to": party.email,
                "params": {"name": party.full_name, "task_title": task.title, **params},
            },
        )


async def open_dispute(
    db: Database, who: Caller, task_id: str, reason: str
) -> tuple[Dispute, Task]:
    async with db.transaction() as tx:
        task = await tasks.lock(tx, task_id)
        if who.user_id not in (task.poster_id, task.worker_id):
            raise HxError("HX202", "Only the task's poster or worker may dispute it.")
        if task.state is TaskState.DISPUTED:
            current = await tx.one(_OPEN_ON, task_id=task_id)
            if current is not None and (current.opened_by, current.reason) == (who.user_id, reason):
                return current, await tasks.card(tx, task_id)  # this very dispute: a retry
        if task.state is not TaskState.PROOF_SUBMITTED:
            raise HxError(
                "HX003", f"Only submitted proof can be disputed; the task is {task.state}."
            )
        dispute = await tx.one(_INSERT, task_id=task_id, opened_by=who.user_id, reason=reason)
        assert dispute is not None
        await tx.execute(
            "set_task_state", task_id=task_id, state=TaskState.DISPUTED, cancel_reason=None
        )
        await tasks.set_escrow(tx, task_id, EscrowState.LOCKED_DISPUTE)
        by_poster = who.user_id == task.poster_id
        other = task.worker_id if by_poster else task.poster_id
        assert other is not None
        await notify(
            tx, other, N.DISPUTE_OPENED, f"“{task.title}” is disputed", reason, task_id=task_id
        )
        await email_parties(
            tx,
            task,
            N.DISPUTE_OPENED,
            "dispute_opened",
            {"opened_by": "The poster" if by_poster else "The worker", "reason": reason},
        )
        return dispute, await tasks.card(tx, task_id)


async def resolve(
    db: Database,
    admin_id: str,
    dispute_id: str,
    resolution: Resolution,
    split_cents: int | None,
    note: str,
) -> tuple[Dispute, Task]:
    async with db.transaction() as tx:
        dispute = await tx.one(_LOCK, dispute_id=dispute_id)
        if dispute is None:
            raise HxError("HX302", "No such dispute.")
        if dispute.state is not DisputeState.OPEN:
            asked = (admin_id, resolution, split_cents, note or None)
            done = (dispute.resolved_by, dispute.resolution, dispute.split_release_cents)
            if (*done, dispute.resolution_note) == asked:
                return dispute, await tasks.card(tx, dispute.task_id)  # a retry
            raise HxError("HX003", "This dispute is already resolved.")
        task = await tasks.lock(tx, dispute.task_id)
        resolved = await tx.one(
            _RESOLVE,
            dispute_id=dispute_id,
            resolution=resolution,
            split=split_cents,
            admin_id=admin_id,
            note=note or None,
        )
        assert resolved is not None
        task_id = task.id
        if resolution is Resolution.RELEASE:
            await proofs.settle_release(tx, task)
            released, refunded = task.price_cents, 0
        elif resolution is Resolution.REFUND:
            await tx.execute(
                "review_proof",
                task_id=task_id,
                state=ProofState.REJECTED,
                reason="Refunded by the dispute's resolution.",
            )
            await tx.execute(
                "set_task_state",
                task_id=task_id,
                state=TaskState.CANCELLED,
                cancel_reason="Refunded by dispute.",
            )
            await tasks.set_escrow(tx, task_id, EscrowState.REFUNDED)
            released, refunded = 0, task.price_cents
        else:  # SPLIT: completed, no XP (INV-1)
            await tx.execute(
                "review_proof", task_id=task_id, state=ProofState.ACCEPTED, reason=None
            )
            await tx.execute(
                "set_task_state", task_id=task_id, state=TaskState.COMPLETED, cancel_reason=None
            )
            split = await tasks.set_escrow(tx, task_id, EscrowState.REFUND_PARTIAL)
            assert task.worker_id is not None
            await ratings.request(tx, task_id, task.title, task.poster_id, task.worker_id)
            released, refunded = split.released_cents, split.refunded_cents
        for user_id in (task.poster_id, task.worker_id):
            assert user_id is not None
            await notify(
                tx,
                user_id,
                N.DISPUTE_RESOLVED,
                f"Dispute on “{task.title}” resolved",
                resolution.capitalize(),
                task_id=task_id,
            )
        await email_parties(
            tx,
            task,
            N.DISPUTE_RESOLVED,
            "dispute_resolved",
            {
                "resolution": resolution.value,
                "note": note,
                "released": tasks.money(released, task.currency),
                "refunded": tasks.money(refunded, task.currency),
            },
        )
        return resolved, await tasks.card(tx, task_id)


@dataclass(frozen=True, slots=True)
class DisputeView:
    """A dispute with its task and every proof: as one of the task's parties reads it, and as
    an admin reads it to decide (server.domain.admin.dispute_file)."""

    dispute: Dispute
    task: Task
    proofs: list[Proof]


_DISPUTE = Rows("dispute_by_id", Dispute)
_PROOFS = Rows("list_proofs", Proof)


async def read_view(tx: Session, dispute_id: str, *, party: str | None) -> DisputeView:
    """A dispute with its task and proofs, in the caller's transaction; HX302 when there is no
    such dispute, HX202 when `party` is given and is neither the task's poster nor its worker."""
    dispute = await tx.one(_DISPUTE, dispute_id=dispute_id)
    if dispute is None:
        raise HxError("HX302", "No such dispute.")
    task = await tasks.card(tx, dispute.task_id)
    if party is not None and party not in (task.poster_id, task.worker_id):
        raise HxError("HX202", "Only the task's poster and worker read its dispute.")
    proofs = await tx.all(_PROOFS, task_id=task.id, after_created=None, after_id=None, limit=None)
    return DisputeView(dispute, task, proofs)


async def for_party(db: Database, who: Caller, dispute_id: str) -> DisputeView:
    """The caller's own dispute (as the task's poster or worker) with its task and proofs."""
    async with db.snapshot() as tx:
        return await read_view(tx, dispute_id, party=who.user_id)


async def list_open(db: Database, after: list[str] | None, limit: int) -> list[Dispute]:
    """Open disputes, oldest first, after the keyset position `after`."""
    created, dispute = after if after else (None, None)
    return await db.all(_LIST_OPEN, after_created=created, after_id=dispute, limit=limit)
