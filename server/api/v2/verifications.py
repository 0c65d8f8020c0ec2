"""hustle.v2.VerificationService: input checks (every invalid field at once) and translation; the
rules live in server.domain.verification."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from grpc import aio

from hustle.v2 import verification_pb2, verification_pb2_grpc
from server import caller, pagination, validation
from server.api.v2 import convert, lists
from server.config import Settings
from server.db import Database
from server.domain import verification
from server.domain.records import Verification, VerificationKind
from server.validation import Checks

Context = aio.ServicerContext[Any, Any]
V = verification_pb2
MINE = lists.kind("my-verifications")


def _submitted(record: Verification) -> list[str]:
    """A verification's position in lists ordered by (submitted_at, id)."""
    return [record.submitted_at.isoformat(), record.id]


class VerificationService(verification_pb2_grpc.VerificationServiceServicer):
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._secret = settings.secret_key.get_secret_value()

    async def SubmitVerification(
        self, request: V.SubmitVerificationRequest, context: Context
    ) -> V.SubmitVerificationResponse:
        with Checks() as check:
            kind = convert.VERIFICATION_KINDS.to_domain(request.kind)
            if kind is None:
                check.fail("kind", "must be TRADE_LICENSE, INSURANCE, BACKGROUND_CHECK or ID")
            licence = kind is VerificationKind.TRADE_LICENSE
            if kind is not None and licence != bool(request.trade.strip()):
                check.fail("trade", "is required for a TRADE_LICENSE, and only for it")
            trade = check(validation.trade, request.trade.lower(), "trade")
            if not 1 <= len(request.document_upload_ids) <= 10:
                check.fail("document_upload_ids", "must list 1 to 10 documents")
            documents = [
                check(validation.uuid_id, u, f"document_upload_ids[{i}]")
                for i, u in enumerate(request.document_upload_ids)
            ]
            expires_at = (
                check(validation.moment, request.expires_at, "expires_at")
                if request.HasField("expires_at")
                else None
            )
            if expires_at is not None and expires_at <= datetime.now(UTC):
                check.fail("expires_at", "must be in the future")
            check(validation.request_id, request.request_id)
        assert kind is not None
        record = await verification.submit(
            self._db, caller.current().user_id, kind, trade, expires_at, documents
        )
        return V.SubmitVerificationResponse(verification=convert.verification(record))

    async def ListMyVerifications(
        self, request: V.ListMyVerificationsRequest, context: Context
    ) -> V.ListMyVerificationsResponse:
        with Checks() as check:
            limit = lists.page_size(check, request.page_size)
            after = lists.after(check, self._secret, MINE, request.page_token)
        found = await verification.mine(self._db, caller.current().user_id, after, limit + 1)
        page, token = pagination.split(self._secret, MINE, found, limit, _submitted)
        return V.ListMyVerificationsResponse(
            verifications=[convert.verification(v) for v in page], next_page_token=token
        )

    async def ListPendingVerifications(
        self, request: V.ListPendingVerificationsRequest, context: Context
    ) -> V.ListPendingVerificationsResponse:
        with Checks() as check:
            limit = lists.page_size(check, request.page_size)
            kinds = lists.filters(check, request.kinds, convert.VERIFICATION_KINDS, "kinds")
            kind = lists.kind("pending-verifications", kinds)
            after = lists.after(check, self._secret, kind, request.page_token)
        found = await verification.pending(self._db, after, limit + 1, kinds)
        page, token = pagination.split(self._secret, kind, found, limit, _submitted)
        return V.ListPendingVerificationsResponse(
            verifications=[convert.verification(v) for v in page], next_page_token=token
        )

    async def ReviewVerification(
        self, request: V.ReviewVerificationRequest, context: Context
    ) -> V.ReviewVerificationResponse:
        with Checks() as check:
            record_id = check(validation.uuid_id, request.verification_id, "verification_id")
            decision = request.decision
            if decision not in (V.VERIFICATION_DECISION_APPROVE, V.VERIFICATION_DECISION_REJECT):
                check.fail("decision", "must be VERIFICATION_DECISION_APPROVE or _REJECT")
            approve = decision == V.VERIFICATION_DECISION_APPROVE
            low = 1 if decision == V.VERIFICATION_DECISION_REJECT else 0  # a rejection says why
            reason = check(validation.text, request.reason, "reason", low=low, high=2000)
            check(validation.request_id, request.request_id)
        record = await verification.review(
            self._db, caller.current().user_id, record_id, approve, reason
        )
        return V.ReviewVerificationResponse(verification=convert.verification(record))
