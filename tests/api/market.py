"""A marketplace to test against: users with sessions and capabilities made directly in the
database (fast, through the legal paths of tests.invariants.world), and every call made
through the real server with the generated stubs."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio

from hustle.v1 import (
    common_pb2,
    dispute_pb2_grpc,
    feed_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
    user_pb2_grpc,
)
from server import security
from tests.invariants.world import World


@dataclass
class Person:
    user_id: uuid.UUID
    token: str

    @property
    def auth(self) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self.token}"),)

    @property
    def id(self) -> str:
        return str(self.user_id)


class Market:
    def __init__(self, channel: aio.Channel, conn: psycopg.Connection[Any]) -> None:
        self.world = World(conn)
        self.tasks = task_pb2_grpc.TaskServiceStub(channel)
        self.feed = feed_pb2_grpc.FeedServiceStub(channel)
        self.disputes = dispute_pb2_grpc.DisputeServiceStub(channel)
        self.users = user_pb2_grpc.UserServiceStub(channel)

    def session(self, user_id: uuid.UUID) -> Person:
        token = secrets.token_urlsafe(32)
        self.world.rows(
            "INSERT INTO sessions (user_id, token_hash, expires_at) VALUES (%s, %s, now() + interval '1 day')",
            user_id, security.token_hash(token),
        )  # fmt: skip
        return Person(user_id, token)

    def poster(self, state: str = "CA") -> Person:
        return self.session(self.world.user(state=state))

    def worker(self, **capabilities: Any) -> Person:
        return self.session(self.world.worker(**capabilities))

    def admin(self) -> Person:
        return self.session(self.world.admin())

    def photos(self, worker: Person, count: int = 1) -> list[str]:
        return [str(self.world.upload(worker.user_id)) for _ in range(count)]

    @staticmethod
    def draft(*, price: int = 4200, state: str = "CA", lat: float = 34.05, lng: float = -118.25, trade: str = "",
              tier: int = 1, insurance: bool = False, urgent: bool = False) -> task_pb2.CreateTaskRequest:  # fmt: skip
        deadline = Timestamp()
        deadline.FromDatetime(datetime.now(UTC) + timedelta(days=3))
        return task_pb2.CreateTaskRequest(
            title="Fix the sink", description="It drips.", category="PLUMBING",
            price=common_pb2.Money(amount_cents=price, currency="USD"), address="1 Main St",
            location_state=state, location=common_pb2.LatLng(latitude=lat, longitude=lng), urgent=urgent,
            deadline=deadline,
            requirements=task_pb2.TaskRequirements(required_trade=trade, required_trust_tier=tier,
                                                   insurance_required=insurance),
        )  # fmt: skip

    async def create(
        self, poster: Person, request: task_pb2.CreateTaskRequest, key: str | None = None
    ) -> task_pb2.Task:
        metadata = poster.auth + ((("idempotency-key", key),) if key else ())
        return (await self.tasks.CreateTask(request, metadata=metadata, timeout=10)).task

    async def post(self, poster: Person, *, fund: bool = True, **draft: Any) -> task_pb2.Task:
        task = await self.create(poster, self.draft(**draft))
        if fund:
            task = (await self.tasks.FundTask(
                task_pb2.FundTaskRequest(task_id=task.task_id, payment_reference="pi_123"),
                metadata=poster.auth, timeout=10)).task  # fmt: skip
        return task

    async def accept(self, worker: Person, task_id: str) -> task_pb2.Task:
        return (await self.tasks.AcceptTask(task_pb2.AcceptTaskRequest(task_id=task_id), metadata=worker.auth,
                                            timeout=10)).task  # fmt: skip

    async def submit(
        self, worker: Person, task_id: str, photos: int = 2
    ) -> task_pb2.SubmitProofResponse:
        return await self.tasks.SubmitProof(
            task_pb2.SubmitProofRequest(task_id=task_id, photo_upload_ids=self.photos(worker, photos), note="Done"),
            metadata=worker.auth, timeout=10,
        )  # fmt: skip

    def notifications(self, user: Person) -> list[str]:
        return [r[0] for r in self.world.rows(
            "SELECT kind FROM notifications WHERE user_id = %s ORDER BY created_at, kind", user.user_id)]  # fmt: skip
