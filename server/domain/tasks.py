"""Tasks: posting, funding, accepting, cancelling, reading; and expiry of open tasks.

Every change is one transaction that also writes the in-app notifications it causes; feed
caches are told after it commits (a task entering or leaving OPEN). The database's triggers
check every transition again.

A mutation retried by the caller who already owns its effect (a reply lost on the way) gets the
same answer again, not an error: accepting a task one holds, cancelling a task one cancelled,
funding a task with the payment that funded it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from loguru import logger

from server.cache import FeedCache
from server.caller import Caller
from server.db import Database, Rows, Session
from server.domain.notifications import notify
from server.domain.records import EscrowState, NotificationKind, Task, TaskState
from server.errors import HxError

N = NotificationKind


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


@dataclass(frozen=True, slots=True)
class LockedTask:
    """A task's row locked for a change: what the rules of a move look at."""

    id: str
    poster_id: str
    worker_id: str | None
    state: TaskState
    location_state: str
    requires_proof: bool
    title: str
    price_cents: int
    currency: str
    cancelled_by: str | None


@dataclass(frozen=True, slots=True)
class TaskRef:
    """A task a statement moved, with what its notifications and cache need."""

    id: str
    poster_id: str
    title: str
    location_state: str


@dataclass(frozen=True, slots=True)
class Escrow:
    state: EscrowState
    amount_cents: int
    currency: str
    payment_reference: str | None


@dataclass(frozen=True, slots=True)
class Settlement:
    """An escrow's money after a transition."""

    amount_cents: int
    currency: str
    released_cents: int
    refunded_cents: int


@dataclass(frozen=True, slots=True)
class Refund:
    task_id: str
    amount_cents: int
    currency: str


@dataclass(frozen=True, slots=True)
class _WhyNot:
    state: TaskState
    worker_id: str | None
    funded: bool
    own: bool
    reason: str | None
    active: bool  # the worker's account is active (INV-17)


CARD = Rows("task_card", Task)
CARD_FOR = Rows("task_card_for", Task)
LOCK = Rows("lock_task", LockedTask)
ESCROW = Rows("escrow_of", Escrow)
SET_ESCROW = Rows("set_escrow_state", Settlement)
_POST = Rows("post_task", Task)
_FUND = Rows("fund_escrow", Settlement)
_ACCEPT = Rows("accept_task", Task)
_WHY_NOT = Rows("why_not_accepted", _WhyNot)
_POSTED = Rows("list_posted", Task)
_ACCEPTED = Rows("list_accepted", Task)
_EXPIRE = Rows("expire_due_tasks", TaskRef)
_REFUND = Rows("refund_funded_escrows", Refund)


async def lock(tx: Session, task_id: str) -> LockedTask:
    task = await tx.one(LOCK, task_id=task_id)
    if task is None:
        raise HxError("HX302", "No such task.")
    return task


def require_poster(task: LockedTask, user_id: str) -> None:
    if task.poster_id != user_id:
        raise HxError("HX202", "Only the task's poster may do this.")


async def card(tx: Session, task_id: str) -> Task:
    found = await tx.one(CARD, task_id=task_id)
    assert found is not None
    return found


async def escrow(tx: Session, task_id: str) -> Escrow:
    found = await tx.one(ESCROW, task_id=task_id)
    assert found is not None
    return found


async def set_escrow(tx: Session, task_id: str, state: EscrowState) -> Settlement:
    settled = await tx.one(SET_ESCROW, task_id=task_id, state=state)
    assert settled is not None
    return settled


async def create(db: Database, poster_id: str, draft: TaskDraft) -> Task:
    """Post the task with its escrow (one statement: the database's post_task)."""
    task = await db.one(_POST, poster_id=poster_id, **asdict(draft))
    assert task is not None
    return task


async def update(
    db: Database, cache: FeedCache, user_id: str, task_id: str, changes: TaskChanges
) -> Task:
    async with db.transaction() as tx:
        task = await lock(tx, task_id)
        require_poster(task, user_id)
        if task.state is not TaskState.OPEN:
            raise HxError("HX003", "A task can be edited only while it is OPEN.")
        await tx.execute("update_task", task_id=task_id, **asdict(changes))
        updated = await card(tx, task_id)
        tx.on_commit(lambda: cache.task_moved(task.location_state, updated.location_state))
        return updated


async def fund(
    db: Database, cache: FeedCache, user_id: str, task_id: str, payment_reference: str
) -> Task:
    async with db.transaction() as tx:
        task = await lock(tx, task_id)
        require_poster(task, user_id)
        funded = await tx.one(_FUND, task_id=task_id, payment_reference=payment_reference)
        if funded is None:
            held = await escrow(tx, task_id)
            if held.payment_reference == payment_reference:
                return await card(tx, task_id)  # funded by this very payment: a retry
            raise HxError("HX003", "This task's escrow is already funded.")
        await notify(
            tx,
            user_id,
            N.ESCROW_FUNDED,
            f"{money(funded.amount_cents, funded.currency)} held",
            f"“{task.title}” is now in workers' feeds.",
            task_id=task_id,
        )
        tx.on_commit(lambda: cache.task_moved(task.location_state))
        return await card(tx, task_id)


async def accept(db: Database, cache: FeedCache, worker_id: str, task_id: str) -> Task:
    """Take the task, if the worker is eligible and nobody was faster, and tell the poster
    (one statement: the database's accept_task)."""
    taken = await db.one(
        _ACCEPT,
        task_id=task_id,
        worker_id=worker_id,
        note_title="“%s” was accepted",  # format(): the task's title
        note_body="A worker took your task.",
    )
    if taken is None:
        why = await db.one(_WHY_NOT, task_id=task_id, worker_id=worker_id)
        if why is not None and why.worker_id == worker_id:
            held = await db.one(CARD, task_id=task_id)  # taken by the caller: a retry
            assert held is not None
            return held
        raise _not_accepted(why)
    await db.after_commit(lambda: cache.task_moved(taken.location_state))
    return taken


def _not_accepted(why: _WhyNot | None) -> HxError:
    if why is None:
        return HxError("HX302", "No such task.")
    if not why.active:
        return HxError("HX405", "This account is suspended or banned.")
    if why.state is not TaskState.OPEN or why.worker_id is not None:
        return HxError("HX203", "Someone else took this task first.")
    if why.own:
        return HxError("HX008", "You cannot take your own task.")
    if not why.funded:
        return HxError("HX204", "This task is not funded yet.")
    return HxError("HX201", f"You are not eligible: {why.reason or 'requirements not met'}.")


async def cancel(db: Database, cache: FeedCache, who: Caller, task_id: str, reason: str) -> Task:
    async with db.transaction() as tx:
        task = await lock(tx, task_id)
        if not who.is_admin:
            require_poster(task, who.user_id)
        if task.state is TaskState.CANCELLED and task.cancelled_by == who.user_id:
            return await card(tx, task_id)  # cancelled by this caller already: a retry
        if task.state not in (TaskState.OPEN, TaskState.ACCEPTED):
            raise HxError(
                "HX001" if task.state.terminal else "HX003",
                f"A {task.state} task cannot be cancelled.",
            )
        await tx.execute(
            "cancel_task",
            task_id=task_id,
            cancel_reason=reason or "Cancelled.",
            cancelled_by=who.user_id,
        )
        held = await escrow(tx, task_id)
        if held.state is EscrowState.FUNDED:
            await set_escrow(tx, task_id, EscrowState.REFUNDED)
            await notify(
                tx,
                task.poster_id,
                N.ESCROW_REFUNDED,
                f"{money(held.amount_cents, held.currency)} refunded",
                f"The payment for “{task.title}” was refunded.",
                task_id=task_id,
            )
        if task.worker_id is not None:
            await notify(
                tx,
                task.worker_id,
                N.TASK_CANCELLED,
                f"“{task.title}” was cancelled",
                reason or "The poster cancelled the task.",
                task_id=task_id,
            )
        if task.state is TaskState.OPEN:
            tx.on_commit(lambda: cache.task_moved(task.location_state))
        return await card(tx, task_id)


async def get(db: Database, who: Caller, task_id: str) -> Task:
    """A task with `eligible` for the caller. OPEN tasks are public; others are their
    participants' (and admins')."""
    task = await db.one(CARD_FOR, task_id=task_id, user_id=who.user_id)
    if task is None:
        raise HxError("HX302", "No such task.")
    participant = who.user_id in (task.poster_id, task.worker_id)
    if task.state is not TaskState.OPEN and not participant and not who.is_admin:
        raise HxError("HX202", "This task is not yours.")
    return task


TaskList = Callable[[Database, str, list[str] | None, int], Awaitable[list[Task]]]


def _states(states: Sequence[TaskState]) -> list[str] | None:
    """A filter's states for SQL (None: no filter)."""
    return [s.value for s in states] or None


async def list_posted(
    db: Database,
    user_id: str,
    after: list[str] | None,
    limit: int,
    states: Sequence[TaskState] = (),
) -> list[Task]:
    """The user's posted tasks, newest first, after the keyset position `after`; only those in
    `states` when it names any."""
    created, task = after if after else (None, None)
    return await db.all(
        _POSTED,
        user_id=user_id,
        states=_states(states),
        after_created=created,
        after_id=task,
        limit=limit,
    )


async def list_accepted(
    db: Database,
    user_id: str,
    after: list[str] | None,
    limit: int,
    states: Sequence[TaskState] = (),
) -> list[Task]:
    """The tasks the user took, newest first, after the keyset position `after`; only those in
    `states` when it names any."""
    created, task = after if after else (None, None)
    return await db.all(
        _ACCEPTED,
        user_id=user_id,
        states=_states(states),
        after_created=created,
        after_id=task,
        limit=limit,
    )


async def expire_due(db: Database, cache: FeedCache, batch: int = 500) -> int:
    """Expire OPEN tasks past their deadline, refund their funded escrows, tell the posters.
    Returns how many tasks expired (call again while it returns `batch`)."""
    async with db.transaction() as tx:
        expired = await tx.all(_EXPIRE, batch=batch)
        if not expired:
            return 0
        refunds = {r.task_id: r for r in await tx.all(_REFUND, task_ids=[t.id for t in expired])}
        for task in expired:
            await notify(
                tx,
                task.poster_id,
                N.TASK_EXPIRED,
                f"“{task.title}” expired",
                "Nobody took it before its deadline.",
                task_id=task.id,
            )
            refund = refunds.get(task.id)
            if refund is not None:
                await notify(
                    tx,
                    task.poster_id,
                    N.ESCROW_REFUNDED,
                    f"{money(refund.amount_cents, refund.currency)} refunded",
                    f"The payment for “{task.title}” was refunded.",
                    task_id=task.id,
                )
        states = {t.location_state for t in expired}
        tx.on_commit(lambda: cache.task_moved(*states))
    logger.bind(expired=len(expired), refunded=len(refunds)).info("tasks expired")
    return len(expired)
