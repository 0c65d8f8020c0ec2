"""hustle.v2.AdminService: input checks (every invalid field at once) and translation; the
rules live in server.domain.admin."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2
from grpc import aio

from hustle.v2 import admin_pb2, admin_pb2_grpc, user_pb2
from server import caller, pagination, validation
from server.api.enums import EnumMap
from server.api.v2 import convert, lists
from server.cache import FeedCache
from server.config import Settings
from server.db import Database
from server.domain import admin
from server.domain.records import TrustTier
from server.sessions import SessionStore
from server.validation import Checks

Context = aio.ServicerContext[Any, Any]
A = admin_pb2
STATUSES = EnumMap(admin.AccountStatus, admin_pb2.AccountStatus)
LEDGERS = EnumMap(admin.LedgerKind, admin_pb2.LedgerKind)
ACTORS = {"user": A.ACTOR_KIND_USER, "cli": A.ACTOR_KIND_CLI, "system": A.ACTOR_KIND_SYSTEM}
ACTIONS = lists.kind("admin-actions")
REASON_MAX = 1000


def account(record: admin.Account) -> admin_pb2.Account:
    return A.Account(
        user_id=record.id,
        email=record.email,
        full_name=record.full_name,
        is_admin=record.is_admin,
        account_status=STATUSES.to_proto(record.account_status),
        account_status_at=convert.timestamp(record.account_status_at),
    )


def action(record: admin.Action | None) -> admin_pb2.AdminAction | None:
    if record is None:
        return None
    details = struct_pb2.Struct()
    details.update(record.details)
    return A.AdminAction(
        action_id=record.id,
        actor_kind=ACTORS.get(record.actor_label, A.ACTOR_KIND_UNSPECIFIED),
        actor_id=record.actor_id or "",
        action=record.action,
        target_kind=record.target_kind,
        target_id=record.target_id,
        reason=record.reason,
        details=details,
        created_at=convert.timestamp(record.created_at),
    )


def restriction(change: admin.Change) -> admin_pb2.Restriction:
    return A.Restriction(
        account=account(change.account),
        action=action(change.action),
        sessions_revoked=change.sessions_revoked,
        cancelled_task_ids=change.tasks_cancelled,
        opened_dispute_ids=change.tasks_disputed,
    )


def _target(request: Any) -> tuple[str, str]:
    """A mutation's user and reason (both required), checked together."""
    with Checks() as check:
        user_id = check(validation.uuid_id, request.user_id, "user_id")
        reason = check(validation.text, request.reason, "reason", low=1, high=REASON_MAX)
        check(validation.request_id, request.request_id)
    return user_id, reason


def _tier(value: int | None) -> user_pb2.TrustTier.ValueType:
    if value is None:
        return user_pb2.TRUST_TIER_UNSPECIFIED
    return convert.TRUST_TIERS.to_proto(TrustTier(value))


class AdminService(admin_pb2_grpc.AdminServiceServicer):
    def __init__(
        self, db: Database, cache: FeedCache, sessions: SessionStore, settings: Settings
    ) -> None:
        self._db = db
        self._cache = cache
        self._sessions = sessions
        self._secret = settings.secret_key.get_secret_value()

    async def GrantAdmin(
        self, request: admin_pb2.GrantAdminRequest, context: Context
    ) -> admin_pb2.GrantAdminResponse:
        user_id, reason = _target(request)
        change = await admin.set_admin(
            self._db, self._sessions, caller.current().user_id, user_id, reason, admin=True
        )
        return A.GrantAdminResponse(account=account(change.account), action=action(change.action))

    async def RevokeAdmin(
        self, request: admin_pb2.RevokeAdminRequest, context: Context
    ) -> admin_pb2.RevokeAdminResponse:
        user_id, reason = _target(request)
        change = await admin.set_admin(
            self._db, self._sessions, caller.current().user_id, user_id, reason, admin=False
        )
        return A.RevokeAdminResponse(account=account(change.account), action=action(change.action))

    async def SuspendUser(
        self, request: admin_pb2.SuspendUserRequest, context: Context
    ) -> admin_pb2.SuspendUserResponse:
        user_id, reason = _target(request)
        change = await admin.restrict(
            self._db,
            self._cache,
            self._sessions,
            caller.current().user_id,
            user_id,
            reason,
            ban=False,
        )
        return A.SuspendUserResponse(restriction=restriction(change))

    async def BanUser(
        self, request: admin_pb2.BanUserRequest, context: Context
    ) -> admin_pb2.BanUserResponse:
        user_id, reason = _target(request)
        change = await admin.restrict(
            self._db,
            self._cache,
            self._sessions,
            caller.current().user_id,
            user_id,
            reason,
            ban=True,
        )
        return A.BanUserResponse(restriction=restriction(change))

    async def ReinstateUser(
        self, request: admin_pb2.ReinstateUserRequest, context: Context
    ) -> admin_pb2.ReinstateUserResponse:
        user_id, reason = _target(request)
        change = await admin.reinstate(self._db, caller.current().user_id, user_id, reason)
        return A.ReinstateUserResponse(
            account=account(change.account), action=action(change.action)
        )

    async def GetDisputeForAdmin(
        self, request: admin_pb2.GetDisputeForAdminRequest, context: Context
    ) -> admin_pb2.GetDisputeForAdminResponse:
        with Checks() as check:
            dispute_id = check(validation.uuid_id, request.dispute_id, "dispute_id")
            reason = check(validation.text, request.reason, "reason", low=0, high=REASON_MAX)
        found = await admin.dispute_file(
            self._db, caller.current().user_id, dispute_id, reason or "dispute review"
        )
        return A.GetDisputeForAdminResponse(
            dispute=convert.dispute(found.dispute, found.task.currency),
            task=convert.task(found.task),
            proofs=[convert.proof(p) for p in found.proofs],
        )

    async def ListUserLedgers(
        self, request: admin_pb2.ListUserLedgersRequest, context: Context
    ) -> admin_pb2.ListUserLedgersResponse:
        kind = LEDGERS.to_domain(request.kind)
        with Checks() as check:
            user_id = check(validation.uuid_id, request.user_id, "user_id")
            if kind is None:
                check.fail("kind", "must be LEDGER_KIND_XP or LEDGER_KIND_TRUST")
            limit = lists.page_size(check, request.page_size)
        # a page token is valid for this user's ledger of this kind only
        page_kind = f"{lists.kind('user-ledger', [kind] if kind else [])}:{user_id}"
        with Checks() as check:
            after = lists.after(check, self._secret, page_kind, request.page_token)
        entries: list[A.LedgerEntry] = []
        if kind is admin.LedgerKind.XP:
            xp, token = pagination.split_keyed(
                self._secret,
                page_kind,
                await admin.xp_entries(self._db, user_id, after, limit + 1),
                limit,
            )
            entries = [
                A.LedgerEntry(
                    entry_id=e.id,
                    created_at=convert.timestamp(e.created_at),
                    xp=A.XpLedgerEntry(
                        task_id=e.task_id,
                        amount=e.amount,
                        xp_before=e.xp_before,
                        xp_after=e.xp_after,
                        level_before=e.level_before,
                        level_after=e.level_after,
                    ),
                )
                for e in xp
            ]
        else:
            trust, token = pagination.split_keyed(
                self._secret,
                page_kind,
                await admin.trust_entries(self._db, user_id, after, limit + 1),
                limit,
            )
            entries = [
                A.LedgerEntry(
                    entry_id=e.id,
                    created_at=convert.timestamp(e.created_at),
                    trust=A.TrustLedgerEntry(
                        old_tier=_tier(e.old_tier),
                        new_tier=_tier(e.new_tier),
                        reason=e.reason,
                        actor_id=e.actor_id or "",
                    ),
                )
                for e in trust
            ]
        return A.ListUserLedgersResponse(entries=entries, next_page_token=token)

    async def ListAdminActions(
        self, request: admin_pb2.ListAdminActionsRequest, context: Context
    ) -> admin_pb2.ListAdminActionsResponse:
        with Checks() as check:
            limit = lists.page_size(check, request.page_size)
            after = lists.after(check, self._secret, ACTIONS, request.page_token)
        found = await admin.actions(self._db, after, limit + 1)
        page, token = pagination.split_keyed(self._secret, ACTIONS, found, limit)
        return A.ListAdminActionsResponse(
            actions=[a for a in map(action, page) if a is not None], next_page_token=token
        )
