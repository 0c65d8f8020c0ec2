"""hustle.v1.TaskService: translation and input checks; the rules live in server.domain."""

from __future__ import annotations

from typing import Any

from grpc import aio

from hustle.v1 import task_pb2, task_pb2_grpc
from server import caller, pagination, validation
from server.api.v1 import convert
from server.cache import FeedCache
from server.config import Settings
from server.db import Database
from server.domain import proofs, tasks
from server.domain.records import Task
from server.errors import invalid

Context = aio.ServicerContext[Any, Any]
text = validation.text


def draft(request: task_pb2.CreateTaskRequest) -> tasks.TaskDraft:
    if not request.HasField("price"):
        raise invalid("price", "is required")
    if request.price.amount_cents < 500:
        raise invalid("price.amount_cents", "must be at least 500 (5.00 USD)")
    if request.price.currency not in ("", "USD"):
        raise invalid("price.currency", "must be USD")
    category = validation.category(request.category)
    if not request.HasField("location"):
        raise invalid("location", "is required")
    if not request.HasField("deadline"):
        raise invalid("deadline", "is required")
    requirements = request.requirements
    trade = validation.trade(requirements.required_trade, "requirements.required_trade")
    if not 0 <= requirements.required_trust_tier <= 4:
        raise invalid("requirements.required_trust_tier", "must be between 1 and 4")
    latitude, longitude = validation.point(request.location)
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
        deadline=validation.deadline(validation.moment(request.deadline, "deadline")),
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
        new = draft(request)
        task = await tasks.create(self._db, caller.current().user_id, new)
        return task_pb2.CreateTaskResponse(task=convert.task(task))

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
            validation.point(request.location) if request.HasField("location") else (None, None)
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
            deadline=validation.deadline(validation.moment(request.deadline, "deadline"))
            if request.HasField("deadline")
            else None,
        )
        task = await tasks.update(self._db, self._cache, caller.current().user_id, task_id, changes)
        return task_pb2.UpdateTaskResponse(task=convert.task(task))

    async def FundTask(
        self, request: task_pb2.FundTaskRequest, context: Context
    ) -> task_pb2.FundTaskResponse:
        task_id = validation.uuid_id(request.task_id, "task_id")
        reference = text(request.payment_reference, "payment_reference", low=1, high=200)
        task = await tasks.fund(self._db, self._cache, caller.current().user_id, task_id, reference)
        return task_pb2.FundTaskResponse(task=convert.task(task))

    async def CancelTask(
        self, request: task_pb2.CancelTaskRequest, context: Context
    ) -> task_pb2.CancelTaskResponse:
        task_id = validation.uuid_id(request.task_id, "task_id")
        reason = text(request.reason, "reason", low=0, high=500)
        task = await tasks.cancel(self._db, self._cache, caller.current(), task_id, reason)
        return task_pb2.CancelTaskResponse(task=convert.task(task))

    async def ApproveProof(
        self, request: task_pb2.ApproveProofRequest, context: Context
    ) -> task_pb2.ApproveProofResponse:
        task_id = validation.uuid_id(request.task_id, "task_id")
        task, xp = await proofs.approve(self._db, caller.current().user_id, task_id)
        return task_pb2.ApproveProofResponse(task=convert.task(task), xp_awarded=xp)

    async def RejectProof(
        self, request: task_pb2.RejectProofRequest, context: Context
    ) -> task_pb2.RejectProofResponse:
        task_id = validation.uuid_id(request.task_id, "task_id")
        reason = text(request.reason, "reason", low=1, high=2000)
        task = await proofs.reject(self._db, caller.current().user_id, task_id, reason)
        return task_pb2.RejectProofResponse(task=convert.task(task))

    async def _page(
        self, kind: str, size: int, token: str, tasks_of: tasks.TaskList
    ) -> tuple[list[task_pb2.Task], str]:
        limit = validation.page_size(size, default=20, maximum=100)
        after = pagination.decode(self._secret, kind, token)
        found: list[Task] = await tasks_of(self._db, caller.current().user_id, after, limit + 1)
        page, next_token = pagination.split_keyed(self._secret, kind, found, limit)
        return [convert.task(t) for t in page], next_token

    async def ListMyPostedTasks(
        self, request: task_pb2.ListMyPostedTasksRequest, context: Context
    ) -> task_pb2.ListMyPostedTasksResponse:
        items, token = await self._page(
            "posted", request.page_size, request.page_token, tasks.list_posted
        )
        return task_pb2.ListMyPostedTasksResponse(tasks=items, next_page_token=token)

    async def ListMyAcceptedTasks(
        self, request: task_pb2.ListMyAcceptedTasksRequest, context: Context
    ) -> task_pb2.ListMyAcceptedTasksResponse:
        items, token = await self._page(
            "accepted", request.page_size, request.page_token, tasks.list_accepted
        )
        return task_pb2.ListMyAcceptedTasksResponse(tasks=items, next_page_token=token)

    async def GetTask(
        self, request: task_pb2.GetTaskRequest, context: Context
    ) -> task_pb2.GetTaskResponse:
        task = await tasks.get(
            self._db, caller.current(), validation.uuid_id(request.task_id, "task_id")
        )
        return task_pb2.GetTaskResponse(task=convert.task(task))

    async def AcceptTask(
        self, request: task_pb2.AcceptTaskRequest, context: Context
    ) -> task_pb2.AcceptTaskResponse:
        task_id = validation.uuid_id(request.task_id, "task_id")
        task = await tasks.accept(self._db, self._cache, caller.current().user_id, task_id)
        return task_pb2.AcceptTaskResponse(task=convert.task(task))

    async def SubmitProof(
        self, request: task_pb2.SubmitProofRequest, context: Context
    ) -> task_pb2.SubmitProofResponse:
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
        task, proof = await proofs.submit(self._db, caller.current().user_id, task_id, photos, note)
        return task_pb2.SubmitProofResponse(task=convert.task(task), proof=convert.proof(proof))

    async def ListTaskProofs(
        self, request: task_pb2.ListTaskProofsRequest, context: Context
    ) -> task_pb2.ListTaskProofsResponse:
        who = caller.current()
        found = await proofs.list_for(
            self._db, who.user_id, who.is_admin, validation.uuid_id(request.task_id, "task_id")
        )
        return task_pb2.ListTaskProofsResponse(proofs=[convert.proof(p) for p in found])
