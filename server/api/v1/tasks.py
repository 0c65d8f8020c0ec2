"""hustle.v1.TaskService: translation and input checks; the rules live in server.domain."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from grpc import aio

from hustle.v1 import common_pb2, task_pb2, task_pb2_grpc
from server import caller, idempotency, pagination, validation
from server.api.v1 import convert
from server.cache import FeedCache
from server.config import Settings
from server.db import Database
from server.domain import proofs, tasks
from server.errors import invalid
from server.interceptors.base import metadata_value

Context = aio.ServicerContext[Any, Any]
_CATEGORY = re.compile(r"^[A-Z][A-Z_]{1,39}$")
_TRADE = re.compile(r"^[a-z][a-z_]{1,39}$")
_METHOD = "/hustle.v1.TaskService/"


def text(value: str, field: str, *, low: int, high: int) -> str:
    cleaned = value.strip()
    if not low <= len(cleaned) <= high:
        raise invalid(field, f"must have {low} to {high} characters")
    return cleaned


def point(message: common_pb2.LatLng, field: str = "location") -> tuple[float, float]:
    if not -90 <= message.latitude <= 90:
        raise invalid(f"{field}.latitude", "must be between -90 and 90")
    if not -180 <= message.longitude <= 180:
        raise invalid(f"{field}.longitude", "must be between -180 and 180")
    return message.latitude, message.longitude


def deadline(value: datetime) -> datetime:
    now = datetime.now(UTC)
    if not now + timedelta(minutes=10) <= value <= now + timedelta(days=90):
        raise invalid("deadline", "must be between 10 minutes and 90 days from now")
    return value


def draft(request: task_pb2.CreateTaskRequest) -> tasks.TaskDraft:
    if not request.HasField("price"):
        raise invalid("price", "is required")
    if request.price.amount_cents < 500:
        raise invalid("price.amount_cents", "must be at least 500 (5.00 USD)")
    if request.price.currency not in ("", "USD"):
        raise invalid("price.currency", "must be USD")
    category = request.category.strip().upper()
    if not _CATEGORY.match(category):
        raise invalid("category", "must be an upper-case word such as PLUMBING")
    if not request.HasField("location"):
        raise invalid("location", "is required")
    if not request.HasField("deadline"):
        raise invalid("deadline", "is required")
    requirements = request.requirements
    trade = requirements.required_trade.strip() or None
    if trade is not None and not _TRADE.match(trade):
        raise invalid(
            "requirements.required_trade", "must be a lower-case trade such as electrician"
        )
    if not 0 <= requirements.required_trust_tier <= 4:
        raise invalid("requirements.required_trust_tier", "must be between 1 and 4")
    latitude, longitude = point(request.location)
    return tasks.TaskDraft(
        title=text(request.title, "title", low=1, high=255),
        description=text(request.description, "description", low=0, high=5000),
        category=category,
        price_cents=request.price.amount_cents,
        currency="USD",
        address=text(request.address, "address", low=1, high=500),
        location_state=validation.state_code(request.location_state),
        latitude=latitude,
        longitude=longitude,
        urgent=request.urgent,
        deadline=deadline(request.deadline.ToDatetime(tzinfo=UTC)),
        required_trade=trade,
        required_trust_tier=requirements.required_trust_tier or 1,
        insurance_required=requirements.insurance_required,
        background_check_required=requirements.background_check_required,
    )


class TaskService(task_pb2_grpc.TaskServiceServicer):
    def __init__(self, db: Database, cache: FeedCache, settings: Settings) -> None:
        self._db = db
        self._cache = cache
        self._secret = settings.secret_key.get_secret_value()

    async def CreateTask(
        self, request: task_pb2.CreateTaskRequest, context: Context
    ) -> task_pb2.CreateTaskResponse:
        who = caller.current()
        new = draft(request)

        async def run() -> task_pb2.CreateTaskResponse:
            return task_pb2.CreateTaskResponse(
                task=convert.task(await tasks.create(self._db, who.user_id, new))
            )

        return await idempotency.once(
            self._db,
            who.user_id,
            _METHOD + "CreateTask",
            metadata_value(context, idempotency.HEADER),
            request,
            task_pb2.CreateTaskResponse,
            run,
        )

    async def UpdateTask(
        self, request: task_pb2.UpdateTaskRequest, context: Context
    ) -> task_pb2.UpdateTaskResponse:
        task_id = validation.uuid_id(request.task_id, "task_id")
        moves = [
            request.HasField("address"),
            request.HasField("location_state"),
            request.HasField("location"),
        ]
        if any(moves) and not all(moves):
            raise invalid("location", "address, location_state and location change together")
        latitude, longitude = (
            point(request.location) if request.HasField("location") else (None, None)
        )
        changes = tasks.TaskChanges(
            title=text(request.title, "title", low=1, high=255)
            if request.HasField("title")
            else None,
            description=text(request.description, "description", low=0, high=5000)
            if request.HasField("description")
            else None,
            address=text(request.address, "address", low=1, high=500)
            if request.HasField("address")
            else None,
            location_state=validation.state_code(request.location_state)
            if request.HasField("location_state")
            else None,
            latitude=latitude,
            longitude=longitude,
            urgent=request.urgent if request.HasField("urgent") else None,
            deadline=deadline(request.deadline.ToDatetime(tzinfo=UTC))
            if request.HasField("deadline")
            else None,
        )
        row = await tasks.update(self._db, self._cache, caller.current().user_id, task_id, changes)
        return task_pb2.UpdateTaskResponse(task=convert.task(row))

    async def FundTask(
        self, request: task_pb2.FundTaskRequest, context: Context
    ) -> task_pb2.FundTaskResponse:
        who = caller.current()
        task_id = validation.uuid_id(request.task_id, "task_id")
        reference = text(request.payment_reference, "payment_reference", low=1, high=200)

        async def run() -> task_pb2.FundTaskResponse:
            row = await tasks.fund(self._db, self._cache, who.user_id, task_id, reference)
            return task_pb2.FundTaskResponse(task=convert.task(row))

        return await idempotency.once(
            self._db,
            who.user_id,
            _METHOD + "FundTask",
            metadata_value(context, idempotency.HEADER),
            request,
            task_pb2.FundTaskResponse,
            run,
        )

    async def CancelTask(
        self, request: task_pb2.CancelTaskRequest, context: Context
    ) -> task_pb2.CancelTaskResponse:
        task_id = validation.uuid_id(request.task_id, "task_id")
        reason = text(request.reason, "reason", low=0, high=500)
        row = await tasks.cancel(self._db, self._cache, caller.current(), task_id, reason)
        return task_pb2.CancelTaskResponse(task=convert.task(row))

    async def ApproveProof(
        self, request: task_pb2.ApproveProofRequest, context: Context
    ) -> task_pb2.ApproveProofResponse:
        task_id = validation.uuid_id(request.task_id, "task_id")
        row, xp = await proofs.approve(self._db, caller.current().user_id, task_id)
        return task_pb2.ApproveProofResponse(task=convert.task(row), xp_awarded=xp)

    async def RejectProof(
        self, request: task_pb2.RejectProofRequest, context: Context
    ) -> task_pb2.RejectProofResponse:
        task_id = validation.uuid_id(request.task_id, "task_id")
        reason = text(request.reason, "reason", low=1, high=2000)
        row = await proofs.reject(self._db, caller.current().user_id, task_id, reason)
        return task_pb2.RejectProofResponse(task=convert.task(row))

    async def _page(
        self, query: str, kind: str, size: int, token: str
    ) -> tuple[list[task_pb2.Task], str]:
        limit = validation.page_size(size, default=20, maximum=100)
        after = pagination.decode(self._secret, kind, token)
        rows = await tasks.list_mine(self._db, query, caller.current().user_id, after, limit + 1)
        page, next_token = pagination.split(self._secret, kind, rows, limit)
        return [convert.task(r) for r in page], next_token

    async def ListMyPostedTasks(
        self, request: task_pb2.ListMyPostedTasksRequest, context: Context
    ) -> task_pb2.ListMyPostedTasksResponse:
        items, token = await self._page(
            "list_posted", "posted", request.page_size, request.page_token
        )
        return task_pb2.ListMyPostedTasksResponse(tasks=items, next_page_token=token)

    async def ListMyAcceptedTasks(
        self, request: task_pb2.ListMyAcceptedTasksRequest, context: Context
    ) -> task_pb2.ListMyAcceptedTasksResponse:
        items, token = await self._page(
            "list_accepted", "accepted", request.page_size, request.page_token
        )
        return task_pb2.ListMyAcceptedTasksResponse(tasks=items, next_page_token=token)

    async def GetTask(
        self, request: task_pb2.GetTaskRequest, context: Context
    ) -> task_pb2.GetTaskResponse:
        row = await tasks.get(
            self._db, caller.current(), validation.uuid_id(request.task_id, "task_id")
        )
        return task_pb2.GetTaskResponse(task=convert.task(row))

    async def AcceptTask(
        self, request: task_pb2.AcceptTaskRequest, context: Context
    ) -> task_pb2.AcceptTaskResponse:
        task_id = validation.uuid_id(request.task_id, "task_id")
        row = await tasks.accept(self._db, self._cache, caller.current().user_id, task_id)
        return task_pb2.AcceptTaskResponse(task=convert.task(row))

    async def SubmitProof(
        self, request: task_pb2.SubmitProofRequest, context: Context
    ) -> task_pb2.SubmitProofResponse:
        who = caller.current()
        task_id = validation.uuid_id(request.task_id, "task_id")
        if not 1 <= len(request.photo_upload_ids) <= 5:
            raise invalid("photo_upload_ids", "must list 1 to 5 photos")
        photos = [
            validation.uuid_id(u, f"photo_upload_ids[{i}]")
            for i, u in enumerate(request.photo_upload_ids)
        ]
        if len(set(photos)) != len(photos):
            raise invalid("photo_upload_ids", "must not repeat a photo")
        note = text(request.note, "note", low=0, high=2000)

        async def run() -> task_pb2.SubmitProofResponse:
            row, proof = await proofs.submit(self._db, who.user_id, task_id, photos, note)
            return task_pb2.SubmitProofResponse(task=convert.task(row), proof=convert.proof(proof))

        return await idempotency.once(
            self._db,
            who.user_id,
            _METHOD + "SubmitProof",
            metadata_value(context, idempotency.HEADER),
            request,
            task_pb2.SubmitProofResponse,
            run,
        )

    async def ListTaskProofs(
        self, request: task_pb2.ListTaskProofsRequest, context: Context
    ) -> task_pb2.ListTaskProofsResponse:
        who = caller.current()
        rows = await proofs.list_for(
            self._db, who.user_id, who.is_admin, validation.uuid_id(request.task_id, "task_id")
        )
        return task_pb2.ListTaskProofsResponse(proofs=[convert.proof(r) for r in rows])
