"""Admission (server/interceptors/admission.py): with a cached session, the session and the rate
limit are one Redis round trip; the answers must be those of the separate paths."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import psycopg
import pytest
import redis
from grpc import aio

from hustle.v1 import dispute_pb2, user_pb2
from server import security
from server.app import HustleServer, Resources
from server.config import Settings
from tests.api.market import Market, Person
from tests.helpers import error_details

READS, ADMIN_CALLS = 3, 2


@pytest.fixture
async def tight(
    settings: Settings, resources: Resources, conn: psycopg.Connection[Any]
) -> AsyncIterator[Market]:
    limits = {"rate_limit_read_per_minute": READS, "rate_limit_admin_per_minute": ADMIN_CALLS}
    server = HustleServer(settings.model_copy(update=limits), resources)
    await server.start()
    async with aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield Market(channel, conn)
    await server.stop(grace=0)


@pytest.fixture
def counters(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


async def refused(call: object, code: grpc.StatusCode, reason: str) -> None:
    with pytest.raises(aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == code, caught.value
    assert error_details(caught.value)["ErrorInfo"].reason == reason


async def me(market: Market, person: Person) -> user_pb2.GetMeResponse:
    response: user_pb2.GetMeResponse = await market.users.GetMe(
        user_pb2.GetMeRequest(), metadata=person.auth, timeout=10
    )
    return response


async def test_each_call_counts_once_whether_the_session_was_cached_or_not(
    tight: Market, counters: redis.Redis
) -> None:
    alice, bob = tight.worker(), tight.worker()
    for _ in range(READS):  # the first from the database, the others from the cache
        assert (await me(tight, alice)).me.user_id == alice.id
    assert counters.zcard(f"rl:read:user:{alice.id}") == READS
    await refused(me(tight, alice), grpc.StatusCode.RESOURCE_EXHAUSTED, "HX501")
    assert counters.zcard(f"rl:read:user:{alice.id}") == READS  # a refused call costs nothing
    assert (await me(tight, bob)).me.user_id == bob.id  # counters are per user


async def test_a_user_on_an_admin_procedure_is_refused_and_not_counted(
    tight: Market, counters: redis.Redis
) -> None:
    user, admin = tight.worker(), tight.admin()
    await me(tight, user)  # the session is cached from here on
    for _ in range(ADMIN_CALLS + 1):
        await refused(
            tight.disputes.ListOpenDisputes(
                dispute_pb2.ListOpenDisputesRequest(), metadata=user.auth, timeout=10
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            "HX202",
        )
    assert counters.zcard(f"rl:admin:user:{user.id}") == 0
    for _ in range(ADMIN_CALLS):
        await tight.disputes.ListOpenDisputes(
            dispute_pb2.ListOpenDisputesRequest(), metadata=admin.auth, timeout=10
        )
    await refused(
        tight.disputes.ListOpenDisputes(
            dispute_pb2.ListOpenDisputesRequest(), metadata=admin.auth, timeout=10
        ),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "HX501",
    )


async def test_an_expired_session_is_refused_even_while_cached(
    tight: Market, counters: redis.Redis, conn: psycopg.Connection[Any]
) -> None:
    carol = tight.worker()
    await me(tight, carol)
    token_hash = security.token_hash(carol.token)
    # The session ends: in the database, and in the cached entry, which outlives it (its TTL is
    # rounded up to whole seconds).
    conn.execute(
        "UPDATE sessions SET expires_at = created_at + interval '1 millisecond' "
        "WHERE token_hash = %s",
        (token_hash,),
    )
    key = f"sess:{token_hash.hex()}"
    entry = json.loads(counters.get(key) or b"{}")
    counters.set(key, json.dumps({**entry, "expires_at": 1.0}), ex=60)
    await refused(me(tight, carol), grpc.StatusCode.UNAUTHENTICATED, "HX401")
    assert counters.zcard(f"rl:read:user:{carol.id}") == 1  # the refused call was not counted
