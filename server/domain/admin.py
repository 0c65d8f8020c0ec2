"""Admin tools: admin rights, an account's standing (suspend, reinstate, ban) and the admin reads.

Every mutation is one transaction that also writes its `admin_actions` row (INV-16), takes the
admin-set lock first (sql/admin.sql `admin_lock_admins`; the last-admin trigger takes it too,
so that two admins revoking each other cannot both succeed) and re-checks the actor in the
database (a cached session may predate a revocation: HX205). A change that finds its target
already as asked (granting an admin, suspending a suspended account) changes nothing, logs
nothing and answers with the account as it is.

A suspension or a ban, in its one transaction: the standing, every session revoked (the
cached entries are dropped after the commit, and by a `session.forget` job from the outbox in
case Redis is away), as a poster their OPEN tasks cancelled and refunded, as a worker their
ACCEPTED tasks cancelled (the poster refunded) and their PROOF_SUBMITTED tasks DISPUTED (opened
for the poster, an admin decides), ACCOUNT_SUSPENDED in the app and by email. Their other tasks
go on (as a poster: the 48 h review timeout pays the worker). Eligibility needs no recompute:
is_eligible reads the standing itself (migration 0036), and feeds of the states whose open
tasks were cancelled are invalidated after the commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import redis.exceptions
from loguru import logger
from psycopg.types.json import Jsonb

from server import outbox
from server.cache import FeedCache
from server.db import Database, Rows, Session
from server.domain import disputes, tasks
from server.domain.notifications import notify
from server.domain.records import (
    Dispute,
    EscrowState,
    NotificationKind,
    TaskState,
)
from server.errors import HxError
from server.sessions import SessionStore

N = NotificationKind
CLI = "cli"
USER = "user"


class AccountStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    BANNED = "BANNED"


class LedgerKind(StrEnum):
    XP = "XP"
    TRUST = "TRUST"


@dataclass(frozen=True, slots=True)
class Account:
    """A user as admins see them: who, and their standing."""

    id: str
    email: str
    full_name: str
    is_admin: bool
    account_status: AccountStatus
    account_status_at: datetime | None


@dataclass(frozen=True, slots=True)
class Action:
    """One row of the admin log."""

    id: str
    actor_id: str | None
    actor_label: str
    action: str
    target_kind: str
    target_id: str
    reason: str
    details: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Change:
    """An admin mutation's outcome: the account as it is now, and the log row (None: nothing
    had to change)."""

    account: Account
    action: Action | None
    sessions_revoked: int = 0
    tasks_cancelled: tuple[str, ...] = ()
    tasks_disputed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class XpEntry:
    id: str
    task_id: str
    amount: int
    xp_before: int
    xp_after: int
    level_before: int
    level_after: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TrustEntry:
    id: str
    old_tier: int | None
    new_tier: int
    reason: str
    actor_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class _Hash:
    token_hash: bytes


_LOCK_USER = Rows("admin_lock_user", Account)
_LOCK_BY_EMAIL = Rows("admin_lock_user_by_email", Account)
_SET_ADMIN = Rows("admin_set_admin", Account)
_SET_STATUS = Rows("admin_set_account_status", Account)
_LOG = Rows("admin_log", Action)
_LIST = Rows("admin_list_actions", Action)
_LIVE_HASHES = Rows("admin_live_session_hashes", _Hash)
_REVOKE = Rows("admin_revoke_sessions", _Hash)
_POSTED = Rows("admin_lock_posted_tasks", tasks.LockedTask)
_TAKEN = Rows("admin_lock_taken_tasks", tasks.LockedTask)
_NEW_DISPUTE = Rows("insert_dispute", Dispute)
_XP = Rows("admin_xp_entries", XpEntry)
_TRUST = Rows("admin_trust_entries", TrustEntry)


async def log(
    tx: Session,
    actor_id: str | None,
    action: str,
    target_kind: str,
    target_id: str,
    reason: str,
    details: Mapping[str, Any] | None = None,
) -> Action:
    """Write one admin-log row in the caller's transaction (actor None: the command line).
    Other modules (messaging's admin reads, hidden messages) log through this too."""
    row = await tx.one(
        _LOG,
        actor_id=actor_id,
        actor_label=USER if actor_id is not None else CLI,
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        reason=reason,
        details=Jsonb(dict(details or {})),
    )
    assert row is not None
    return row


async def _begin(tx: Session, actor_id: str | None, target_id: str, *, self_ok: bool) -> Account:
    """The admin-set lock, the actor re-checked, the target locked (HX302 if none)."""
    await tx.execute("admin_lock_admins")
    if actor_id is not None:
        if not self_ok and actor_id == target_id:
            raise HxError("HX206", "An admin cannot do this to their own account.")
        if not await tx.scalar("admin_actor", bool, user_id=actor_id):
            raise HxError("HX205", "Only an active admin may do this.")
    target = await tx.one(_LOCK_USER, user_id=target_id)
    if target is None:
        raise HxError("HX302", "No such user.")
    return target


async def _forget_sessions(
    tx: Session, store: SessionStore | None, user_id: str, hashes: Sequence[bytes]
) -> None:
    """Drop the cached entries of these sessions: at once after the commit when Redis answers,
    and in any case by a `session.forget` job (the outbox row commits with the change)."""
    if not hashes:
        return
    await outbox.enqueue(
        tx, "session.forget", {"user_id": user_id, "token_hashes": [h.hex() for h in hashes]}
    )
    if store is not None:

        async def drop() -> None:
            # (when Redis does not answer, the session.forget job drops them once it is back)
            with contextlib.suppress(redis.exceptions.RedisError):
                await store.drop(user_id, hashes)

        tx.on_commit(drop)


async def set_admin(
    db: Database,
    store: SessionStore | None,
    actor_id: str | None,
    user_id: str,
    reason: str,
    *,
    admin: bool,
) -> Change:
    """Grant (`admin`) or revoke admin rights. Never on oneself (HX206); the last active admin
    keeps them (HX206, from the database's trigger); only an active account becomes an admin."""
    async with db.transaction() as tx:
        target = await _begin(tx, actor_id, user_id, self_ok=False)
        if target.is_admin == admin:
            return Change(target, None)
        if admin and target.account_status is not AccountStatus.ACTIVE:
            raise HxError("HX003", f"This account is {target.account_status.lower()}.")
        changed = await tx.one(_SET_ADMIN, user_id=user_id, is_admin=admin)
        assert changed is not None
        action = await log(
            tx, actor_id, "admin.grant" if admin else "admin.revoke", "user", user_id, reason
        )
        # cached sessions carry is_admin: forget them, the next call reads the database
        live = [r.token_hash for r in await tx.all(_LIVE_HASHES, user_id=user_id)]
        await _forget_sessions(tx, store, user_id, live)
    logger.bind(user_id=user_id, actor_id=actor_id, admin=admin).info("admin rights changed")
    return Change(changed, action)


async def grant_by_email(db: Database, email: str, reason: str) -> Change:
    """The command line's grant (`python -m server admin grant EMAIL`): no actor, logged as
    `cli`. HX302 for an unknown email; an existing admin is answered as they are."""
    async with db.transaction() as tx:
        await tx.execute("admin_lock_admins")
        target = await tx.one(_LOCK_BY_EMAIL, email=email.strip().lower())
        if target is None:
            raise HxError("HX302", f"No user has the email address {email!r}.")
    return await set_admin(db, None, None, target.id, reason, admin=True)


async def _cancel(
    tx: Session, admin_id: str, task: tasks.LockedTask, why: str, note: str
) -> tuple[str, bool]:
    """Cancel a task by the admin (refunding a funded escrow); tell its poster (and worker).
    Returns its id and whether it was OPEN (its feeds change)."""
    await tx.execute("cancel_task", task_id=task.id, cancel_reason=why, cancelled_by=admin_id)
    held = await tasks.escrow(tx, task.id)
    if held.state is EscrowState.FUNDED:
        await tasks.set_escrow(tx, task.id, EscrowState.REFUNDED)
        await notify(
            tx,
            task.poster_id,
            N.ESCROW_REFUNDED,
            f"{tasks.money(held.amount_cents, held.currency)} refunded",
            f"The payment for “{task.title}” was refunded.",
            task_id=task.id,
        )
    for party in {task.poster_id, task.worker_id} - {None}:
        assert party is not None
        await notify(
            tx, party, N.TASK_CANCELLED, f"“{task.title}” was cancelled", note, task_id=task.id
        )
    return task.id, task.state is TaskState.OPEN


async def _dispute(tx: Session, task: tasks.LockedTask, reason: str) -> str:
    """Put a PROOF_SUBMITTED task of a suspended worker to an admin: a dispute opened for its
    poster (the state machine's path: the dispute, the task DISPUTED, the escrow locked)."""
    dispute = await tx.one(_NEW_DISPUTE, task_id=task.id, opened_by=task.poster_id, reason=reason)
    assert dispute is not None
    await tx.execute(
        "set_task_state", task_id=task.id, state=TaskState.DISPUTED, cancel_reason=None
    )
    await tasks.set_escrow(tx, task.id, EscrowState.LOCKED_DISPUTE)
    await notify(
        tx,
        task.poster_id,
        N.DISPUTE_OPENED,
        f"“{task.title}” goes to an admin",
        "The worker's account was suspended; an admin will review the submitted proof.",
        task_id=task.id,
    )
    await disputes.email_parties(
        tx, task, N.DISPUTE_OPENED, "dispute_opened", {"opened_by": "Hustle", "reason": reason}
    )
    return dispute.id


async def _email(tx: Session, account: Account, reason: str) -> None:
    """Tell the user their new standing by email (through the outbox)."""
    await outbox.enqueue(
        tx,
        "email.send",
        {
            "template": "account_status",
            "to": account.email,
            "params": {
                "name": account.full_name,
                "status": account.account_status.value,
                "reason": reason,
            },
        },
    )


async def restrict(
    db: Database,
    cache: FeedCache,
    store: SessionStore | None,
    admin_id: str,
    user_id: str,
    reason: str,
    *,
    ban: bool,
) -> Change:
    """Suspend (reversible) or ban (final) an account, with every effect in one transaction."""
    wanted = AccountStatus.BANNED if ban else AccountStatus.SUSPENDED
    async with db.transaction() as tx:
        target = await _begin(tx, admin_id, user_id, self_ok=False)
        if target.account_status is wanted:
            return Change(target, None)
        if target.account_status is AccountStatus.BANNED:
            raise HxError("HX003", "This account is banned: a ban is final.")
        # the standing first: from here on the account's posts, accepts and sign-ins wait
        # for this transaction and are refused (migration 0036's share locks)
        changed = await tx.one(_SET_STATUS, user_id=user_id, status=wanted)
        assert changed is not None
        revoked = [r.token_hash for r in await tx.all(_REVOKE, user_id=user_id)]
        await _forget_sessions(tx, store, user_id, revoked)
        why = (
            "The poster's account was suspended." if not ban else "The poster's account was banned."
        )
        cancelled: list[str] = []
        feed_states: set[str] = set()
        for task in await tx.all(_POSTED, user_id=user_id, state=TaskState.OPEN):
            task_id, was_open = await _cancel(tx, admin_id, task, why, why)
            cancelled.append(task_id)
            if was_open:
                feed_states.add(task.location_state)
        note = "The worker's account was suspended; the payment is refunded."
        for task in await tx.all(_TAKEN, user_id=user_id, state=TaskState.ACCEPTED):
            task_id, _ = await _cancel(
                tx, admin_id, task, "The worker's account was suspended.", note
            )
            cancelled.append(task_id)
        disputed = [
            await _dispute(
                tx, task, "The worker's account was suspended; an admin reviews the proof."
            )
            for task in await tx.all(_TAKEN, user_id=user_id, state=TaskState.PROOF_SUBMITTED)
        ]
        await notify(
            tx,
            user_id,
            N.ACCOUNT_SUSPENDED,
            "Your account was banned" if ban else "Your account was suspended",
            reason,
        )
        await _email(tx, changed, reason)
        action = await log(
            tx,
            admin_id,
            "user.ban" if ban else "user.suspend",
            "user",
            user_id,
            reason,
            {
                "from": target.account_status.value,
                "sessions_revoked": len(revoked),
                "tasks_cancelled": cancelled,
                "disputes_opened": disputed,
            },
        )
        if feed_states:
            tx.on_commit(lambda: cache.task_moved(*feed_states))
    logger.bind(user_id=user_id, actor_id=admin_id, status=wanted.value).info("account restricted")
    return Change(changed, action, len(revoked), tuple(cancelled), tuple(disputed))


async def reinstate(db: Database, admin_id: str, user_id: str, reason: str) -> Change:
    """A suspended account becomes active again (a banned one stays banned: HX003). Its
    cancelled tasks stay cancelled; it signs in anew."""
    async with db.transaction() as tx:
        target = await _begin(tx, admin_id, user_id, self_ok=False)
        if target.account_status is AccountStatus.ACTIVE:
            return Change(target, None)
        if target.account_status is AccountStatus.BANNED:
            raise HxError("HX003", "This account is banned: a ban is final.")
        changed = await tx.one(_SET_STATUS, user_id=user_id, status=AccountStatus.ACTIVE)
        assert changed is not None
        await notify(tx, user_id, N.ACCOUNT_REINSTATED, "Your account is active again", reason)
        await _email(tx, changed, reason)
        action = await log(tx, admin_id, "user.reinstate", "user", user_id, reason)
    return Change(changed, action)


async def dispute_file(
    db: Database, admin_id: str, dispute_id: str, reason: str
) -> disputes.DisputeView:
    """A dispute with its task and proofs, for an admin; the read is logged (a sensitive read)
    in the same transaction. (The task's message thread is MessageService.ListMessages, whose
    admin reads are logged too.)"""
    async with db.transaction() as tx:
        found = await disputes.read_view(tx, dispute_id, party=None)
        await log(
            tx, admin_id, "dispute.read", "dispute", dispute_id, reason, {"task_id": found.task.id}
        )
        return found


async def xp_entries(
    db: Database, user_id: str, after: list[str] | None, limit: int
) -> list[XpEntry]:
    await _require_user(db, user_id)
    created, entry = after if after else (None, None)
    return await db.all(_XP, user_id=user_id, after_created=created, after_id=entry, limit=limit)


async def trust_entries(
    db: Database, user_id: str, after: list[str] | None, limit: int
) -> list[TrustEntry]:
    await _require_user(db, user_id)
    created, entry = after if after else (None, None)
    return await db.all(_TRUST, user_id=user_id, after_created=created, after_id=entry, limit=limit)


async def _require_user(db: Database, user_id: str) -> None:
    if await db.scalar("admin_user_exists", str, user_id=user_id) is None:
        raise HxError("HX302", "No such user.")


async def actions(db: Database, after: list[str] | None, limit: int) -> list[Action]:
    """The admin log, newest first, after the keyset position `after`."""
    created, action = after if after else (None, None)
    return await db.all(_LIST, after_created=created, after_id=action, limit=limit)
