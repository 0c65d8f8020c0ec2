"""A test-only gRPC service, `hustle.test.Probe`, served by the real server with every interceptor.

Its methods misbehave on purpose, the way a buggy or unlucky handler would, so that the tests
can see what a client receives. It is registered only by tests (`extra_handlers`).
"""

from __future__ import annotations

from typing import Any

import grpc
import sentry_sdk
from google.protobuf import empty_pb2
from grpc import aio

from server import errors, request_context
from server.db import Database

SERVICE = "hustle.test.Probe"


def handlers(db: Database) -> grpc.GenericRpcHandler:
    async def raise_hx(_: empty_pb2.Empty, __: aio.ServicerContext[Any, Any]) -> empty_pb2.Empty:
        raise errors.HxError("HX302", "No such task.")

    async def raise_invalid(
        _: empty_pb2.Empty, __: aio.ServicerContext[Any, Any]
    ) -> empty_pb2.Empty:
        raise errors.invalid("price.amount_cents", "must be at least 500")

    async def raise_rate_limited(
        _: empty_pb2.Empty, __: aio.ServicerContext[Any, Any]
    ) -> empty_pb2.Empty:
        raise errors.HxError("HX501", retry_after_seconds=2.5)

    async def boom(_: empty_pb2.Empty, __: aio.ServicerContext[Any, Any]) -> empty_pb2.Empty:
        request_context.set_user("user-42")
        raise RuntimeError("secret internals: password=hunter2")

    async def leak_secrets(
        _: empty_pb2.Empty, __: aio.ServicerContext[Any, Any]
    ) -> empty_pb2.Empty:
        # A handler that fails holding every kind of secret, in locals, a breadcrumb and the
        # exception's text: what Sentry must never receive (tests/api/test_sentry.py).
        request_context.set_user("user-7")
        password = "hunter2-pass"
        access_token = "tok" + "x" * 40  # the shape of secrets.token_urlsafe(32)
        phone_number = "+15551234567"
        sentry_sdk.add_breadcrumb(
            category="sms",
            message=f"texting {phone_number} the code 482913",
            data={"code": "482913", "to": phone_number, "password": password},
        )
        raise RuntimeError(
            f"could not text {phone_number} code 482913 for jane.doe@example.com with Bearer"
            f" {access_token}, password={password}, db postgresql://hustle:dbpass123@db/x"
        )

    async def db_trigger(_: empty_pb2.Empty, __: aio.ServicerContext[Any, Any]) -> empty_pb2.Empty:
        # What a trigger does when a state machine is broken: raise with the HX code as SQLSTATE.
        async with db.connection() as conn:
            await conn.execute(
                "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'HX003', "
                "MESSAGE = 'illegal task transition OPEN -> COMPLETED'; END $$"
            )
        return empty_pb2.Empty()

    async def db_unknown(_: empty_pb2.Empty, __: aio.ServicerContext[Any, Any]) -> empty_pb2.Empty:
        async with db.connection() as conn:
            await conn.execute("SELECT * FROM no_such_table")
        return empty_pb2.Empty()

    async def db_bad_value(
        _: empty_pb2.Empty, __: aio.ServicerContext[Any, Any]
    ) -> empty_pb2.Empty:
        # A malformed value that got past validation and reached the database.
        async with db.connection() as conn:
            await conn.execute("SELECT %s::integer", ("twelve",))
        return empty_pb2.Empty()

    methods = {
        "RaiseHx": raise_hx,
        "RaiseInvalid": raise_invalid,
        "RaiseRateLimited": raise_rate_limited,
        "Boom": boom,
        "LeakSecrets": leak_secrets,
        "DbTrigger": db_trigger,
        "DbUnknown": db_unknown,
        "DbBadValue": db_bad_value,
    }
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            name: grpc.unary_unary_rpc_method_handler(
                fn,
                request_deserializer=empty_pb2.Empty.FromString,
                response_serializer=empty_pb2.Empty.SerializeToString,
            )
            for name, fn in methods.items()
        },
    )


def call(channel: aio.Channel, method: str) -> Any:
    return channel.unary_unary(
        f"/{SERVICE}/{method}",
        request_serializer=empty_pb2.Empty.SerializeToString,
        response_deserializer=empty_pb2.Empty.FromString,
    )
