"""hustle.v1.VerificationService: translation only; the rules live in server.domain.verification."""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from grpc import aio

from hustle.v1 import verification_pb2, verification_pb2_grpc
from server import caller, pagination, validation
from server.api.v1 import convert
from server.api.v1.tasks import text
from server.config import Settings
from server.db import Database
from server.domain import verification
from server.errors import invalid

Context = aio.ServicerContext[Any, Any]
V = verification_pb2
KINDS = {
    V.VERIFICATION_KIND_TRADE_LICENSE: "TRADE_LICENSE",
    V.VERIFICATION_KIND_INSURANCE: "INSURANCE",
    V.VERIFICATION_KIND_BACKGROUND_CHECK: "BACKGROUND_CHECK",
    V.VERIFICATION_KIND_ID: "ID",
}
KIND_VALUES = {name: value for value, name in KINDS.items()}
STATES = {
    name: getattr(V, f"VERIFICATION_STATE_{name}")
    for name in ("PENDING", "APPROVED", "REJECTED", "EXPIRED")
}
_TRADE = re.compile(r"^[a-z][a-z_]{1,39}$")


def message(row: dict[str, Any]) -> V.Verification:
    return V.Verification(
        verification_id=str(row["id"]),
        user_id=str(row["user_id"]),
        kind=KIND_VALUES[row["kind"]],
        trade=row["trade"] or "",
        state=STATES[row["state"]],
        expires_at=convert.timestamp(row["expires_at"]),
        document_upload_ids=[str(d) for d in row["documents"]],
        rejection_reason=row["rejection_reason"] or "",
        submitted_at=convert.timestamp(row["submitted_at"]),
        reviewed_at=convert.timestamp(row["reviewed_at"]),
    )


class VerificationService(verification_pb2_grpc.VerificationServiceServicer):
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._secret = settings.secret_key.get_secret_value()

    async def SubmitVerification(
        self, request: V.SubmitVerificationRequest, context: Context
    ) -> V.SubmitVerificationResponse:
        kind = KINDS.get(request.kind)
        if kind is None:
            raise invalid("kind", "must be TRADE_LICENSE, INSURANCE, BACKGROUND_CHECK or ID")
        trade = request.trade.strip().lower() or None
        if (kind == "TRADE_LICENSE") != (trade is not None):
            raise invalid("trade", "is required for a TRADE_LICENSE, and only for it")
        if trade is not None and not _TRADE.match(trade):
            raise invalid("trade", "must be a lower-case trade such as electrician")
        if not 1 <= len(request.document_upload_ids) <= 10:
            raise invalid("document_upload_ids", "must list 1 to 10 documents")
        documents = [
            validation.uuid_id(u, f"document_upload_ids[{i}]")
            for i, u in enumerate(request.document_upload_ids)
        ]
        expires_at = (
            request.expires_at.ToDatetime(tzinfo=UTC) if request.HasField("expires_at") else None
        )
        row = await verification.submit(
            self._db, caller.current().user_id, kind, trade, expires_at, documents
        )
        return V.SubmitVerificationResponse(verification=message(row))

    async def ListMyVerifications(
        self, request: V.ListMyVerificationsRequest, context: Context
    ) -> V.ListMyVerificationsResponse:
        rows = await verification.mine(self._db, caller.current().user_id)
        return V.ListMyVerificationsResponse(verifications=[message(r) for r in rows])

    async def ListPendingVerifications(
        self, request: V.ListPendingVerificationsRequest, context: Context
    ) -> V.ListPendingVerificationsResponse:
        limit = validation.page_size(request.page_size, default=20, maximum=100)
        after = pagination.decode(self._secret, "pending-verifications", request.page_token)
        rows = await verification.pending(self._db, after, limit + 1)
        page, token = pagination.split(
            self._secret,
            "pending-verifications",
            rows,
            limit,
            lambda row: pagination.keyset(row, "submitted_at"),
        )
        return V.ListPendingVerificationsResponse(
            verifications=[message(r) for r in page], next_page_token=token
        )

    async def ReviewVerification(
        self, request: V.ReviewVerificationRequest, context: Context
    ) -> V.ReviewVerificationResponse:
        record_id = validation.uuid_id(request.verification_id, "verification_id")
        reason = text(request.reason, "reason", low=0 if request.approve else 1, high=2000)
        row = await verification.review(
            self._db, caller.current().user_id, record_id, request.approve, reason
        )
        return V.ReviewVerificationResponse(verification=message(row))
