"""The Python client (clients/python/hustle_client) against a real server process: a safe call
made while the server restarts waits and succeeds within its deadline; a safe call the server
answers UNAVAILABLE (HX902) is retried and a non-idempotent one is not, counted in the server's
access log; the token, request ids and request_id go with every call."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import hustle_client
import psycopg
import pytest
from grpc import aio

from hustle.v1 import task_pb2_grpc as v1_task_pb2_grpc
from hustle.v2 import (
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    system_pb2,
    system_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
    user_pb2,
    user_pb2_grpc,
)
from server.app import HustleServer
from tests.api.market import Market
from tests.clients.conftest import Server, server_env
from tests.conftest import admin_url, create_database, database_url_for, drop_database
from tests.helpers import error_details
from tests.processes import Process

PASSWORD = "correct-horse-42"


async def sign_up(address: str) -> tuple[str, str, str]:
    """A new account through the client: (user id, email, access token)."""
    email = f"py-{uuid.uuid4().hex[:12]}@example.test"
    async with hustle_client.aio_channel(address) as channel:
        signed = await auth_pb2_grpc.AuthServiceStub(channel).SignUp(
            auth_pb2.SignUpRequest(email=email, password=PASSWORD, full_name="Py Client",
                                   default_mode=user_pb2.USER_MODE_POSTER),
            timeout=15,
        )  # fmt: skip
    return signed.me.user_id, email, signed.session.access_token


def access_lines(process: Process, request_id: str) -> list[dict[str, Any]]:
    """The server's access-log lines ("rpc", one per call it received) for a request id."""
    lines = [json.loads(line) for line in list(process.lines) if line.startswith("{")]
    return [e for e in lines if e.get("msg") == "rpc" and e.get("request_id") == request_id]


async def logged(process: Process, request_id: str, count: int) -> list[dict[str, Any]]:
    """Wait (bounded) until the server has logged `count` calls with this id; a moment more
    for any further ones, which the caller's assertion then sees."""
    deadline = time.monotonic() + 10
    while len(access_lines(process, request_id)) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # the log pipe is a little behind the replies
    return access_lines(process, request_id)


def test_the_contract_decides_what_is_retried() -> None:
    retries = hustle_client.retries()
    R = hustle_client.Retry
    assert retries["/hustle.v2.FeedService/GetFeed"] is R.SAFE  # NO_SIDE_EFFECTS
    assert retries["/hustle.v2.UserService/UpdateProfile"] is R.SAFE  # IDEMPOTENT
    assert retries["/hustle.v2.TaskService/CreateTask"] is R.REQUEST_ID
    assert retries["/hustle.v2.TaskService/AcceptTask"] is R.REQUEST_ID
    assert retries["/hustle.v1.TaskService/CreateTask"] is R.IDEMPOTENCY_KEY
    for unsafe in ("SignUp", "SignIn", "SignOut", "RefreshSession", "StartPhoneVerification"):
        assert retries[f"/hustle.v2.AuthService/{unsafe}"] is R.NEVER, unsafe
    config = hustle_client.service_config()
    (methods,) = config["methodConfig"]
    named = {f"/{n['service']}/{n['method']}" for n in methods["name"]}
    assert named == {name for name, retry in retries.items() if retry.retried}
    assert "/hustle.v2.AuthService/SignIn" not in named
    assert methods["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert methods["waitForReady"] is True
    # every RPC of both packages is classified, from the generated descriptors
    assert {n.split("/")[1].split(".")[1] for n in retries} == {"v1", "v2"}
    assert len(retries) == sum(len(s.methods) for s in hustle_client.hustle_services())


async def test_a_safe_call_waits_out_a_restart_and_an_unsafe_one_fails_at_once(
    server_process: Server,
) -> None:
    server = server_process
    await server.start_serving()
    user_id, email, token = await sign_up(server.address)
    async with hustle_client.aio_channel(server.address, token=token) as channel:
        users = user_pb2_grpc.UserServiceStub(channel)
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        assert (await users.GetMe(user_pb2.GetMeRequest(), timeout=10)).me.user_id == user_id
        assert server.stop() == 0  # drained and gone: nothing listens on the port

        read = asyncio.ensure_future(
            users.GetMe(user_pb2.GetMeRequest(), metadata=(("x-request-id", "across-restart"),),
                        timeout=60)
        )  # fmt: skip
        began = time.monotonic()
        with pytest.raises(aio.AioRpcError) as refused:  # not safe to repeat: not waited for
            await auth.SignIn(
                auth_pb2.SignInRequest(email=email, password=PASSWORD),
                metadata=(("x-request-id", "sign-in-while-down"),), timeout=60,
            )  # fmt: skip
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - began < 10
        await asyncio.sleep(0.5)
        assert not read.done(), "the read should wait for the server, not fail"

        restarted = await server.start_serving()  # the same port
        answer = await asyncio.wait_for(read, 60)
        assert answer.me.user_id == user_id
        (served,) = await logged(restarted, "across-restart", 1)
        assert served["method"] == "/hustle.v2.UserService/GetMe"
        assert served["code"] == "OK"
        assert access_lines(restarted, "sign-in-while-down") == []  # never sent again


@pytest.fixture
def own_database(template_database: str) -> Iterator[tuple[str, str]]:
    """A database of this test's own, which it may close to connections: (name, url)."""
    name = create_database(template_database)
    yield name, database_url_for(name)
    with psycopg.connect(admin_url(), autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
    drop_database(name)


async def test_hx902_is_retried_for_a_read_and_never_for_a_sign_in(
    own_database: tuple[str, str], redis_url: str
) -> None:
    name, url = own_database
    # a short pool timeout: with the database closed, a call answers HX902 within half a second
    server = Server(server_env(url, redis_url, DB_CONNECT_TIMEOUT_SECONDS="0.5"))
    try:
        process = await server.start_serving()
        user_id, email, token = await sign_up(server.address)
        async with hustle_client.aio_channel(server.address, token=token) as channel:
            users = user_pb2_grpc.UserServiceStub(channel)
            assert (await users.GetMe(user_pb2.GetMeRequest(), timeout=10)).me.user_id == user_id
        with psycopg.connect(admin_url(), autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )

        # a fresh channel for each, so that neither inherits the other's retry throttling
        async with hustle_client.aio_channel(server.address, token=token) as channel:
            with pytest.raises(aio.AioRpcError) as read:
                await user_pb2_grpc.UserServiceStub(channel).GetMe(
                    user_pb2.GetMeRequest(),
                    metadata=(("x-request-id", "read-db-down"),),
                    timeout=30,
                )
        assert read.value.code() is grpc.StatusCode.UNAVAILABLE
        assert error_details(read.value)["ErrorInfo"].reason == "HX902"  # type: ignore[attr-defined]
        # trailers-only: no response headers committed the call; its request id is a trailer
        assert dict(read.value.initial_metadata() or ()) == {}
        assert dict(read.value.trailing_metadata() or ())["x-request-id"] == "read-db-down"
        attempts = await logged(process, "read-db-down", 5)
        assert [a["code"] for a in attempts] == ["UNAVAILABLE"] * 5  # gRPC's cap: 5 attempts

        async with hustle_client.aio_channel(server.address) as channel:
            with pytest.raises(aio.AioRpcError) as sign_in:
                await auth_pb2_grpc.AuthServiceStub(channel).SignIn(
                    auth_pb2.SignInRequest(email=email, password=PASSWORD),
                    metadata=(("x-request-id", "sign-in-db-down"),), timeout=30,
                )  # fmt: skip
        assert sign_in.value.code() is grpc.StatusCode.UNAVAILABLE
        assert error_details(sign_in.value)["ErrorInfo"].reason == "HX902"  # type: ignore[attr-defined]
        assert [a["code"] for a in await logged(process, "sign-in-db-down", 1)] == ["UNAVAILABLE"]
    finally:
        for run in server.runs:
            run.popen.terminate()
            try:
                run.wait(timeout=40)
            finally:
                run.stop()


async def test_every_call_carries_the_token_request_ids_and_a_request_id(
    server: HustleServer, database_url: str
) -> None:
    """Against the server in this process: the blocking channel's calls run in a thread."""
    address = f"127.0.0.1:{server.grpc_port}"
    user_id, _, token = await sign_up(address)
    tokens = iter([token])  # a function: the client asks for the current token per call
    async with hustle_client.aio_channel(address, token=lambda: next(tokens, token)) as channel:
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        draft = task_pb2.Task(
            title="Fix the sink", description="It drips.", category="PLUMBING",
            price=common_pb2.Money(amount_cents=4200, currency="USD"), address="1 Main St",
            location_state="CA", location=common_pb2.LatLng(latitude=34.05, longitude=-118.25),
        )  # fmt: skip
        draft.deadline.GetCurrentTime()
        draft.deadline.seconds += 3 * 24 * 3600
        call = tasks.CreateTask(task_pb2.CreateTaskRequest(task=draft), timeout=10)  # no request_id
        created = (await call).task
        assert created.poster_id == user_id
        made = dict(await call.initial_metadata())["x-request-id"]  # the client's, echoed
        assert isinstance(made, str)
        assert len(made) == 32
        # hustle.v1's retry key is a header: the client adds one
        v1 = v1_task_pb2_grpc.TaskServiceStub(channel)
        assert (await v1.CreateTask(Market.draft(), timeout=10)).task.poster_id == user_id
    with psycopg.connect(database_url) as conn:
        keys = conn.execute(
            "SELECT method, key FROM idempotency_keys WHERE user_id = %s", (user_id,)
        ).fetchall()
    assert sorted(method for method, _ in keys) == [
        "/hustle.v1.TaskService/CreateTask",
        "/hustle.v2.TaskService/CreateTask",
    ]
    assert all(uuid.UUID(key).version == 4 for _, key in keys)  # the keys the client made

    def blocking() -> tuple[str, list[str]]:  # the blocking channel does the same
        with hustle_client.channel(address, token=token) as plain:
            me = user_pb2_grpc.UserServiceStub(plain).GetMe(user_pb2.GetMeRequest(), timeout=10)
            info = system_pb2_grpc.SystemServiceStub(plain).GetServerInfo(
                system_pb2.GetServerInfoRequest(), timeout=10
            )
            return me.me.user_id, [v.package for v in info.api_versions]

    assert await asyncio.to_thread(blocking) == (user_id, ["hustle.v1", "hustle.v2"])
