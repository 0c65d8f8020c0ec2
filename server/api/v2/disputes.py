"""hustle.v2.DisputeService: input checks (every invalid field at once) and translation; the
rules live in server.domain.disputes."""

from __future__ import annotations

from typing import Any

from grpc import aio

from hustle.v2 import dispute_pb2, dispute_pb2_grpc
from server import caller, pagination, validation
from server.api.v2 import convert, lists
from server.config import Settings
from server.db import Database
from server.domain import disputes
from server.domain.records import Resolution
from server.validation import Checks

Context = aio.ServicerContext[Any, Any]
text = validation.text
OPEN_DISPUTES = lists.kind("open-disputes")


class DisputeService(dispute_pb2_grpc.DisputeServiceServicer):
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._secret = settings.secret_key.get_secret_value()

    async def OpenDispute(
        self, request: dispute_pb2.OpenDisputeRequest, context: Context
    ) -> dispute_pb2.OpenDisputeResponse:
        with Checks() as check:
            task_id = check(validation.uuid_id, request.task_id, "task_id")
            reason = check(text, request.reason, "reason", low=1, high=2000)
            check(validation.request_id, request.request_id)
        dispute, task = await disputes.open_dispute(self._db, caller.current(), task_id, reason)
        return dispute_pb2.OpenDisputeResponse(
            dispute=convert.dispute(dispute, task.currency), task=convert.task(task)
        )

    async def ResolveDispute(
        self, request: dispute_pb2.ResolveDisputeRequest, context: Context
    ) -> dispute_pb2.ResolveDisputeResponse:
        split: int | None = None
        with Checks() as check:
            dispute_id = check(validation.uuid_id, request.dispute_id, "dispute_id")
            resolution = convert.RESOLUTIONS.to_domain(request.resolution)
            if resolution is None:
                check.fail("resolution", "must be RELEASE, REFUND or SPLIT")
            elif resolution is Resolution.SPLIT:
                split = request.split_release.amount_cents
                if split <= 0:
                    check.fail("split_release.amount_cents", "must be more than 0 for a SPLIT")
                if request.split_release.currency not in ("", "USD"):
                    check.fail("split_release.currency", "must be USD")
            elif request.HasField("split_release"):
                check.fail("split_release", "is only for a SPLIT")
            note = check(text, request.note, "note", low=0, high=2000)
            check(validation.request_id, request.request_id)
        assert resolution is not None
        dispute, task = await disputes.resolve(
            self._db, caller.current().user_id, dispute_id, resolution, split, note
        )
        return dispute_pb2.ResolveDisputeResponse(
            dispute=convert.dispute(dispute, task.currency), task=convert.task(task)
        )

    async def GetMyDispute(
        self, request: dispute_pb2.GetMyDisputeRequest, context: Context
    ) -> dispute_pb2.GetMyDisputeResponse:
        with Checks() as check:
            dispute_id = check(validation.uuid_id, request.dispute_id, "dispute_id")
        view = await disputes.for_party(self._db, caller.current(), dispute_id)
        return dispute_pb2.GetMyDisputeResponse(
            dispute=convert.dispute(view.dispute, view.task.currency),
            task=convert.task(view.task),
            proofs=[convert.proof(p) for p in view.proofs],
        )

    async def ListOpenDisputes(
        self, request: dispute_pb2.ListOpenDisputesRequest, context: Context
    ) -> dispute_pb2.ListOpenDisputesResponse:
        with Checks() as check:
            limit = lists.page_size(check, request.page_size)
            after = lists.after(check, self._secret, OPEN_DISPUTES, request.page_token)
        found = await disputes.list_open(self._db, after, limit + 1)
        page, token = pagination.split_keyed(self._secret, OPEN_DISPUTES, found, limit)
        return dispute_pb2.ListOpenDisputesResponse(
            disputes=[convert.dispute(d) for d in page], next_page_token=token
        )
