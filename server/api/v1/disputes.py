"""hustle.v1.DisputeService: translation only; the rules live in server.domain.disputes."""

from __future__ import annotations

from typing import Any

from grpc import aio

from hustle.v1 import dispute_pb2, dispute_pb2_grpc
from server import caller, pagination, validation
from server.api.v1 import convert
from server.config import Settings
from server.db import Database
from server.domain import disputes
from server.domain.records import Resolution
from server.errors import invalid

Context = aio.ServicerContext[Any, Any]
text = validation.text


class DisputeService(dispute_pb2_grpc.DisputeServiceServicer):
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._secret = settings.secret_key.get_secret_value()

    async def OpenDispute(
        self, request: dispute_pb2.OpenDisputeRequest, context: Context
    ) -> dispute_pb2.OpenDisputeResponse:
        task_id = validation.uuid_id(request.task_id, "task_id")
        reason = text(request.reason, "reason", low=1, high=2000)
        dispute, task = await disputes.open_dispute(self._db, caller.current(), task_id, reason)
        return dispute_pb2.OpenDisputeResponse(
            dispute=convert.dispute(dispute), task=convert.task(task)
        )

    async def ResolveDispute(
        self, request: dispute_pb2.ResolveDisputeRequest, context: Context
    ) -> dispute_pb2.ResolveDisputeResponse:
        dispute_id = validation.uuid_id(request.dispute_id, "dispute_id")
        resolution = convert.RESOLUTIONS.to_domain(request.resolution)
        if resolution is None:
            raise invalid("resolution", "must be RELEASE, REFUND or SPLIT")
        split = None
        if resolution is Resolution.SPLIT:
            if request.split_release.amount_cents <= 0:
                raise invalid("split_release.amount_cents", "must be more than 0 for a SPLIT")
            split = request.split_release.amount_cents
        elif request.HasField("split_release"):
            raise invalid("split_release", "is only for a SPLIT")
        note = text(request.note, "note", low=0, high=2000)
        dispute, task = await disputes.resolve(
            self._db, caller.current().user_id, dispute_id, resolution, split, note
        )
        return dispute_pb2.ResolveDisputeResponse(
            dispute=convert.dispute(dispute), task=convert.task(task)
        )

    async def ListOpenDisputes(
        self, request: dispute_pb2.ListOpenDisputesRequest, context: Context
    ) -> dispute_pb2.ListOpenDisputesResponse:
        limit = validation.page_size(request.page_size, default=20, maximum=100)
        after = pagination.decode(self._secret, "open-disputes", request.page_token)
        found = await disputes.list_open(self._db, after, limit + 1)
        page, token = pagination.split_keyed(self._secret, "open-disputes", found, limit)
        return dispute_pb2.ListOpenDisputesResponse(
            disputes=[convert.dispute(d) for d in page], next_page_token=token
        )
