"""hustle.v1.VerificationService: translation only; the rules live in server.domain.verification."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from grpc import aio

from hustle.v1 import verification_pb2, verification_pb2_grpc
from server import caller, pagination, validation
from server.api.v1 import convert
from server.config import Settings
from server.db import Database
from server.domain import verification
from server.domain.records import Verification, VerificationKind
from server.errors import invalid

Context = aio.ServicerContext[Any, Any]
V = verification_pb2


def _queue_position(record: Verification) -> list[str]:
    return [record.submitted_at.isoformat(), record.id]


class VerificationService(verification_pb2_grpc.VerificationServiceServicer):
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._secret = settings.secret_key.get_secret_value()

    async def SubmitVerification(
        self, request: V.SubmitVerificationRequest, context: Context
    ) -> V.SubmitVerificationResponse:
        kind = convert.VERIFICATION_KINDS.to_domain(request.kind)
        if kind is None:
            raise invalid("kind", "must be TRADE_LICENSE, INSURANCE, BACKGROUND_CHECK or ID")
        trade = request.trade.strip().lower() or None
        if (kind is VerificationKind.TRADE_LICENSE) != (trade is not None):
            raise invalid("trade", "is required for a TRADE_LICENSE, and only for it")
        trade = validation.trade(trade or "", "trade")
        if not 1 <= len(request.document_upload_ids) <= 10:
            raise invalid("document_upload_ids", "must list 1 to 10 documents")
        documents = [
            validation.uuid_id(u, f"document_upload_ids[{i}]")
            for i, u in enumerate(request.document_upload_ids)
        ]
        expires_at = (
            validation.moment(request.expires_at, "expires_at")
            if request.HasField("expires_at")
            else None
        )
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise invalid("expires_at", "must be in the future")
        record = await verification.submit(
            self._db, caller.current().user_id, kind, trade, expires_at, documents
        )
        return V.SubmitVerificationResponse(verification=convert.verification(record))

    async def ListMyVerifications(
        self, request: V.ListMyVerificationsRequest, context: Context
    ) -> V.ListMyVerificationsResponse:
        found = await verification.mine(self._db, caller.current().user_id)
        return V.ListMyVerificationsResponse(verifications=[convert.verification(v) for v in found])

    async def ListPendingVerifications(
        self, request: V.ListPendingVerificationsRequest, context: Context
    ) -> V.ListPendingVerificationsResponse:
        limit = validation.page_size(request.page_size, default=20, maximum=100)
        after = pagination.decode(self._secret, "pending-verifications", request.page_token)
        found = await verification.pending(self._db, after, limit + 1)
        page, token = pagination.split(
            self._secret, "pending-verifications", found, limit, _queue_position
        )
        return V.ListPendingVerificationsResponse(
            verifications=[convert.verification(v) for v in page], next_page_token=token
        )

    async def ReviewVerification(
        self, request: V.ReviewVerificationRequest, context: Context
    ) -> V.ReviewVerificationResponse:
        record_id = validation.uuid_id(request.verification_id, "verification_id")
        reason = validation.text(
            request.reason, "reason", low=0 if request.approve else 1, high=2000
        )
        record = await verification.review(
            self._db, caller.current().user_id, record_id, request.approve, reason
        )
        return V.ReviewVerificationResponse(verification=convert.verification(record))
