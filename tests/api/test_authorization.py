"""The authorization matrix: every RPC the server registers by anonymous, stranger, poster, worker,
admin, generated from the contract (each method's `access` option), through a real channel.

For every cell:
- the access rule the proto declares holds: PUBLIC lets anyone in; USER turns anonymous callers
  away with UNAUTHENTICATED (HX401); ADMIN also turns users away with PERMISSION_DENIED (HX202)
  and lets admins through;
- no call ends INTERNAL, UNKNOWN or in any other untyped way;
- no answer carries another user's private data (email, session ids, verification records),
  except an admin's answer to an admin procedure;
- a stranger's mutation that names someone else's task, dispute, upload, verification or session
  never succeeds.

The methods come from `server.app.SERVICE_DESCRIPTORS` and the access rule from whichever
`access` extension their options carry, so a new version's services (hustle.v2) join the matrix
without an edit here. Requests are built from each method's input descriptor, filled by field
name with the world's resources (task_id, dispute_id, upload_id, ...) and plausible text.
"""

from __future__ import annotations

import collections
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc import aio

from server import security
from server.app import SERVICE_DESCRIPTORS, HustleServer, Resources
from server.config import Settings
from tests.helpers import error_details
from tests.invariants.world import World

ROLES = ("anonymous", "stranger", "worker", "poster", "admin")  # strangers first: a clean world
TYPED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def access_of(method: MethodDescriptor) -> str:
    """PUBLIC, USER or ADMIN, from the method's `access` option (any version's extension)."""
    for field, value in method.GetOptions().ListFields():
        if field.is_extension and field.name == "access":
            name = field.enum_type.values_by_number[value].name
            return name.removeprefix("ACCESS_").replace("UNSPECIFIED", "USER")
    return "USER"  # the contract's default when unset


def is_read(method: MethodDescriptor) -> bool:
    return method.GetOptions().idempotency_level == MethodOptions.NO_SIDE_EFFECTS


@dataclass
class Person:
    user_id: str
    email: str
    private: set[str]  # strings no one else may be shown

    def token(self, world: World) -> str:
        """A fresh session (a call may sign out or rotate the one it used)."""
        token = secrets.token_urlsafe(32)
        session = world.value(
            "INSERT INTO sessions (user_id, token_hash, expires_at)"
            " VALUES (%s, %s, now() + interval '1 day') RETURNING id",
            self.user_id,
            security.token_hash(token),
        )
        self.private.add(str(session))
        return token


@dataclass
class Marketplace:
    world: World
    people: dict[str, Person]
    resources: dict[str, Any]  # request field name -> value naming someone's resource


def person(world: World, user: uuid.UUID) -> Person:
    email = world.value("SELECT email FROM users WHERE id = %s", user)
    return Person(str(user), email, {email})


@pytest.fixture
def marketplace(database_url: str) -> Iterator[Marketplace]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        world = World(conn)
        poster = world.user(state="CA")
        worker = world.worker(state="CA")
        stranger = world.worker(state="NY")  # eligible for nothing in CA
        admin = world.admin()
        people = {
            name: person(world, user)
            for name, user in (("poster", poster), ("worker", worker), ("stranger", stranger),
                               ("admin", admin))
        }  # fmt: skip
        task = world.task(poster)
        world.accept(task, worker)
        world.submit_proof(task)
        disputed = world.task(poster)
        world.accept(disputed, worker)
        world.submit_proof(disputed)
        dispute = world.dispute(disputed)
        upload = world.upload(poster, "AVATAR")
        photo = world.upload(worker)
        document = world.upload(worker, "VERIFICATION_DOC")
        pending = world.verification(worker, "INSURANCE")
        people["worker"].private |= {str(pending), str(document)}
        session = world.value("SELECT id FROM sessions WHERE user_id = %s LIMIT 1", poster)
        if session is None:
            people["poster"].token(world)
            session = world.value("SELECT id FROM sessions WHERE user_id = %s LIMIT 1", poster)
        resources = {
            "task_id": str(task),
            "dispute_id": str(dispute),
            "upload_id": str(upload),
            "photo_upload_ids": [str(photo)],
            "document_upload_ids": [str(document)],
            "verification_id": str(pending),
            "session_id": str(session),
            "user_id": str(poster),
        }
        yield Marketplace(world, people, resources)


@pytest.fixture
async def open_channel(settings: Settings, resources: Resources) -> AsyncIterator[aio.Channel]:
    """The real server with its rate limits out of the way (this test makes ~200 calls)."""
    lifted = {
        f"rate_limit_{group}_per_minute": 1_000_000
        for group in ("auth", "read", "write", "admin", "upload", "message")
    }
    # watch streams send a heartbeat this often: their three replies come at once
    lifted["watch_heartbeat_seconds"] = 0.1  # type: ignore[assignment]
    server = HustleServer(settings.model_copy(update=lifted), resources)
    await server.start()
    async with aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield channel
    await server.stop(grace=0)


TEXT = {"reason": "not good enough", "note": "looks right", "payment_reference": "pi_matrix",
        "content_type": "image/jpeg", "full_name": "Matrix Tester", "trade": "plumbing"}  # fmt: skip


def request_for(method: MethodDescriptor, resources: dict[str, Any]) -> tuple[Message, bool]:
    """The method's request, its fields filled by name; and whether it names a resource."""
    request = GetMessageClass(method.input_type)()
    names = False
    for field in method.input_type.fields:
        value = resources.get(field.name)
        if value is not None and field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                getattr(request, field.name).extend(value)
            else:
                setattr(request, field.name, value)
            names = True
        elif field.name == "request_id" and field.type == FieldDescriptor.TYPE_STRING:
            request.request_id = str(uuid.uuid4())  # v2: a retry key, fresh for each call
        elif (
            field.name in TEXT
            and field.type == FieldDescriptor.TYPE_STRING
            and not field.is_repeated
        ):
            setattr(request, field.name, TEXT[field.name])
        elif field.type == FieldDescriptor.TYPE_ENUM and not field.is_repeated:
            values = [v.number for v in field.enum_type.values if v.number != 0]
            if values:
                setattr(request, field.name, values[0])
    return request, names


def strings(message: Message) -> Iterator[str]:
    """Every string anywhere in a message (nested, repeated, maps)."""
    for field, value in message.ListFields():
        items = value if field.is_repeated else [value]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            items = [f"{k}={v}" for k, v in value.items()]
        for item in items:
            if isinstance(item, Message):
                yield from strings(item)
            elif isinstance(item, str):
                yield item


@dataclass(frozen=True)
class Cell:
    method: str
    role: str
    code: grpc.StatusCode
    reason: str


async def call(
    channel: aio.Channel, method: MethodDescriptor, request: Message, token: str | None
) -> tuple[Cell, list[Message]]:
    path = f"/{method.containing_service.full_name}/{method.name}"
    response_class = GetMessageClass(method.output_type)
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    replies: list[Message] = []
    try:
        if method.server_streaming:
            stream = channel.unary_stream(path, request_serializer=type(request).SerializeToString,
                                          response_deserializer=response_class.FromString)  # fmt: skip
            async for reply in stream(request, metadata=metadata, timeout=10):
                replies.append(reply)
                if len(replies) >= 3:
                    break
        else:
            unary = channel.unary_unary(path, request_serializer=type(request).SerializeToString,
                                        response_deserializer=response_class.FromString)  # fmt: skip
            replies.append(await unary(request, metadata=metadata, timeout=10))
    except aio.AioRpcError as error:
        info = error_details(error).get("ErrorInfo")
        return Cell(path, "", error.code(), str(info.reason) if info else ""), []  # type: ignore[attr-defined]
    return Cell(path, "", grpc.StatusCode.OK, ""), replies


def hustle_methods() -> list[MethodDescriptor]:
    return [m for service in SERVICE_DESCRIPTORS for m in service.methods]


def test_the_matrix_covers_every_registered_procedure() -> None:
    methods = hustle_methods()
    assert len(methods) >= 40
    assert {access_of(m) for m in methods} == {"PUBLIC", "USER", "ADMIN"}


async def test_authorization_matrix(open_channel: aio.Channel, marketplace: Marketplace) -> None:
    world, people = marketplace.world, marketplace.people
    problems: list[str] = []
    cells: list[Cell] = []
    for role in ROLES:
        caller = people.get(role)
        others = set().union(*(p.private for name, p in people.items() if name != role))
        for method in hustle_methods():
            access = access_of(method)
            request, names_a_resource = request_for(method, marketplace.resources)
            token = caller.token(world) if caller is not None else None
            found, replies = await call(open_channel, method, request, token)
            cell = Cell(found.method, role, found.code, found.reason)
            cells.append(cell)
            where = f"{cell.method} as {role} ({access})"
            if cell.code not in TYPED:
                problems.append(f"{where}: untyped {cell.code.name}")
            if role == "anonymous" and access != "PUBLIC":
                if (cell.code, cell.reason) != (grpc.StatusCode.UNAUTHENTICATED, "HX401"):
                    problems.append(f"{where}: {cell.code.name} {cell.reason}, not HX401")
            elif access == "ADMIN" and role != "admin":
                if (cell.code, cell.reason) != (grpc.StatusCode.PERMISSION_DENIED, "HX202"):
                    problems.append(f"{where}: {cell.code.name} {cell.reason}, not HX202")
            elif cell.reason == "HX401" or (access == "ADMIN" and cell.reason == "HX202"):
                problems.append(
                    f"{where}: turned away ({cell.reason}) though the contract lets it in"
                )
            mutation = names_a_resource and not is_read(method)
            if role == "stranger" and mutation and cell.code == grpc.StatusCode.OK:
                problems.append(f"{where}: a stranger changed someone else's resource")
            if access == "ADMIN" and role == "admin":
                continue  # admins review other users' records: that is the procedure
            for reply in replies:
                leaked = others & set(strings(reply))
                if leaked:
                    problems.append(f"{where}: shows another user's {sorted(leaked)}")
    assert problems == [], "\n".join(problems)
    by_role = collections.Counter((c.role, c.code.name) for c in cells)
    assert by_role[("admin", "OK")] > 0
    assert by_role[("poster", "OK")] > 0
    assert by_role[("worker", "OK")] > 0
