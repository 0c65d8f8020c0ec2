"""A marketplace for the hustle.v2 tests: users made in the database (tests.api.market's
people), every call made through the real server with the generated v2 stubs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc import aio

from hustle.v2 import (
    auth_pb2_grpc,
    common_pb2,
    dispute_pb2_grpc,
    feed_pb2_grpc,
    system_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
    upload_pb2_grpc,
    user_pb2_grpc,
    verification_pb2_grpc,
)
from tests.api.market import Market, Person
from tests.helpers import error_details

T = task_pb2


def request_id() -> str:
    return str(uuid.uuid4())


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


class V2:
    """The v2 stubs on one channel, and the people of a (v1) Market on the same database."""

    def __init__(self, channel: aio.Channel, conn: psycopg.Connection[Any]) -> None:
        self.people = Market(channel, conn)  # sessions, workers, uploads made in the database
        self.world = self.people.world
        self.system = system_pb2_grpc.SystemServiceStub(channel)
        self.auth = auth_pb2_grpc.AuthServiceStub(channel)
        self.users = user_pb2_grpc.UserServiceStub(channel)
        self.tasks = task_pb2_grpc.TaskServiceStub(channel)
        self.feed = feed_pb2_grpc.FeedServiceStub(channel)
        self.disputes = dispute_pb2_grpc.DisputeServiceStub(channel)
        self.uploads = upload_pb2_grpc.UploadServiceStub(channel)
        self.verifications = verification_pb2_grpc.VerificationServiceStub(channel)

    def poster(self, state: str = "CA") -> Person:
        return self.people.poster(state)

    def worker(self, **capabilities: Any) -> Person:
        return self.people.worker(**capabilities)

    def admin(self) -> Person:
        return self.people.admin()

    @staticmethod
    def task(*, price: int = 4200, state: str = "CA", lat: float = 34.05, lng: float = -118.25,
             urgent: bool = False, title: str = "Fix the sink") -> T.Task:  # fmt: skip
        return T.Task(
            title=title, description="It drips.", category="PLUMBING",
            price=common_pb2.Money(amount_cents=price, currency="USD"), address="1 Main St",
            location_state=state, location=common_pb2.LatLng(latitude=lat, longitude=lng), urgent=urgent,
            deadline=timestamp(datetime.now(UTC) + timedelta(days=3)),
        )  # fmt: skip

    async def create(self, poster: Person, task: T.Task | None = None, rid: str = "") -> T.Task:
        request = T.CreateTaskRequest(task=task or self.task(), request_id=rid)
        return (await self.tasks.CreateTask(request, metadata=poster.auth, timeout=10)).task

    async def fund(self, poster: Person, task_id: str) -> T.Task:
        request = T.FundTaskRequest(
            task_id=task_id, payment_reference="pi_v2", request_id=request_id()
        )
        return (await self.tasks.FundTask(request, metadata=poster.auth, timeout=10)).task

    async def post(self, poster: Person, **task: Any) -> T.Task:
        created = await self.create(poster, self.task(**task))
        return await self.fund(poster, created.task_id)

    async def accept(self, worker: Person, task_id: str, rid: str = "") -> T.Task:
        request = T.AcceptTaskRequest(task_id=task_id, request_id=rid)
        return (await self.tasks.AcceptTask(request, metadata=worker.auth, timeout=10)).task

    async def submit(self, worker: Person, task_id: str, photos: int = 1) -> T.SubmitProofResponse:
        request = T.SubmitProofRequest(task_id=task_id, photo_upload_ids=self.people.photos(worker, photos),
                                       note="Done", request_id=request_id())  # fmt: skip
        return await self.tasks.SubmitProof(request, metadata=worker.auth, timeout=10)

    async def complete(self, poster: Person, worker: Person) -> str:
        """A task done through the API: posted (funded) by `poster`, accepted and proved by
        `worker`, approved; its id."""
        task = await self.post(poster)
        await self.accept(worker, task.task_id)
        await self.submit(worker, task.task_id)
        approve = T.ApproveProofRequest(task_id=task.task_id, request_id=request_id())
        await self.tasks.ApproveProof(approve, metadata=poster.auth, timeout=10)
        return task.task_id


async def fails(call: object, code: grpc.StatusCode, reason: str) -> aio.AioRpcError:
    """The call fails with this status and HX code."""
    with pytest.raises(aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == code, caught.value
    assert error_details(caught.value)["ErrorInfo"].reason == reason, caught.value
    return caught.value


async def invalid(call: object) -> dict[str, str]:
    """The call fails with INVALID_ARGUMENT (HX301): its BadRequest's {field: description}."""
    error = await fails(call, grpc.StatusCode.INVALID_ARGUMENT, "HX301")
    bad = error_details(error)["BadRequest"]
    assert isinstance(bad, error_details_pb2.BadRequest)
    return {v.field: v.description for v in bad.field_violations}
