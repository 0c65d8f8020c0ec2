"""hustle.v2.TaskService: input checks (every invalid field at once) and translation; the rules
live in server.domain.tasks and server.domain.proofs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio

from hustle.v2 import common_pb2, task_pb2, task_pb2_grpc
from server import caller, pagination, validation
from server.api.v2 import convert, lists
from server.api.v2.watch import TaskWatch
from server.cache import FeedCache
from server.config import Settings
from server.db import Database
from server.domain import proofs, tasks
from server.domain.records import Task, TaskState, TrustTier
from server.errors import invalid
from server.validation import Checks
from server.watch import WatchHub

Context = aio.ServicerContext[Any, Any]
text = validation.text
# tasks.list_posted / list_accepted, with their `states` filter
FilteredList = Callable[
    [Database, str, list[str] | None, int, Sequence[TaskState]], Awaitable[list[Task]]
]

# UpdateTask's changeable fields (the contract's list), and those that move together.
CHANGEABLE = ("title", "description", "urgent", "deadline", "address", "location_state", "location")
PLACE = frozenset({"address", "location_state", "location"})
MIN_PRICE_CENTS = 500


def _is_set(task: task_pb2.Task, name: str) -> bool:
    """Whether a changeable field of `task` holds a value (what an absent mask names)."""
    if name == "deadline":
        return task.HasField("deadline")
    if name == "location":
        return task.HasField("location")
    return bool(getattr(task, name))


def _required_time(value: Timestamp, present: bool, field: str) -> datetime:
    if not present:
        raise invalid(field, "is required")
    return validation.moment(value, field)


def _required_point(value: common_pb2.LatLng, present: bool, field: str) -> tuple[float, float]:
    if not present:
        raise invalid(field, "is required")
    return validation.point(value, field)


def _price(price: common_pb2.Money, present: bool, field: str) -> int:
    if not present:
        raise invalid(field, "is required")
    if price.amount_cents < MIN_PRICE_CENTS:
        raise invalid(f"{field}.amount_cents", "must be at least 500 (5.00 USD)")
    return price.amount_cents


def _currency(price: common_pb2.Money, field: str) -> str:
    if price.currency not in ("", "USD"):
        raise invalid(field, "must be USD")
    return "USD"


def _tier(value: int, field: str) -> int:
    if value == 0:
        return int(TrustTier.ROOKIE)  # unspecified: no minimum
    tier = convert.TRUST_TIERS.to_domain(value)
    if tier is None:
        raise invalid(field, "must be a TrustTier (or unspecified: no minimum)")
    return int(tier)


def draft(request: task_pb2.CreateTaskRequest, check: Checks) -> tasks.TaskDraft:
    """The task to post, every field checked (the output-only ones are ignored)."""
    task = request.task
    title = check(text, task.title, "task.title", low=1, high=255)
    description = check(text, task.description, "task.description", low=0, high=5000)
    category = check(validation.category, task.category, "task.category")
    price = check(_price, task.price, task.HasField("price"), "task.price")
    currency = check(_currency, task.price, "task.price.currency")
    address = check(text, task.address, "task.address", low=1, high=500)
    state = check(validation.state_code, task.location_state, "task.location_state")
    point = check(_required_point, task.location, task.HasField("location"), "task.location")
    deadline = check(_required_time, task.deadline, task.HasField("deadline"), "task.deadline")
    if deadline is not None:
        check(validation.deadline, deadline, "task.deadline")
    needs = task.requirements
    field = "task.requirements"
    trade = check(validation.trade, needs.required_trade, f"{field}.required_trade")
    tier = check(_tier, needs.required_trust_tier, f"{field}.required_trust_tier")
    check(validation.request_id, request.request_id)
    check.raise_if_any()
    latitude, longitude = point
    return tasks.TaskDraft(
        title=title,
        description=description,
        category=category,
        price_cents=price,
        currency=currency,
        address=address,
        location_state=state,
        latitude=latitude,
        longitude=longitude,
        urgent=task.urgent,
        deadline=deadline,
        required_trade=trade,
        required_trust_tier=tier,
        insurance_required=needs.insurance_required,
        background_check_required=needs.background_check_required,
    )


def changes(request: task_pb2.UpdateTaskRequest, check: Checks) -> tasks.TaskChanges:
    """The fields the mask names (AIP-134), with their new values checked."""
    task = request.task
    set_fields = [name for name in CHANGEABLE if _is_set(task, name)]
    paths = request.update_mask.paths
    named = check(validation.update_paths, paths, CHANGEABLE, set_fields)
    if check.failed("update_mask"):  # some paths are not changeable: check the others' values
        named = frozenset(p for p in paths if p in CHANGEABLE)
    if named & PLACE and not named >= PLACE:
        check.fail("update_mask", "must name address, location_state and location together")

    def new(name: str) -> bool:
        return name in named

    title = check(text, task.title, "task.title", low=1, high=255) if new("title") else None
    description = (
        check(text, task.description, "task.description", low=0, high=5000)
        if new("description")
        else None
    )
    address = check(text, task.address, "task.address", low=1, high=500) if new("address") else None
    state = (
        check(validation.state_code, task.location_state, "task.location_state")
        if new("location_state")
        else None
    )
    point = (
        check(_required_point, task.location, task.HasField("location"), "task.location")
        if new("location")
        else None
    )
    deadline = (
        check(_required_time, task.deadline, task.HasField("deadline"), "task.deadline")
        if new("deadline")
        else None
    )
    if deadline is not None:
        check(validation.deadline, deadline, "task.deadline")
    check.raise_if_any()
    latitude, longitude = point if point is not None else (None, None)
    return tasks.TaskChanges(
        title=title,
        description=description,
        address=address,
        location_state=state,
        latitude=latitude,
        longitude=longitude,
        urgent=task.urgent if new("urgent") else None,
        deadline=deadline,
    )


class TaskService(TaskWatch, task_pb2_grpc.TaskServiceServicer):
    """TaskService; its WatchTask stream is TaskWatch's (server/api/v2/watch.py)."""

    def __init__(self, db: Database, cache: FeedCache, settings: Settings, hub: WatchHub) -> None:
        TaskWatch.__init__(self, db, hub)
        self._db = db
        self._cache = cache
        self._secret = settings.secret_key.get_secret_value()

    async def CreateTask(
        self, request: task_pb2.CreateTaskRequest, context: Context
    ) -> task_pb2.CreateTaskResponse:
        new = draft(request, Checks())
        task = await tasks.create(self._db, caller.current().user_id, new)
        return task_pb2.CreateTaskResponse(task=convert.task(task))

    async def UpdateTask(
        self, request: task_pb2.UpdateTaskRequest, context: Context
    ) -> task_pb2.UpdateTaskResponse:
        check = Checks()
        task_id = check(validation.uuid_id, request.task.task_id, "task.task_id")
        update = changes(request, check)
        task = await tasks.update(self._db, self._cache, caller.current().user_id, task_id, update)
        return task_pb2.UpdateTaskResponse(task=convert.task(task))

    async def FundTask(
        self, request: task_pb2.FundTaskRequest, context: Context
    ) -> task_pb2.FundTaskResponse:
        with Checks() as check:
            task_id = check(validation.uuid_id, request.task_id, "task_id")
            reference = check(text, request.payment_reference, "payment_reference", low=1, high=200)
            check(validation.request_id, request.request_id)
        task = await tasks.fund(self._db, self._cache, caller.current().user_id, task_id, reference)
        return task_pb2.FundTaskResponse(task=convert.task(task))

    async def CancelTask(
        self, request: task_pb2.CancelTaskRequest, context: Context
    ) -> task_pb2.CancelTaskResponse:
        with Checks() as check:
            task_id = check(validation.uuid_id, request.task_id, "task_id")
            reason = check(text, request.reason, "reason", low=0, high=500)
            check(validation.request_id, request.request_id)
        task = await tasks.cancel(self._db, self._cache, caller.current(), task_id, reason)
        return task_pb2.CancelTaskResponse(task=convert.task(task))

    async def ApproveProof(
        self, request: task_pb2.ApproveProofRequest, context: Context
    ) -> task_pb2.ApproveProofResponse:
        with Checks() as check:
            task_id = check(validation.uuid_id, request.task_id, "task_id")
            check(validation.request_id, request.request_id)
        task, xp = await proofs.approve(self._db, caller.current().user_id, task_id)
        return task_pb2.ApproveProofResponse(task=convert.task(task), xp_awarded=xp)

    async def RejectProof(
        self, request: task_pb2.RejectProofRequest, context: Context
    ) -> task_pb2.RejectProofResponse:
        with Checks() as check:
            task_id = check(validation.uuid_id, request.task_id, "task_id")
            reason = check(text, request.reason, "reason", low=1, high=2000)
            check(validation.request_id, request.request_id)
        task = await proofs.reject(self._db, caller.current().user_id, task_id, reason)
        return task_pb2.RejectProofResponse(task=convert.task(task))

    async def _tasks(
        self,
        name: str,
        request: task_pb2.ListMyPostedTasksRequest | task_pb2.ListMyAcceptedTasksRequest,
        tasks_of: FilteredList,
    ) -> tuple[list[task_pb2.Task], str]:
        with Checks() as check:
            limit = lists.page_size(check, request.page_size)
            states = lists.filters(check, request.states, convert.TASK_STATES, "states")
            kind = lists.kind(name, states)
            after = lists.after(check, self._secret, kind, request.page_token)
        user_id = caller.current().user_id
        found = await tasks_of(self._db, user_id, after, limit + 1, states)
        page, token = pagination.split_keyed(self._secret, kind, found, limit)
        return [convert.task(t) for t in page], token

    async def ListMyPostedTasks(
        self, request: task_pb2.ListMyPostedTasksRequest, context: Context
    ) -> task_pb2.ListMyPostedTasksResponse:
        items, token = await self._tasks("posted", request, tasks.list_posted)
        return task_pb2.ListMyPostedTasksResponse(tasks=items, next_page_token=token)

    async def ListMyAcceptedTasks(
        self, request: task_pb2.ListMyAcceptedTasksRequest, context: Context
    ) -> task_pb2.ListMyAcceptedTasksResponse:
        items, token = await self._tasks("accepted", request, tasks.list_accepted)
        return task_pb2.ListMyAcceptedTasksResponse(tasks=items, next_page_token=token)

    async def GetTask(
        self, request: task_pb2.GetTaskRequest, context: Context
    ) -> task_pb2.GetTaskResponse:
        with Checks() as check:
            task_id = check(validation.uuid_id, request.task_id, "task_id")
        task = await tasks.get(self._db, caller.current(), task_id)
        return task_pb2.GetTaskResponse(task=convert.task(task))

    async def AcceptTask(
        self, request: task_pb2.AcceptTaskRequest, context: Context
    ) -> task_pb2.AcceptTaskResponse:
        with Checks() as check:
            task_id = check(validation.uuid_id, request.task_id, "task_id")
            check(validation.request_id, request.request_id)
        task = await tasks.accept(self._db, self._cache, caller.current().user_id, task_id)
        return task_pb2.AcceptTaskResponse(task=convert.task(task))

    async def SubmitProof(
        self, request: task_pb2.SubmitProofRequest, context: Context
    ) -> task_pb2.SubmitProofResponse:
        with Checks() as check:
            task_id = check(validation.uuid_id, request.task_id, "task_id")
            if not 1 <= len(request.photo_upload_ids) <= 5:
                check.fail("photo_upload_ids", "must list 1 to 5 photos")
            photos = [
                check(validation.uuid_id, u, f"photo_upload_ids[{i}]")
                for i, u in enumerate(request.photo_upload_ids)
            ]
            valid = [p for p in photos if p is not None]  # a failed check gave None
            if len(set(valid)) != len(valid):
                check.fail("photo_upload_ids", "must not repeat a photo")
            note = check(text, request.note, "note", low=0, high=2000)
            check(validation.request_id, request.request_id)
        task, proof = await proofs.submit(self._db, caller.current().user_id, task_id, photos, note)
        return task_pb2.SubmitProofResponse(task=convert.task(task), proof=convert.proof(proof))

    async def ListTaskProofs(
        self, request: task_pb2.ListTaskProofsRequest, context: Context
    ) -> task_pb2.ListTaskProofsResponse:
        with Checks() as check:
            task_id = check(validation.uuid_id, request.task_id, "task_id")
            limit = lists.page_size(check, request.page_size)
            kind = lists.kind(f"proofs/{task_id}")
            after = lists.after(check, self._secret, kind, request.page_token)
        who = caller.current()
        found = await proofs.list_for(
            self._db, who.user_id, who.is_admin, task_id, after, limit + 1
        )
        page, token = pagination.split_keyed(self._secret, kind, found, limit)
        return task_pb2.ListTaskProofsResponse(
            proofs=[convert.proof(p) for p in page], next_page_token=token
        )
